//! This service's tools on the platform. Start-up, as the README tells it: the
//! platform loads the settings (the platform's and this service's `[tools]`), starts telemetry,
//! asks this file for the tools, then serves until SIGTERM and drains.

mod tools;

use std::process::ExitCode;

use mcp_platform::{Launch, McpServer, Service, Settings};

use crate::tools::{ToolSettings, Toolbox};

#[global_allocator]
static ALLOCATOR: mcp_platform::Allocator = mcp_platform::Allocator;

/// This service's name and version: its crate's.
const SERVICE: Service = mcp_platform::service!();

fn main() -> ExitCode {
    Launch::new(SERVICE).run(|settings: &Settings<ToolSettings>, task_id| {
        let toolbox = Toolbox::new(&SERVICE, &settings.tools, task_id);
        McpServer::new(&SERVICE, toolbox, tools::router())
    })
}
