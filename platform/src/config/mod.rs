//! Configuration: embedded defaults < optional TOML file (`APP_CONFIG_FILE`) < `APP__SECTION__KEY`
//! environment variables. Every mistake becomes one [`ConfigError`] naming the key, the value and
//! what is allowed, so start-up can stop with a single clear line. The service's own settings
//! (`[tools]`, `APP__TOOLS__...`) come from the same sources into its own type.

mod error;
mod secret;
mod settings;

use config::{Config, Environment, File, FileFormat};
use serde::de::DeserializeOwned;

pub use error::ConfigError;
use error::from_config_error;
pub use secret::Secret;
pub use settings::*;

const DEFAULTS: &str = include_str!("../../config/default.toml");
const ENV_PREFIX: &str = "APP";
const ENV_SEPARATOR: &str = "__";
/// More requests in flight or open connections than this is no limit (and the limiters, tokio
/// semaphores, could not count them).
const COUNT_LIMIT: u64 = 1_000_000;
/// More callers than this would make the bucket table itself the memory problem.
const MAX_TRACKED_CALLERS: u64 = 10_000_000;
/// Longer proxy chains than this are a mistake (CloudFront + ALB is 2).
const MAX_PROXY_HOPS: u64 = 8;
/// Names the optional TOML file layered over the defaults.
pub const CONFIG_FILE_VAR: &str = "APP_CONFIG_FILE";

impl<T: DeserializeOwned> Settings<T> {
    /// Loads from the process environment.
    pub fn load() -> Result<Self, ConfigError> {
        Self::load_from(std::env::vars())
    }

    /// Loads from the given variables instead of the process environment (tests).
    pub fn load_from(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let vars: std::collections::HashMap<String, String> = vars.into_iter().collect();
        // An empty [tools] at least, so the service's type gives its defaults and a key without
        // one (a secret) is reported missing.
        let mut builder = Config::builder()
            .set_default("tools", config::Map::<String, config::Value>::new())
            .map_err(from_config_error)?
            .add_source(File::from_str(DEFAULTS, FileFormat::Toml));
        if let Some(path) = vars.get(CONFIG_FILE_VAR).filter(|p| !p.is_empty()) {
            if !std::path::Path::new(path).is_file() {
                let mut err = ConfigError::new(
                    "config_file",
                    Some(path.clone()),
                    "the path of a readable TOML file",
                );
                err.env = Some(CONFIG_FILE_VAR.into());
                return Err(err);
            }
            builder = builder.add_source(File::new(path, FileFormat::Toml).required(true));
        }
        let env = Environment::with_prefix(ENV_PREFIX)
            .prefix_separator(ENV_SEPARATOR)
            .separator(ENV_SEPARATOR)
            .source(Some(
                vars.iter()
                    // Empty values mean "unset", as in most 12-factor tools.
                    .filter(|(k, v)| k.starts_with("APP__") && !v.is_empty())
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ));
        let raw = builder.add_source(env).build().map_err(from_config_error)?;
        let mut settings: Settings<T> = raw.clone().try_deserialize().map_err(|e| {
            let mut err = from_config_error(e);
            // Shown where it helps; never for a secret, nor kept for a key that is not ours.
            if err.value.is_none() && !err.secret && !err.unknown_key {
                err.value = raw.get_string(&err.key).ok();
            }
            err
        })?;
        // RUST_LOG wins over APP__LOG__LEVEL, as Rust users expect.
        let rust_log = vars.get("RUST_LOG").filter(|v| !v.is_empty());
        if let Some(level) = rust_log {
            settings.log.level = level.clone();
        }
        settings.validate().map_err(|mut err| {
            if err.key == "log.level" && rust_log.is_some() {
                err.env = Some("RUST_LOG".into());
            }
            err
        })?;
        Ok(settings)
    }
}

/// The longest task TTL: 30 days.
const MAX_TASK_TTL_MS: u64 = 30 * 24 * 3600 * 1000;

