//! The conformance server: the fixtures the official MCP conformance suites call
//! (`@modelcontextprotocol/conformance`), served by the product's own stack. Configuration,
//! telemetry, the middleware (Host/Origin checks, limits, deadline), the ingress and the rmcp
//! engine and the start-up are exactly what a service runs; only the handler differs. Being an example, none of
//! it is compiled into the production binary:
//!
//! ```text
//! cargo build --release --example conformance
//! APP__HTTP__ADDR=127.0.0.1:8080 target/.../release/examples/conformance
//! ```
//!
//! `scripts/conformance.sh` builds it, starts it and runs both suites against it.

mod content;
mod handler;
mod input_required;
mod prompts;
mod resources;
mod seal;
mod server;
mod tasks;

use std::process::ExitCode;

use mcp_platform::{Launch, Service, Settings};

fn main() -> ExitCode {
    let service = Service {
        name: "conformance",
        version: env!("CARGO_PKG_VERSION"),
    };
    Launch::new(service).run(|_: &Settings, _| server::Conformance::new())
}
