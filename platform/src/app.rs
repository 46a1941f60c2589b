//! A runnable service: [`App`] binds the listeners and builds the stack around an MCP handler;
//! [`Launch`] is the whole start-up a service's `main` runs (settings, telemetry, the handler,
//! serving, draining), shared by every binary of the platform.

use std::{future::Future, io, net::SocketAddr, process::ExitCode, sync::Arc, time::Duration};

use axum::Router;
use clap::{CommandFactory as _, FromArgMatches as _};
use rmcp::ServerHandler;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use crate::{
    config::Settings,
    http::{
        Readiness, Server,
        auth::Authenticator,
        healthcheck,
        memory_limit::{BudgetChoice, MemoryLimit},
        rate_limit::ToolRateLimits,
        shutdown_signal,
    },
    identity::Service,
    mcp::{self, EndpointOptions},
    stack::{self, PublicService},
    tasks::{TaskServer, Tasks},
    telemetry::{ServerSpans, Telemetry, ecs::EcsTask, logs},
};

pub struct App {
    server: Server,
    public: PublicService,
    admin: Router,
    readiness: Readiness,
    mcp_shutdown: CancellationToken,
}

impl App {
    /// Binds both listeners and builds the routers; nothing is served until [`App::run`].
    /// A configuration problem found here (e.g. an unreadable JWKS file) is an
    /// [`io::ErrorKind::InvalidInput`] error.
    /// `admin` holds the admin listener's routes (`/metrics`); `spans` makes the server spans;
    /// `memory_limit`, the memory the process has, sizes the memory budget.
    pub async fn bind<H, T>(
        settings: &Settings<T>,
        handler: Arc<H>,
        admin: Router,
        spans: ServerSpans,
        memory_limit: Option<&MemoryLimit>,
    ) -> io::Result<Self>
    where
        H: ServerHandler + Send + Sync + 'static,
    {
        let auth = Authenticator::from_settings(&settings.auth)
            .await
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        // The tools are built: a limit for a tool the service does not serve is a mistake.
        let tool_rate_limits =
            ToolRateLimits::new(&settings.http, |tool| handler.get_tool(tool).is_some())
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?
                .map(Arc::new);
        let server = Server::bind(settings)?;
        let mcp_shutdown = CancellationToken::new();
        let endpoint = mcp::endpoint(
            handler,
            EndpointOptions {
                max_body_bytes: settings.http.max_body_bytes,
                shutdown: mcp_shutdown.clone(),
                spans: spans.clone(),
                tool_rate_limits,
            },
        );
        let readiness = Readiness::default();
        let budget = BudgetChoice::resolve(&settings.http, memory_limit);
        tracing::info!(
            memory_budget_bytes = budget.bytes,
            source = %budget.source,
            "memory budget for buffered requests"
        );
        let public = stack::public_service(
            &settings.http,
            budget.bytes,
            endpoint,
            auth,
            readiness.clone(),
            spans,
        );
        Ok(Self {
            server,
            public,
            admin,
            readiness,
            mcp_shutdown,
        })
    }

    pub fn public_addr(&self) -> SocketAddr {
        self.server.public_addr()
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.server.admin_addr()
    }

    /// Serves until `shutdown` resolves, then drains (see [`Server::run`]).
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        self.server
            .run(
                self.public,
                self.admin,
                self.readiness,
                self.mcp_shutdown,
                shutdown,
            )
            .await;
    }
}

/// `SERVICE [serve|healthcheck]`: configured by `APP__*` environment variables and an optional
/// TOML file named by `APP_CONFIG_FILE`.
#[derive(clap::Parser)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Serve (the default).
    Serve,
    /// Exit 0 when GET /livez on the configured listener answers 200 within 2 s, else 1 (the
    /// container health check: the runtime image has no curl).
    Healthcheck,
}

/// Longest wait for the span exporter at exit (inside ECS's stopTimeout with the defaults).
const TELEMETRY_FLUSH: Duration = Duration::from_secs(3);

