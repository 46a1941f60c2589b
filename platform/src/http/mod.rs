//! The HTTP side of the platform: listeners and lifecycle ([`server`]), the layers of the stack
//! (each in its own module; [`crate::stack`] puts them in order) and the health routes. Nothing
//! here knows which protocol the endpoint behind it speaks, beyond answering in JSON-RPC.

pub mod access_log;
pub mod auth;
pub mod body;
pub mod budget;
pub mod cors;
pub mod deadline;
pub mod guard;
pub mod healthcheck;
pub mod memory_limit;
pub mod post_only;
pub mod rate_limit;
pub mod refusals;
pub mod request_id;
pub mod route;
pub mod sampled_log;
pub mod server;
pub mod shed;

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use axum::{
    Json,
    extract::{Request, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use futures::future::Either;
use serde_json::json;
use tower::{Layer, Service};

/// The future of a layer that does work around its inner service's.
pub type Handled = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

/// A layer that works around the rest of the stack: it reads or changes the request, calls
/// `next` at once (or answers without it), and works on the answer. Each is an [`AroundLayer`]:
/// one `Service` serves them all.
pub trait Around: Send + Sync + 'static {
    fn around<F>(self: &Arc<Self>, req: Request, next: impl FnOnce(Request) -> F) -> Handled
    where
        F: Future<Output = Result<Response, Infallible>> + Send + 'static;
}

/// An [`Around`] as a layer, its state shared by every request.
pub struct AroundLayer<A>(Arc<A>);

impl<A> AroundLayer<A> {
    pub fn new(around: A) -> Self {
        Self(Arc::new(around))
    }

    /// A layer of state already shared elsewhere.
    pub fn shared(around: Arc<A>) -> Self {
        Self(around)
    }
}

impl<A> Clone for AroundLayer<A> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<S, A> Layer<S> for AroundLayer<A> {
    type Service = Wrapped<S, A>;

    fn layer(&self, inner: S) -> Self::Service {
        Wrapped {
            inner,
            around: self.0.clone(),
        }
    }
}

pub struct Wrapped<S, A> {
    inner: S,
    around: Arc<A>,
}

impl<S: Clone, A> Clone for Wrapped<S, A> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            around: self.around.clone(),
        }
    }
}

impl<S, A, B> Service<Request> for Wrapped<S, A>
where
    S: Service<Request, Response = Response<B>, Error = Infallible>,
    S::Future: Send + 'static,
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
    A: Around,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Handled;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let inner = &mut self.inner;
        self.around.around(req, |req| {
            let handled = inner.call(req);
            async move { Ok(handled.await?.map(axum::body::Body::new)) }
        })
    }
}

/// The future of a check: its refusal, or the inner service's future untouched.
pub type Checked<F> = Either<std::future::Ready<Result<Response, Infallible>>, F>;

/// A check a request must pass before the rest of the stack: the shed-free refusals (Host and
/// Origin, the method, the caller's rate), each a [`CheckLayer`] of its own.
pub trait Check: Send + Sync + 'static {
    /// The answer instead of the inner service's, when the request fails the check.
    fn check(&self, req: &Request) -> Option<Response>;
}

/// A [`Check`] as a layer, its state shared by every request.
pub struct CheckLayer<C>(Arc<C>);

impl<C> CheckLayer<C> {
    pub fn new(check: C) -> Self {
        Self(Arc::new(check))
    }
}

impl<C> Clone for CheckLayer<C> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<S, C> Layer<S> for CheckLayer<C> {
    type Service = CheckedBy<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        CheckedBy {
            inner,
            check: self.0.clone(),
        }
    }
}

pub struct CheckedBy<S, C> {
    inner: S,
    check: Arc<C>,
}

impl<S: Clone, C> Clone for CheckedBy<S, C> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            check: self.check.clone(),
        }
    }
}

impl<S, C> Service<Request> for CheckedBy<S, C>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    C: Check,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Checked<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        match self.check.check(&req) {
            Some(refusal) => Either::Left(std::future::ready(Ok(refusal))),
            None => Either::Right(self.inner.call(req)),
        }
    }
}

pub use server::{Readiness, Server, shutdown_signal};

pub const LIVEZ_PATH: &str = "/livez";
pub const READYZ_PATH: &str = "/readyz";

/// Whether a path is a health probe's: probes are answered, counted, and neither traced nor
/// logged when healthy (they arrive every few seconds from every load balancer node).
pub fn is_health_probe(route: &str) -> bool {
    route == LIVEZ_PATH || route == READYZ_PATH
}

/// Whether a response is an event stream (SSE) rather than a complete body.
pub fn is_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"))
}

/// Whether a message is JSON (`application/json`, any parameters).
pub fn is_json(headers: &HeaderMap) -> bool {
    headers.get(header::CONTENT_TYPE).is_some_and(|v| {
        let mime = v
            .as_bytes()
            .split(|b| *b == b';')
            .next()
            .unwrap_or_default();
        mime.trim_ascii().eq_ignore_ascii_case(b"application/json")
    })
}

/// `GET /livez`: the process is alive.
pub async fn livez() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// `GET /readyz`: 200 while the listener should receive traffic, 503 once draining.
pub async fn readyz(State(readiness): State<Readiness>) -> impl IntoResponse {
    if readiness.is_ready() {
        (StatusCode::OK, Json(json!({ "status": "ready" })))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "draining" })),
        )
    }
}
