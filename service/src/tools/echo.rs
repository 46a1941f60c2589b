//! `echo`: an example of a typed input schema. The platform validates every call against it before
//! the tool runs: arguments that break its rules (the lengths and ranges below) come back as a tool
//! error naming the path and the rule, which the model can read and correct (not a protocol
//! error), so the tool itself checks nothing.

use rmcp::{
    handler::server::wrapper::Parameters,
    model::{CallToolResult, ContentBlock},
    tool, tool_router,
};
use schemars::JsonSchema;
use serde::Deserialize;

use super::Toolbox;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EchoArgs {
    /// The text to echo back (1 to 4096 characters).
    #[schemars(length(min = 1, max = 4096))]
    pub text: String,
    /// How many times to repeat the text, joined by spaces (1 to 10; default 1).
    #[serde(default)]
    #[schemars(range(min = 1, max = 10))]
    pub repeat: Option<u32>,
    /// Return the text in upper case.
    #[serde(default)]
    pub uppercase: bool,
}

#[tool_router(router = echo_router, vis = "pub(super)")]
impl Toolbox {
    #[tool(
        description = "Echo text back, optionally repeated and upper-cased.",
        annotations(
            title = "Echo",
            read_only_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn echo(&self, Parameters(args): Parameters<EchoArgs>) -> CallToolResult {
        let text = if args.uppercase {
            args.text.to_uppercase()
        } else {
            args.text
        };
        let repeated = vec![text; args.repeat.unwrap_or(1) as usize].join(" ");
        CallToolResult::success(vec![ContentBlock::text(repeated)])
    }
}