/// The start-up every service runs, in order: load the settings, start telemetry, build the
/// handler (the service's tools), serve until SIGTERM, drain, flush.
pub struct Launch {
    service: Service,
}

impl Launch {
    pub fn new(service: Service) -> Self {
        Self { service }
    }

    /// Runs the command line's command. `T` is the service's own settings (`[tools]`,
    /// `APP__TOOLS__...`); `handler` builds the service's MCP handler once, from the settings and
    /// the ECS task id (`local` outside ECS). A configuration mistake exits 2 with one line.
    pub fn run<T, H>(self, handler: impl FnOnce(&Settings<T>, &str) -> H) -> ExitCode
    where
        T: DeserializeOwned,
        H: ServerHandler + Send + Sync + 'static,
    {
        crate::return_freed_memory_sooner();
        let command = Cli::command()
            .name(self.service.name)
            .version(self.service.version);
        let cli = match Cli::from_arg_matches(&command.get_matches()) {
            Ok(cli) => cli,
            Err(err) => err.exit(),
        };
        let settings = match Settings::<T>::load() {
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
                .block_on(self.serve(settings, handler)),
        }
    }

    async fn serve<T, H>(
        self,
        settings: Settings<T>,
        handler: impl FnOnce(&Settings<T>, &str) -> H,
    ) -> ExitCode
    where
        H: ServerHandler + Send + Sync + 'static,
    {
        crate::install_tls_provider();
        let task = EcsTask::detect().await;
        let telemetry = match Telemetry::init(
            &self.service,
            &settings,
            task.as_ref().and_then(|t| t.as_ref().ok()),
        ) {
            Ok(telemetry) => telemetry,
            Err(err) => {
                eprintln!("{err}");
                return ExitCode::from(2);
            }
        };
        logs::log_panics();
        if let Some(Err(err)) = &task {
            tracing::warn!(error = %err, "could not read ECS task metadata");
        }
        let task_id = match &task {
            Some(Ok(task)) => task.task_id(),
            Some(Err(_)) => "unknown",
            None => "local",
        };
        let tasks = match Tasks::from_settings(&settings.tasks).await {
            Ok(tasks) => tasks,
            Err(err) => {
                eprintln!("{err}");
                return ExitCode::from(2);
            }
        };
        // Tools marked as tasks run as tasks when a store is configured.
        let handler = Arc::new(TaskServer::new(handler(&settings, task_id), tasks.clone()));
        let memory_limit = MemoryLimit::detect(task.as_ref().and_then(|t| t.as_ref().ok()));
        let app = match App::bind(
            &settings,
            handler,
            telemetry.metrics.router(),
            telemetry.spans.clone(),
            memory_limit.as_ref(),
        )
        .await
        {
            Ok(app) => app,
            Err(err) => {
                tracing::error!(error = %err, "cannot start");
                eprintln!("cannot start: {err}");
                // Configuration problems exit like configuration errors.
                return ExitCode::from(if err.kind() == io::ErrorKind::InvalidInput {
                    2
                } else {
                    1
                });
            }
        };
        tracing::info!(
            service = self.service.name,
            version = self.service.version,
            mcp = %format!("http://{}{}", app.public_addr(), mcp::MCP_PATH),
            metrics = %format!("http://{}/metrics", app.admin_addr()),
            task_id,
            traces = ?telemetry.export,
            "listening"
        );
        // Running tasks may go on until the HTTP drain is over (drain delay + grace); what still
        // runs then is marked failed, for the client to read from any replica.
        let drain = settings.shutdown.drain_delay() + settings.shutdown.grace();
        let draining = tasks.clone();
        app.run(async move {
            shutdown_signal().await;
            if let Some(tasks) = draining {
                tasks.shut_down_at(tokio::time::Instant::now() + drain);
            }
        })
        .await;
        if let Some(tasks) = &tasks {
            tasks.drained().await;
        }
        let _logs = telemetry.shutdown(TELEMETRY_FLUSH).await;
        tracing::info!("stopped");
        ExitCode::SUCCESS
    }
}
