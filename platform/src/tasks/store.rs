//! What a task is in the store, and the store's small interface. Every replica reads and writes
//! the same store; a task's status only moves forward: once terminal (`completed`, `failed`,
//! `cancelled`) no write changes it, so a cancel and a completion that race leave exactly one of
//! them recorded.

use std::{
    fmt,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use async_trait::async_trait;
use rmcp::model::TaskStatus;
use serde_json::{Map, Value};

/// One task as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskRecord {
    /// Unguessable (a random UUID): with auth off it is the only key to the task.
    pub id: String,
    /// The principal's subject that created it; empty when auth is off.
    pub owner: String,
    /// The tool that runs it.
    pub tool: String,
    pub status: TaskStatus,
    pub status_message: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub created_at_ms: u64,
    pub updated_at_ms: u64,
    pub ttl_ms: u64,
    pub poll_interval_ms: u64,
    /// Outstanding requests to the client (`inputRequests`), by key: written by the runner only.
    pub input_requests: Map<String, Value>,
    /// The client's answers (`tasks/update`), by key, until the runner takes them.
    pub input_responses: Map<String, Value>,
    /// The tool's result (`completed`).
    pub result: Option<Value>,
    /// The JSON-RPC error (`failed`).
    pub error: Option<Value>,
}

impl TaskRecord {
    /// When the task expires (`createdAt + ttlMs`), in milliseconds since the epoch.
    pub fn expires_at_ms(&self) -> u64 {
        self.created_at_ms.saturating_add(self.ttl_ms)
    }

    pub fn expired(&self, now_ms: u64) -> bool {
        now_ms >= self.expires_at_ms()
    }
}

/// A change of a task that is not terminal. Fields left `None` keep their value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Change {
    pub status: Option<TaskStatus>,
    /// `Some(None)` clears the message.
    pub status_message: Option<Option<String>>,
    /// Replaces the outstanding input requests.
    pub input_requests: Option<Map<String, Value>>,
    /// Answers taken by the runner: removed from `input_responses`.
    pub taken_responses: Vec<String>,
    pub result: Option<Value>,
    pub error: Option<Value>,
}

impl Change {
    pub fn status(status: TaskStatus) -> Self {
        Self {
            status: Some(status),
            ..Self::default()
        }
    }

    pub fn message(mut self, message: impl Into<String>) -> Self {
        self.status_message = Some(Some(message.into()));
        self
    }
}

/// Why the store could not answer. The caller learns it as a JSON-RPC error; nothing is
/// reported done that was not written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// The store asked us to slow down (DynamoDB throttling), after the SDK's retries.
    Throttled(String),
    /// It could not be reached or did not answer in time.
    Unavailable(String),
    /// Anything else (permissions, a missing table, a malformed item).
    Failed(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Throttled(m) => write!(f, "the task store is throttling requests: {m}"),
            Self::Unavailable(m) => write!(f, "the task store is unavailable: {m}"),
            Self::Failed(m) => write!(f, "the task store failed: {m}"),
        }
    }
}

impl std::error::Error for StoreError {}

/// Where tasks live. Implementations: [`super::MemoryStore`] (one process) and
/// [`super::DynamoStore`] (every replica).
#[async_trait]
pub trait TaskStore: Send + Sync + 'static {
    /// Stores a new task; returns once a `get` anywhere would find it (a consistent write).
    async fn create(&self, record: &TaskRecord) -> Result<(), StoreError>;

    /// The task, read consistently; `None` when there is none (or it was deleted after expiry).
    async fn get(&self, id: &str) -> Result<Option<TaskRecord>, StoreError>;

    /// Applies `change` if the task exists and is not terminal; `Ok(false)` when it is terminal
    /// (or gone): the change is dropped, whoever got there first wins.
    async fn update(&self, id: &str, change: &Change, now_ms: u64) -> Result<bool, StoreError>;

    /// Records the client's answers to outstanding input requests if the task is not terminal;
    /// answers to keys that are not outstanding must have been dropped by the caller.
    async fn answer(
        &self,
        id: &str,
        responses: &Map<String, Value>,
        now_ms: u64,
    ) -> Result<bool, StoreError>;

    /// A short name for logs (`memory`, `dynamodb`).
    fn kind(&self) -> &'static str;
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

/// ISO 8601 (RFC 3339, UTC) for `createdAt` / `lastUpdatedAt`.
pub fn iso8601(ms: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// The wire name of a status (as rmcp serializes it).
pub fn status_name(status: TaskStatus) -> &'static str {
    match status {
        TaskStatus::Working => "working",
        TaskStatus::InputRequired => "input_required",
        TaskStatus::Completed => "completed",
        TaskStatus::Failed => "failed",
        TaskStatus::Cancelled => "cancelled",
        _ => "working",
    }
}

pub fn parse_status(name: &str) -> Option<TaskStatus> {
    Some(match name {
        "working" => TaskStatus::Working,
        "input_required" => TaskStatus::InputRequired,
        "completed" => TaskStatus::Completed,
        "failed" => TaskStatus::Failed,
        "cancelled" => TaskStatus::Cancelled,
        _ => return None,
    })
}
