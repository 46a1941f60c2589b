//! `mcp-server`: wires configuration, telemetry, tools and the HTTP stack together.

use std::{process::ExitCode, sync::Arc, time::Duration};

use clap::{Parser, Subcommand};
use mcp_server::{
    app::App,
    config::Settings,
    http::{healthcheck, shutdown_signal},
    mcp::McpServer,
    telemetry::{self, ecs::EcsTask},
    tools::{self, Toolbox},
};

// Many small, short-lived allocations per request (JSON trees, headers, futures): mimalloc
// handles them with less contention and fragmentation than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Stateless MCP server (Streamable HTTP). Configured by APP__* environment variables and an
/// optional TOML file named by APP_CONFIG_FILE; see README.md.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve (the default).
    Serve,
    /// Exit 0 when GET /livez on the configured listener answers 200 within 2 s, else 1.
    Healthcheck,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load() {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("{err}");
            return ExitCode::from(2);
        }
    };
    match cli.command.unwrap_or(Command::Serve) {
        Command::Healthcheck => {
            match healthcheck::probe(settings.http.addr, Duration::from_secs(2)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    eprintln!("unhealthy: {err}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Serve => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("tokio runtime")
            .block_on(serve(settings)),
    }
}

/// Longest wait for the span exporter at exit (inside ECS's stopTimeout with the defaults).
const TELEMETRY_FLUSH: Duration = Duration::from_secs(3);

async fn serve(settings: Settings) -> ExitCode {
    mcp_server::install_tls_provider();
    let task = EcsTask::detect().await;
    let telemetry = match telemetry::init(&settings, task.as_ref().and_then(|t| t.as_ref().ok())) {
        Ok(telemetry) => telemetry,
        Err(err) => {
            eprintln!("{err}");
            return ExitCode::from(2);
        }
    };
    if let Some(Err(err)) = &task {
        tracing::warn!(error = %err, "could not read ECS task metadata");
    }
    let task_id = match &task {
        Some(Ok(task)) => task.task_id(),
        Some(Err(_)) => "unknown",
        None => "local",
    };
    let toolbox = Toolbox::new(&settings.tools, task_id);
    let handler = Arc::new(McpServer::new(
        toolbox,
        tools::router(),
        "mcp-server",
        env!("CARGO_PKG_VERSION"),
    ));

    let app = match App::bind(&settings, handler, telemetry.metrics.router()).await {
        Ok(app) => app,
        Err(err) => {
            tracing::error!(error = %err, "cannot start");
            eprintln!("cannot start: {err}");
            // Configuration problems exit like configuration errors.
            return ExitCode::from(if err.kind() == std::io::ErrorKind::InvalidInput {
                2
            } else {
                1
            });
        }
    };
    tracing::info!(
        mcp = %format!("http://{}/mcp", app.public_addr()),
        metrics = %format!("http://{}/metrics", app.admin_addr()),
        version = env!("CARGO_PKG_VERSION"),
        task_id,
        traces = ?telemetry.export,
        "listening"
    );
    app.run(shutdown_signal()).await;
    let _logs = telemetry.shutdown(TELEMETRY_FLUSH).await;
    tracing::info!("stopped");
    ExitCode::SUCCESS
}
