//! The conformance server: the fixtures the official MCP conformance suites call
//! (`@modelcontextprotocol/conformance`), served by the product's own stack. Configuration,
//! telemetry, the middleware (Host/Origin checks, limits, deadline), the ingress and the rmcp
//! engine are exactly what `mcp-server` runs; only the handler differs. Being an example, none of
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

use std::{process::ExitCode, sync::Arc, time::Duration};

use mcp_server::{app::App, config::Settings, http::shutdown_signal, telemetry};

fn main() -> ExitCode {
    let settings = match Settings::load() {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("{err}");
            return ExitCode::from(2);
        }
    };
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(serve(settings))
}

async fn serve(settings: Settings) -> ExitCode {
    mcp_server::install_tls_provider();
    let telemetry = match telemetry::init(&settings, None) {
        Ok(telemetry) => telemetry,
        Err(err) => {
            eprintln!("{err}");
            return ExitCode::from(2);
        }
    };
    let handler = Arc::new(handler::Conformance::new());
    let app = match App::bind(&settings, handler, telemetry.metrics.router()).await {
        Ok(app) => app,
        Err(err) => {
            eprintln!("cannot start: {err}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(mcp = %format!("http://{}/mcp", app.public_addr()), "conformance server listening");
    app.run(shutdown_signal()).await;
    let _logs = telemetry.shutdown(Duration::from_secs(1)).await;
    ExitCode::SUCCESS
}
