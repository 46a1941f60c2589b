//! Listeners and lifecycle: bind, serve with `TCP_NODELAY` and a header-read timeout, and on
//! SIGTERM/SIGINT drain the way an ECS task behind an ALB must (see [`Server::run`]).

use std::{
    future::Future,
    io,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{Router, extract::ConnectInfo};
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::{conn::auto, graceful::GracefulShutdown},
    service::TowerToHyperService,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::{config::Settings, telemetry};

/// Whether the public listener should receive traffic (`/readyz`).
#[derive(Debug, Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
    fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::Relaxed);
    }
}

/// The bound listeners; binding early lets callers learn the ports (tests bind port 0).
pub struct Server {
    public: TcpListener,
    admin: TcpListener,
    header_read_timeout: Duration,
    drain_delay: Duration,
    grace: Duration,
}

impl Server {
    pub async fn bind<T>(settings: &Settings<T>) -> io::Result<Self> {
        let public = TcpListener::bind(settings.http.addr).await.map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot bind APP__HTTP__ADDR {}: {e}", settings.http.addr),
            )
        })?;
        let admin = TcpListener::bind(settings.admin.addr).await.map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot bind APP__ADMIN__ADDR {}: {e}", settings.admin.addr),
            )
        })?;
        Ok(Self {
            public,
            admin,
            header_read_timeout: settings.http.header_read_timeout(),
            drain_delay: settings.shutdown.drain_delay(),
            grace: settings.shutdown.grace(),
        })
    }

    pub fn public_addr(&self) -> SocketAddr {
        self.public
            .local_addr()
            .expect("bound listener has an address")
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
            .local_addr()
            .expect("bound listener has an address")
    }

    /// Serves until `shutdown` resolves, then:
    /// 1. `/readyz` turns 503 at once, and the listener keeps serving for the drain delay (the
    ///    ALB needs a few health checks to stop routing here);
    /// 2. stops accepting and lets in-flight requests finish within the grace period;
    /// 3. only then cancels `after_drain` (rmcp's token: cancelling it earlier turns in-flight
    ///    requests into 500s).
    pub async fn run(
        self,
        app: Router,
        admin: Router,
        readiness: Readiness,
        after_drain: CancellationToken,
        shutdown: impl Future<Output = ()>,
    ) {
        let stop_accepting = CancellationToken::new();
        let public = tokio::spawn(accept_loop(
            self.public,
            app,
            self.header_read_timeout,
            stop_accepting.clone(),
        ));
        let admin = tokio::spawn(accept_loop(
            self.admin,
            admin,
            self.header_read_timeout,
            stop_accepting.clone(),
        ));
        readiness.set(true);
        tracing::info!("ready");

        shutdown.await;
        let t0 = Instant::now();
        readiness.set(false);
        tracing::info!(
            drain_delay_ms = self.drain_delay.as_millis() as u64,
            "shutdown: /readyz is now 503; still serving during the drain delay"
        );
        tokio::time::sleep(self.drain_delay).await;

        stop_accepting.cancel();
        // Metrics scrapes are not waited for; requests on the public listener are.
        let _ = admin.await;
        let graceful = public.await.unwrap_or_default();
        let in_flight = graceful.count();
        tracing::info!(
            elapsed_ms = t0.elapsed().as_millis() as u64,
            open_connections = in_flight,
            grace_ms = self.grace.as_millis() as u64,
            "shutdown: stopped accepting; waiting for in-flight requests"
        );
        match tokio::time::timeout(self.grace, graceful.shutdown()).await {
            Ok(()) => tracing::info!(
                elapsed_ms = t0.elapsed().as_millis() as u64,
                "shutdown: all connections finished"
            ),
            Err(_) => tracing::warn!(
                elapsed_ms = t0.elapsed().as_millis() as u64,
                "shutdown: grace period over; remaining connections are cut"
            ),
        }
        after_drain.cancel();
    }
}

async fn accept_loop(
    listener: TcpListener,
    app: Router,
    header_read_timeout: Duration,
    stop: CancellationToken,
) -> GracefulShutdown {
    // Watches every connection, so the caller can wait for them once accepting has stopped.
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    builder.http2().timer(TokioTimer::new());
    loop {
        let (stream, peer) = tokio::select! {
            _ = stop.cancelled() => return graceful,
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Usually EMFILE: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // Without it, small responses wait for the peer's delayed ACK (~40 ms each).
        let _ = stream.set_nodelay(true);
        let service = app
            .clone()
            .map_request(move |mut req: axum::extract::Request<_>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                req
            });
        let conn = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(service))
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
}

/// Resolves on the first SIGTERM or SIGINT; a second one ends the process at once.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("install SIGINT handler");
    let mut next = async move || {
        tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        }
    };
    let first = next().await;
    tracing::info!(signal = first, "shutdown signal received");
    tokio::spawn(async move {
        let second = next().await;
        tracing::warn!(signal = second, "second shutdown signal: exiting now");
        telemetry::logs::flush();
        std::process::exit(1);
    });
}
