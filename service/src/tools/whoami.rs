//! `whoami`: shows how a tool reads the caller's identity (set by the auth layer from the bearer
//! token; anonymous when auth is off). The token itself never reaches tools.

use mcp_platform::Caller;
use rmcp::{
    model::{CallToolResult, ContentBlock},
    tool, tool_router,
};

use super::Toolbox;

#[tool_router(router = whoami_router, vis = "pub(super)")]
impl Toolbox {
    #[tool(
        description = "Who is calling: the authenticated subject and its scopes (anonymous when the server runs without auth).",
        annotations(
            title = "Who am I",
            read_only_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn whoami(&self, caller: Caller) -> CallToolResult {
        let text = match caller.principal {
            Some(p) => format!("subject={} scopes={}", p.subject, p.scopes.join(" ")),
            None => "anonymous (auth is off)".to_owned(),
        };
        CallToolResult::success(vec![ContentBlock::text(text)])
    }
}