impl TasksSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        let range = |key: &str, v: u64, min: u64, max: u64| {
            if v < min || v > max {
                Err(ConfigError::new(
                    key,
                    Some(v.to_string()),
                    format!("milliseconds from {min} to {max}"),
                ))
            } else {
                Ok(())
            }
        };
        range("tasks.poll_interval_ms", self.poll_interval_ms, 50, 60_000)?;
        range(
            "tasks.ttl_ms",
            self.ttl_ms,
            self.poll_interval_ms.max(1000),
            MAX_TASK_TTL_MS,
        )?;
        range("tasks.store_timeout_ms", self.store_timeout_ms, 100, 30_000)?;
        if self.store == TaskStoreKind::Dynamodb {
            let table = self.table.as_deref().unwrap_or_default();
            let valid = (3..=255).contains(&table.len())
                && table
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
            if !valid {
                return Err(ConfigError::new(
                    "tasks.table",
                    self.table.clone(),
                    "a DynamoDB table name (3 to 255 of a-z A-Z 0-9 _ - .; required when \
                     tasks.store = dynamodb)",
                ));
            }
        }
        if let Some(url) = &self.endpoint_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(ConfigError::new(
                "tasks.endpoint_url",
                Some(url.clone()),
                "an http:// or https:// URL such as http://127.0.0.1:8000",
            ));
        }
        Ok(())
    }
}

impl<T> Settings<T> {
    fn validate(&self) -> Result<(), ConfigError> {
        let at_most = |key: &str, v: u64, max: u64| {
            if v == 0 || v > max {
                let expected = match max {
                    u64::MAX => "a positive integer".to_owned(),
                    max => format!("a positive integer up to {max}"),
                };
                Err(ConfigError::new(key, Some(v.to_string()), expected))
            } else {
                Ok(())
            }
        };
        let positive = |key: &str, v: u64| at_most(key, v, u64::MAX);
        positive("http.request_timeout_ms", self.http.request_timeout_ms)?;
        positive("http.max_body_bytes", self.http.max_body_bytes as u64)?;
        at_most(
            "http.max_in_flight",
            self.http.max_in_flight as u64,
            COUNT_LIMIT,
        )?;
        positive(
            "http.header_read_timeout_ms",
            self.http.header_read_timeout_ms,
        )?;
        positive(
            "http.first_byte_timeout_ms",
            self.http.first_byte_timeout_ms,
        )?;
        at_most(
            "http.max_connections",
            self.http.max_connections as u64,
            COUNT_LIMIT,
        )?;
        if let Some(bytes) = self.http.memory_budget_bytes {
            positive("http.memory_budget_bytes", bytes)?;
        }
        for (tool, limit) in &self.http.tool_rate_limits {
            positive(
                &format!("http.tool_rate_limits.{tool}.per_second"),
                limit.per_second.into(),
            )?;
            if let Some(burst) = limit.burst {
                positive(&format!("http.tool_rate_limits.{tool}.burst"), burst.into())?;
            }
        }
        if self.http.rate_limit_per_second > 0 {
            positive("http.rate_limit_burst", self.http.rate_limit_burst.into())?;
        }
        if self.http.rate_limit_per_second > 0 || !self.http.tool_rate_limits.is_empty() {
            at_most(
                "http.rate_limit_max_callers",
                self.http.rate_limit_max_callers as u64,
                MAX_TRACKED_CALLERS,
            )?;
        }
        if self.http.trusted_proxy_hops as u64 > MAX_PROXY_HOPS {
            return Err(ConfigError::new(
                "http.trusted_proxy_hops",
                Some(self.http.trusted_proxy_hops.to_string()),
                format!("0 to {MAX_PROXY_HOPS} proxies (the ALB alone is 1)"),
            ));
        }
        // Port 0 (tests) picks a free port for each.
        if self.http.addr == self.admin.addr && self.http.addr.port() != 0 {
            return Err(ConfigError::new(
                "admin.addr",
                Some(self.admin.addr.to_string()),
                format!("an address other than http.addr ({})", self.http.addr),
            ));
        }
        for origin in &self.http.allowed_origins {
            if origin != "*" && !(origin.starts_with("http://") || origin.starts_with("https://")) {
                return Err(ConfigError::new(
                    "http.allowed_origins",
                    Some(origin.clone()),
                    "origins like https://app.example.com (scheme://host[:port]) or *",
                ));
            }
        }
        let directive = |key: &str, value: &str| {
            tracing_subscriber::EnvFilter::try_new(value).map_err(|e| {
                ConfigError::new(
                    key,
                    Some(value.to_owned()),
                    format!("a RUST_LOG-style filter such as info,rmcp=warn ({e})"),
                )
            })
        };
        self.tasks.validate()?;
        directive("log.level", &self.log.level)?;
        directive("traces.level", &self.traces.level)?;
        if self.auth.mode == AuthMode::Jwt {
            let require = |key: &str, v: &Option<String>, what: &str| match v {
                Some(s) if s.starts_with("https://") || s.starts_with("http://") => Ok(()),
                Some(s) => Err(ConfigError::new(key, Some(s.clone()), what)),
                None => Err(ConfigError::new(
                    key,
                    None,
                    format!("{what} (required when auth.mode = jwt)"),
                )),
            };
            require(
                "auth.resource",
                &self.auth.resource,
                "the canonical URL of this MCP endpoint, e.g. https://mcp.example.com/mcp",
            )?;
            require("auth.issuer", &self.auth.issuer, "the token issuer URL")?;
            match (&self.auth.jwks_url, &self.auth.jwks_file) {
                (Some(_), Some(_)) => {
                    return Err(ConfigError::new(
                        "auth.jwks_file",
                        self.auth
                            .jwks_file
                            .as_ref()
                            .map(|p| p.display().to_string()),
                        "only one of auth.jwks_url and auth.jwks_file",
                    ));
                }
                (Some(url), None) if !is_https_or_loopback(url) => {
                    // Keys fetched in clear text could be swapped on the way, and with them
                    // anyone could mint accepted tokens.
                    return Err(ConfigError::new(
                        "auth.jwks_url",
                        Some(url.clone()),
                        "an https:// URL of a JWKS document (http:// only to a loopback host)",
                    ));
                }
                (Some(_), None) => {}
                (None, Some(_)) => {}
                (None, None) => {
                    return Err(ConfigError::new(
                        "auth.jwks_url",
                        None,
                        "a JWKS URL (or auth.jwks_file) when auth.mode = jwt",
                    ));
                }
            }
        }
        Ok(())
    }
}

