//! The tools this service offers. Each tool is one file with a `#[tool_router]` impl block on
//! [`Toolbox`]; registering it is one line in [`router`].

mod echo;
mod ping;
mod whoami;

use std::time::Duration;

use rmcp::handler::server::router::tool::ToolRouter;

use crate::config::ToolsSettings;

/// What the tools share: configuration and facts read once at start-up. Tools are stateless
/// across requests (any replica may serve any call).
#[derive(Debug, Clone)]
pub struct Toolbox {
    /// The ECS task id (last part of the task ARN), or `local` outside ECS.
    pub task_id: String,
    pub version: &'static str,
    pub ping_delay: Duration,
}

impl Toolbox {
    pub fn new(settings: &ToolsSettings, task_id: impl Into<String>) -> Self {
        Self {
            task_id: task_id.into(),
            version: env!("CARGO_PKG_VERSION"),
            ping_delay: Duration::from_millis(settings.ping.delay_ms),
        }
    }
}

/// Every tool, built once at start-up.
pub fn router() -> ToolRouter<Toolbox> {
    Toolbox::ping_router() + Toolbox::echo_router() + Toolbox::whoami_router()
}
