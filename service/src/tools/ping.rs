//! `ping`: the reference sample's tool. Answers which task served the call, the build version and
//! how long the call took, as text and as structured content.

use std::time::Instant;

use rmcp::{
    handler::server::tool::schema_for_output,
    model::{CallToolResult, ContentBlock},
    tool, tool_router,
};
use schemars::JsonSchema;
use serde::Serialize;
use tracing::Instrument as _;

use super::Toolbox;

/// The structured form of a pong.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Pong {
    /// ECS task id that served the call (`local` outside ECS).
    pub task_id: String,
    /// Version of the server build.
    pub version: String,
    /// Time the call took inside the tool, in milliseconds.
    pub duration_ms: u64,
}

#[tool_router(router = ping_router, vis = "pub(super)")]
impl Toolbox {
    #[tool(
        description = "Health probe: answers `pong! taskId=<task> v=<version> d=<ms>` (which task served the call, the build version, and the milliseconds the call took).",
        output_schema = schema_for_output::<Pong>(),
        annotations(title = "Ping", read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn ping(&self) -> CallToolResult {
        let started = Instant::now();
        if !self.ping_delay.is_zero() {
            // How a tool traces its own work: a `tracing` span, exported as a child of the
            // call's MCP span.
            tokio::time::sleep(self.ping_delay)
                .instrument(tracing::info_span!("ping.delay"))
                .await;
        }
        let pong = Pong {
            task_id: self.task_id.clone(),
            version: self.version.to_owned(),
            duration_ms: started.elapsed().as_millis() as u64,
        };
        let text = format!(
            "pong! taskId={} v={} d={}",
            pong.task_id, pong.version, pong.duration_ms
        );
        let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
        result.structured_content = serde_json::to_value(&pong).ok();
        result
    }
}
