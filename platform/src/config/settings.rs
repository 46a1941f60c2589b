//! The platform's settings, as the embedded defaults (`config/default.toml`) document them.

use std::{collections::BTreeMap, net::SocketAddr, path::PathBuf, time::Duration};

use serde::{Deserialize, Deserializer};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings<T = NoTools> {
    pub http: HttpSettings,
    pub admin: AdminSettings,
    pub shutdown: ShutdownSettings,
    pub auth: AuthSettings,
    pub log: LogSettings,
    pub traces: TracesSettings,
    pub tasks: TasksSettings,
    /// The service's own settings (`APP__TOOLS__...`): its type, its defaults (read from an
    /// empty `[tools]` when nothing sets one, so a key without a default is reported missing).
    pub tools: T,
}

/// The settings of a service whose tools have none.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoTools {}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    pub addr: SocketAddr,
    #[serde(deserialize_with = "comma_list")]
    pub allowed_hosts: Vec<String>,
    #[serde(deserialize_with = "comma_list")]
    pub allowed_origins: Vec<String>,
    pub request_timeout_ms: u64,
    pub max_body_bytes: usize,
    pub max_in_flight: usize,
    pub header_read_timeout_ms: u64,
    pub first_byte_timeout_ms: u64,
    pub max_connections: usize,
    /// Bytes buffered for requests in flight; `None`: a share of the memory limit found.
    pub memory_budget_bytes: Option<u64>,
    /// Requests a second one caller may send to `/mcp` (per task); 0: no per-caller limit.
    pub rate_limit_per_second: u32,
    /// Requests a caller may send at once (the bucket's size).
    pub rate_limit_burst: u32,
    /// Callers whose buckets are kept at once.
    pub rate_limit_max_callers: usize,
    /// Proxies in front that append to `X-Forwarded-For` (1 behind the ALB); 0: none.
    pub trusted_proxy_hops: usize,
    /// Per-caller limits of single tools, by tool name (`[http.tool_rate_limits.<tool>]`).
    #[serde(default)]
    pub tool_rate_limits: BTreeMap<String, ToolRateLimit>,
}

/// One tool's limit per caller, per task: `tools/call`s of it a second, and at once.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolRateLimit {
    pub per_second: u32,
    /// The bucket's size; unset: one second's worth (`per_second`).
    #[serde(default)]
    pub burst: Option<u32>,
}

impl ToolRateLimit {
    pub fn burst(&self) -> u32 {
        self.burst.unwrap_or(self.per_second)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSettings {
    pub addr: SocketAddr,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShutdownSettings {
    pub drain_delay_ms: u64,
    pub grace_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum AuthMode {
    None,
    Jwt,
}

impl TryFrom<String> for AuthMode {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        match value.as_str() {
            "none" => Ok(Self::None),
            "jwt" => Ok(Self::Jwt),
            _ => Err("one of none, jwt".into()),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    pub mode: AuthMode,
    pub resource: Option<String>,
    pub issuer: Option<String>,
    pub jwks_url: Option<String>,
    pub jwks_file: Option<PathBuf>,
    #[serde(deserialize_with = "comma_list")]
    pub required_scopes: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum LogFormat {
    Json,
    Pretty,
}

impl TryFrom<String> for LogFormat {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        match value.as_str() {
            "json" => Ok(Self::Json),
            "pretty" => Ok(Self::Pretty),
            _ => Err("one of json, pretty".into()),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub format: Option<LogFormat>,
    pub level: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TracesSettings {
    /// Which `tracing` spans are exported while traces are (`EnvFilter` syntax), whatever crate
    /// opened them: a library's spans are children of the span they start in.
    pub level: String,
}

/// Where tasks (long-running tool calls, `crate::tasks`) keep their state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum TaskStoreKind {
    /// No tasks: tools marked as tasks run as plain calls; the extension is not advertised.
    Off,
    /// In this process: lost at exit, not shared between replicas (`cargo run`, `just dev`).
    Memory,
    /// A DynamoDB table every replica reads (ECS).
    Dynamodb,
}

impl TryFrom<String> for TaskStoreKind {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        match value.as_str() {
            "off" => Ok(Self::Off),
            "memory" => Ok(Self::Memory),
            "dynamodb" => Ok(Self::Dynamodb),
            _ => Err("one of off, memory, dynamodb".into()),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TasksSettings {
    pub store: TaskStoreKind,
    /// The DynamoDB table (`store = "dynamodb"`).
    pub table: Option<String>,
    /// A DynamoDB-compatible endpoint instead of AWS's (tests, a local stand-in).
    pub endpoint_url: Option<String>,
    /// Overrides the region the AWS SDK finds (`AWS_REGION`).
    pub region: Option<String>,
    /// How often clients are told to poll, and how often a running task reads its record.
    pub poll_interval_ms: u64,
    /// How long a task is kept from its creation (`ttlMs`).
    pub ttl_ms: u64,
    /// One store call at most, the SDK's retries included.
    pub store_timeout_ms: u64,
}

impl HttpSettings {
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }
    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_millis(self.header_read_timeout_ms)
    }
    pub fn first_byte_timeout(&self) -> Duration {
        Duration::from_millis(self.first_byte_timeout_ms)
    }
}

impl ShutdownSettings {
    pub fn drain_delay(&self) -> Duration {
        Duration::from_millis(self.drain_delay_ms)
    }
    pub fn grace(&self) -> Duration {
        Duration::from_millis(self.grace_ms)
    }
}

/// Accepts a TOML array or a comma-separated string (the environment form).
pub(super) fn comma_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        List(Vec<String>),
        Text(String),
    }
    let items = match Raw::deserialize(d)? {
        Raw::List(v) => v,
        Raw::Text(s) => s.split(',').map(str::to_owned).collect(),
    };
    Ok(items
        .into_iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect())
}