/// `https://...`, or `http://` to this machine (a local identity provider, tests).
fn is_https_or_loopback(url: &str) -> bool {
    if url.starts_with("https://") {
        return true;
    }
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host_port.split(':').next().unwrap_or_default(),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;
    use serde::Deserialize;

    use super::*;

    fn load(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        Settings::load_from(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn embedded_defaults_match_the_contract() {
        let s = load(&[]).unwrap();
        assert_eq!(s.http.addr.to_string(), "0.0.0.0:8080");
        assert_eq!(s.admin.addr.to_string(), "127.0.0.1:9464");
        assert_eq!(s.http.allowed_hosts, ["localhost", "127.0.0.1", "::1"]);
        assert!(s.http.allowed_origins.is_empty());
        assert_eq!(s.http.request_timeout_ms, 30_000);
        assert_eq!(s.http.max_body_bytes, 1_048_576);
        assert_eq!(s.http.max_in_flight, 1024);
        assert_eq!(s.http.memory_budget_bytes, None);
        assert_eq!(s.http.rate_limit_per_second, 50);
        assert_eq!(s.http.rate_limit_burst, 200);
        assert_eq!(s.http.trusted_proxy_hops, 0);
        assert_eq!(s.shutdown.drain_delay_ms, 5_000);
        assert_eq!(s.shutdown.grace_ms, 20_000);
        assert_eq!(s.auth.mode, AuthMode::None);
        assert_eq!(s.log.level, "info,rmcp=warn");
        assert_eq!(s.traces.level, "info,rmcp=warn,aws_sdk_dynamodb=debug");
    }

    #[test]
    fn environment_overrides_defaults_and_lists_split_on_commas() {
        let s = load(&[
            ("APP__HTTP__ADDR", "127.0.0.1:9000"),
            (
                "APP__HTTP__ALLOWED_HOSTS",
                "mcp.example.com, alb.example.com",
            ),
            ("APP__LOG__FORMAT", "pretty"),
        ])
        .unwrap();
        assert_eq!(s.http.addr.to_string(), "127.0.0.1:9000");
        assert_eq!(s.http.allowed_hosts, ["mcp.example.com", "alb.example.com"]);
        assert_eq!(s.log.format, Some(LogFormat::Pretty));
    }

    #[test]
    fn file_layer_sits_between_defaults_and_environment() {
        let dir = std::env::temp_dir().join(format!("cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("app.toml");
        std::fs::write(
            &path,
            "[http]\nmax_in_flight = 7\nrequest_timeout_ms = 1234\n",
        )
        .unwrap();
        let p = path.to_str().unwrap();
        let s = load(&[
            (CONFIG_FILE_VAR, p),
            ("APP__HTTP__REQUEST_TIMEOUT_MS", "99"),
        ])
        .unwrap();
        assert_eq!(s.http.max_in_flight, 7);
        assert_eq!(s.http.request_timeout_ms, 99);
    }

    #[test]
    fn mistakes_name_the_key_the_value_and_what_is_allowed() {
        let cases = [
            ("APP__HTTP__ADDR", "nope", "APP__HTTP__ADDR", "address"),
            (
                "APP__HTTP__MAX_BODY_BYTES",
                "-1",
                "APP__HTTP__MAX_BODY_BYTES",
                "-1",
            ),
            ("APP__LOG__FORMAT", "xml", "APP__LOG__FORMAT", "json"),
            (
                "APP__HTTP__MAX_IN_FLIGHT",
                "0",
                "APP__HTTP__MAX_IN_FLIGHT",
                "positive",
            ),
            (
                "APP__HTTP__MAX_IN_FLIGHT",
                "9999999999999999999",
                "APP__HTTP__MAX_IN_FLIGHT",
                "up to 1000000",
            ),
            (
                "APP__HTTP__FIRST_BYTE_TIMEOUT_MS",
                "0",
                "APP__HTTP__FIRST_BYTE_TIMEOUT_MS",
                "positive",
            ),
            (
                "APP__HTTP__MAX_CONNECTIONS",
                "lots",
                "APP__HTTP__MAX_CONNECTIONS",
                "lots",
            ),
            (
                "APP__HTTP__MAX_CONNECTIONS",
                "0",
                "APP__HTTP__MAX_CONNECTIONS",
                "positive",
            ),
            (
                "APP__HTTP__MAX_CONNECTIONS",
                "9999999999999999999",
                "APP__HTTP__MAX_CONNECTIONS",
                "up to 1000000",
            ),
            ("APP__AUTH__MODE", "basic", "APP__AUTH__MODE", "jwt"),
            ("APP__LOG__LEVEL", "info,=[", "APP__LOG__LEVEL", "RUST_LOG"),
            (
                "APP__TRACES__LEVEL",
                "info,=[",
                "APP__TRACES__LEVEL",
                "RUST_LOG",
            ),
            ("APP__HTTP__NOPE", "1", "APP__HTTP__NOPE", "not a known key"),
            (
                "APP__TASKS__STORE",
                "redis",
                "APP__TASKS__STORE",
                "dynamodb",
            ),
            (
                "APP__TASKS__POLL_INTERVAL_MS",
                "10",
                "APP__TASKS__POLL_INTERVAL_MS",
                "from 50 to 60000",
            ),
            ("APP__TASKS__TTL_MS", "0", "APP__TASKS__TTL_MS", "from 1000"),
            (
                "APP__TASKS__ENDPOINT_URL",
                "localhost:8000",
                "APP__TASKS__ENDPOINT_URL",
                "http://",
            ),
            (
                "APP__HTTP__MEMORY_BUDGET_BYTES",
                "lots",
                "APP__HTTP__MEMORY_BUDGET_BYTES",
                "lots",
            ),
            (
                "APP__HTTP__MEMORY_BUDGET_BYTES",
                "0",
                "APP__HTTP__MEMORY_BUDGET_BYTES",
                "positive",
            ),
            (
                "APP__HTTP__RATE_LIMIT_BURST",
                "0",
                "APP__HTTP__RATE_LIMIT_BURST",
                "positive",
            ),
            (
                "APP__HTTP__RATE_LIMIT_PER_SECOND",
                "-5",
                "APP__HTTP__RATE_LIMIT_PER_SECOND",
                "-5",
            ),
            (
                "APP__HTTP__TRUSTED_PROXY_HOPS",
                "9",
                "APP__HTTP__TRUSTED_PROXY_HOPS",
                "ALB",
            ),
        ];
        for (var, value, key, hint) in cases {
            let msg = load(&[(var, value)]).unwrap_err().to_string();
            assert!(
                msg.contains(key) && msg.contains(hint),
                "{var}={value}: {msg}"
            );
            assert!(!msg.contains('\n'), "one line: {msg}");
        }
    }

    #[test]
    fn jwks_urls_are_https_unless_local() {
        for url in [
            "https://idp.example.com/jwks.json",
            "http://127.0.0.1:8081/jwks",
            "http://localhost/jwks",
            "http://[::1]:9000/jwks",
        ] {
            assert!(is_https_or_loopback(url), "{url}");
        }
        for url in [
            "http://idp.example.com/jwks.json",
            "http://127.0.0.1.evil.example/jwks",
            "http://localhost@evil.example/jwks",
            "ftp://localhost/jwks",
        ] {
            assert!(!is_https_or_loopback(url), "{url}");
        }
        let jwt = [
            ("APP__AUTH__MODE", "jwt"),
            ("APP__AUTH__RESOURCE", "https://mcp.example.com/mcp"),
            ("APP__AUTH__ISSUER", "https://idp.example.com"),
            ("APP__AUTH__JWKS_URL", "http://idp.example.com/jwks.json"),
        ];
        let msg = load(&jwt).unwrap_err().to_string();
        assert!(
            msg.contains("APP__AUTH__JWKS_URL") && msg.contains("https://"),
            "{msg}"
        );
    }

    #[test]
    fn rust_log_wins_and_is_named_when_wrong() {
        let s = load(&[("RUST_LOG", "debug"), ("APP__LOG__LEVEL", "warn")]).unwrap();
        assert_eq!(s.log.level, "debug");
        let msg = load(&[("RUST_LOG", "info,=[")]).unwrap_err().to_string();
        assert!(msg.starts_with("invalid configuration: RUST_LOG "), "{msg}");
    }

    /// A service's settings with a secret, declared as a tool would.
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct SecretTools {
        weather: WeatherTools,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct WeatherTools {
        api_key: Secret,
        #[serde(default)]
        base_url: String,
    }

    const MARKER: &str = "sk-live-marker-7c1e";

    fn load_tools(vars: &[(&str, &str)]) -> Result<Settings<SecretTools>, ConfigError> {
        Settings::load_from(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    fn toml_file(name: &str, text: &str) -> String {
        let dir = std::env::temp_dir().join(format!("cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    }

    #[test]
    fn a_secret_reads_from_the_environment_or_the_file_and_never_prints() {
        let s = load_tools(&[("APP__TOOLS__WEATHER__API_KEY", MARKER)]).unwrap();
        assert_eq!(s.tools.weather.api_key.expose_secret(), MARKER);
        let shown = format!("{s:?}");
        assert!(
            shown.contains("api_key: [redacted]") && !shown.contains(MARKER),
            "{shown}"
        );

        let file = toml_file(
            "secret.toml",
            &format!(
                "[tools.weather]\napi_key = \"{MARKER}\"\nbase_url = \"http://127.0.0.1:1\"\n"
            ),
        );
        let s = load_tools(&[(CONFIG_FILE_VAR, &file)]).unwrap();
        assert_eq!(s.tools.weather.api_key.expose_secret(), MARKER);
        assert_eq!(s.tools.weather.base_url, "http://127.0.0.1:1");
    }

    #[test]
    fn a_missing_secret_is_one_line_naming_its_key() {
        let msg = load_tools(&[("APP__TOOLS__WEATHER__BASE_URL", "http://127.0.0.1:1")])
            .unwrap_err()
            .to_string();
        assert_eq!(
            msg,
            "invalid configuration: APP__TOOLS__WEATHER__API_KEY (tools.weather.api_key) is \
             missing: expected a value (this key has no default)"
        );
        // With no [tools] at all, the first key without a default.
        let msg = load_tools(&[]).unwrap_err().to_string();
        assert!(
            msg.contains("APP__TOOLS__WEATHER (tools.weather) is missing"),
            "{msg}"
        );
    }

    #[test]
    fn a_wrong_secret_never_shows_its_value() {
        let empty = toml_file("empty.toml", "[tools.weather]\napi_key = \"\"\n");
        let err = load_tools(&[(CONFIG_FILE_VAR, &empty)]).unwrap_err();
        assert!(err.secret && err.value.is_none(), "{err:?}");
        assert_eq!(
            err.to_string(),
            "invalid configuration: APP__TOOLS__WEATHER__API_KEY (tools.weather.api_key) = \
             <redacted>: expected a non-empty string (a secret: its value is not shown)"
        );
        let list = toml_file(
            "list.toml",
            &format!("[tools.weather]\napi_key = [\"{MARKER}\"]\n"),
        );
        let typo = [("APP__TOOLS__WEATHER__APIKEY", MARKER)];
        for err in [
            load_tools(&[(CONFIG_FILE_VAR, &list)]).unwrap_err(),
            load_tools(&typo).unwrap_err(),
        ] {
            let (shown, debug) = (err.to_string(), format!("{err:?}"));
            assert!(shown.contains("APP__TOOLS__WEATHER__API"), "{shown}");
            assert!(
                !shown.contains(MARKER) && !debug.contains(MARKER),
                "{debug}"
            );
            assert!(!shown.contains('\n'), "one line: {shown}");
        }
    }

    #[test]
    fn jwt_mode_requires_its_keys() {
        let msg = load(&[("APP__AUTH__MODE", "jwt")]).unwrap_err().to_string();
        assert!(msg.contains("APP__AUTH__RESOURCE"), "{msg}");
    }
}
