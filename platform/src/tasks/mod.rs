//! Long-running tool calls as MCP Tasks (the `io.modelcontextprotocol/tasks` extension of
//! 2026-07-28) that any replica can answer: their state lives in a store every replica reads
//! ([`DynamoStore`]; [`MemoryStore`] for one process), never in the replica that runs them.
//!
//! A tool opts in with [`runs_as_task`] (or [`requires_task`]) next to `#[tool]`, and takes a
//! [`Work`] to report progress, ask for input and see cancellation. The call becomes a task the
//! first time the tool waits; a tool that answers without waiting (an `input_required` round, a
//! refusal, an instant result) answers the call itself:
//!
//! ```ignore
//! #[tool(description = "Builds a report.", meta = mcp_platform::tasks::runs_as_task())]
//! async fn report(&self, Parameters(args): Parameters<ReportArgs>, work: Work) -> CallToolResult
//! ```
//!
//! [`TaskServer`] wraps the service's handler ([`crate::Launch`] does it); [`Tasks`] holds the
//! store and runs the work of the tasks this replica accepted.

mod dynamo;
mod memory;
mod runtime;
mod server;
mod store;
mod work;

pub use dynamo::{DynamoOptions, DynamoStore, TTL_ATTRIBUTE, http_client as dynamo_http_client};
pub use memory::MemoryStore;
pub use runtime::{Prepared, Tasks};
pub use server::{RUNS_AS_TASK, TASK_SPAN_TARGET, TaskServer, TaskSupport};
pub use store::{Change, StoreError, TaskRecord, TaskStore};
pub use work::Work;

/// The `_meta` of a tool that runs as a task when the client speaks tasks:
/// `#[tool(meta = mcp_platform::tasks::runs_as_task())]`. Clients that do not, and services
/// with tasks off, get a plain call.
pub fn runs_as_task() -> rmcp::model::MetaObject {
    task_meta(TaskSupport::Optional)
}

/// The `_meta` of a tool that only runs as a task: `#[tool(meta = requires_task())]`. A client
/// that does not declare the extension gets `-32021` (the capability it lacks) instead of a call;
/// with tasks off the service has no tasks to offer and the tool runs as a plain call.
pub fn requires_task() -> rmcp::model::MetaObject {
    task_meta(TaskSupport::Required)
}

fn task_meta(support: TaskSupport) -> rmcp::model::MetaObject {
    let mut meta = rmcp::model::MetaObject::default();
    meta.0
        .insert(RUNS_AS_TASK.to_owned(), support.name().into());
    meta
}
