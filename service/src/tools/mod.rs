//! The tools this service offers. Each tool is one file with a `#[tool_router]` impl block on
//! [`Toolbox`], declared below and registered by one line in [`router`].

mod ping;
/* The example tools: `cargo generate` asks whether to keep them. {% if keep_example_tools %} */
mod echo;
mod report;
mod weather;
mod whoami;
/* {% endif %} */
// `just new-tool` adds a tool's module above this line.

use std::time::Duration;

use mcp_platform::Service;
use rmcp::handler::server::router::tool::ToolRouter;
use serde::Deserialize;

/// The tools' settings: `[tools]` in the config file, `APP__TOOLS__...` in the environment.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ToolSettings {
    pub ping: PingSettings,
    /* {% if keep_example_tools %} */
    pub weather: weather::WeatherSettings,
    /* {% endif %} */
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PingSettings {
    /// Simulated work inside `ping`, in milliseconds (the reference sample slept 50 or 100 ms).
    pub delay_ms: u64,
}

/// What the tools share: configuration and facts read once at start-up. Tools are stateless
/// across requests (any replica may serve any call).
#[derive(Debug, Clone)]
pub struct Toolbox {
    /// The ECS task id (last part of the task ARN), or `local` outside ECS.
    pub task_id: String,
    pub version: &'static str,
    pub ping_delay: Duration,
    /* {% if keep_example_tools %} */
    pub weather: weather::Weather,
    /* {% endif %} */
}

impl Toolbox {
    pub fn new(service: &Service, settings: &ToolSettings, task_id: impl Into<String>) -> Self {
        Self {
            task_id: task_id.into(),
            version: service.version,
            ping_delay: Duration::from_millis(settings.ping.delay_ms),
            /* {% if keep_example_tools %} */
            weather: weather::Weather::new(&settings.weather),
            /* {% endif %} */
        }
    }
}

/// Every tool, built once at start-up: one router per tool file.
pub fn router() -> ToolRouter<Toolbox> {
    [
        Toolbox::ping_router(),
        /* {% if keep_example_tools %} */
        Toolbox::echo_router(),
        Toolbox::whoami_router(),
        Toolbox::weather_router(),
        Toolbox::report_router(),
        /* {% endif %} */
        // `just new-tool` adds a tool's router above this line.
    ]
    .into_iter()
    .fold(ToolRouter::new(), |tools, tool| tools + tool)
}
