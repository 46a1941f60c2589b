//! Listeners and lifecycle: bind, serve with `TCP_NODELAY`, a first-byte and a header-read
//! deadline and a cap on open connections, and on SIGTERM/SIGINT drain the way an ECS task
//! behind an ALB must (see [`Server::run`]).

use std::{
    convert::Infallible,
    future::Future,
    io,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{
    Router,
    body::Body,
    extract::{ConnectInfo, Request},
    response::Response,
};
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::{conn::auto, graceful::GracefulShutdown},
    service::TowerToHyperService,
};
use tokio::{
    net::{TcpListener, TcpSocket},
    sync::{OwnedSemaphorePermit, Semaphore},
};
use tokio_util::sync::CancellationToken;
use tower::{Service, ServiceExt};

use crate::{
    config::Settings,
    telemetry::{
        self,
        metrics::{labels, names, refused},
    },
};

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
    limits: ConnectionLimits,
    max_connections: usize,
    drain_delay: Duration,
    grace: Duration,
}

impl Server {
    pub fn bind<T>(settings: &Settings<T>) -> io::Result<Self> {
        let public = listen(
            settings.http.addr,
            settings.http.max_connections,
            "APP__HTTP__ADDR",
        )?;
        let admin = listen(settings.admin.addr, ADMIN_BACKLOG, "APP__ADMIN__ADDR")?;
        Ok(Self {
            public,
            admin,
            limits: ConnectionLimits {
                header_read: settings.http.header_read_timeout(),
                first_byte: settings.http.first_byte_timeout(),
                slots: None,
            },
            max_connections: settings.http.max_connections,
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
    pub async fn run<S>(
        self,
        app: S,
        admin: Router,
        readiness: Readiness,
        after_drain: CancellationToken,
        shutdown: impl Future<Output = ()>,
    ) where
        S: Service<Request, Response = Response, Error = Infallible>
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        let stop_accepting = CancellationToken::new();
        // Only the public listener's connections are capped and counted: the admin listener is
        // loopback, and a full public listener must not hide the metrics that show it.
        let public_limits = ConnectionLimits {
            slots: Some(Arc::new(Semaphore::new(self.max_connections))),
            ..self.limits.clone()
        };
        let public = tokio::spawn(accept_loop(
            self.public,
            app,
            public_limits,
            stop_accepting.clone(),
        ));
        let admin = tokio::spawn(accept_loop(
            self.admin,
            admin,
            self.limits,
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

/// A connection's read buffer at most (request headers must fit in it). hyper's default lets
/// each buffer grow to ~400 KiB while a body streams in, memory the budget cannot see: across
/// thousands of connections uploading at once, more than the budget itself.
const MAX_READ_BUFFER: usize = 64 * 1024;

/// The admin listener's accept queue: its clients are a scraper and health checks.
const ADMIN_BACKLOG: usize = 128;

/// Binds `addr` with an accept queue of `backlog` connections (the kernel caps it at
/// `net.core.somaxconn`). `TcpListener::bind` queues only 128: a burst of new connections beyond
/// that, while the accept loop waits for a core, has its handshakes dropped and retried a second
/// later.
fn listen(addr: SocketAddr, backlog: usize, key: &str) -> io::Result<TcpListener> {
    let bound = || {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        socket.listen(u32::try_from(backlog).unwrap_or(u32::MAX))
    };
    bound().map_err(|e| io::Error::new(e.kind(), format!("cannot bind {key} {addr}: {e}")))
}

/// What a listener allows a connection before and while it sends requests.
#[derive(Clone)]
struct ConnectionLimits {
    /// For the request head, and for a kept-alive connection's next request (hyper runs one
    /// timer for both).
    header_read: Duration,
    /// For a new connection's first byte: hyper's header timer starts only once the first bytes
    /// have told HTTP/1 from HTTP/2, so a connection that sends nothing is held until this ends.
    first_byte: Duration,
    /// Open connections allowed; `None`: not capped nor counted.
    slots: Option<Arc<Semaphore>>,
}

/// A connection's place among the open ones: counted in the gauge until it closes.
struct OpenConnection(#[expect(dead_code, reason = "held for its drop")] OwnedSemaphorePermit);

impl OpenConnection {
    /// `None` when every place is taken.
    fn admit(slots: &Arc<Semaphore>) -> Option<Self> {
        let permit = slots.clone().try_acquire_owned().ok()?;
        metrics::gauge!(names::OPEN_CONNECTIONS).increment(1.0);
        Some(Self(permit))
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        metrics::gauge!(names::OPEN_CONNECTIONS).decrement(1.0);
    }
}

async fn accept_loop<S>(
    listener: TcpListener,
    app: S,
    limits: ConnectionLimits,
    stop: CancellationToken,
) -> GracefulShutdown
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
{
    // Watches every connection, so the caller can wait for them once accepting has stopped.
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read)
        .max_buf_size(MAX_READ_BUFFER);
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);
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
        let open = match &limits.slots {
            Some(slots) => match OpenConnection::admit(slots) {
                Some(open) => Some(open),
                None => {
                    // Closed at once (dropped): a queue of them would hold what the cap saves.
                    refuse(refused::CONNECTION_LIMIT);
                    tracing::warn!("connection refused: too many connections open");
                    continue;
                }
            },
            None => None,
        };
        // Without it, small responses wait for the peer's delayed ACK.
        let _ = stream.set_nodelay(true);
        let service = app
            .clone()
            .map_request(move |req: http::Request<Incoming>| {
                let mut req = req.map(Body::new);
                req.extensions_mut().insert(ConnectInfo(peer));
                req
            });
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let first_byte = limits.first_byte;
        tokio::spawn(async move {
            let _open = open;
            // Also ends on end of stream or an error, which hyper then handles as a close.
            if tokio::time::timeout(first_byte, stream.peek(&mut [0u8]))
                .await
                .is_err()
            {
                refuse(refused::FIRST_BYTE_TIMEOUT);
                tracing::debug!("connection closed: nothing sent within the first-byte deadline");
                return;
            }
            let conn = builder
                .serve_connection_with_upgrades(
                    TokioIo::new(stream),
                    TowerToHyperService::new(service),
                )
                .into_owned();
            let _ = watcher.watch(conn).await;
        });
    }
}

fn refuse(reason: &'static str) {
    metrics::counter!(names::REFUSED_CONNECTIONS, labels::REASON => reason).increment(1);
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
