//! The outermost layer of the stack: it takes the request id, makes the [`RequestContext`] and
//! the request's `tracing` span, turns plain refusals into JSON-RPC ([`refusals`]), echoes the id,
//! and once the response is finished (or abandoned) records the `http.server.*` metrics, the
//! access log line and, unless the endpoint made the request's server span itself, the HTTP
//! server span. Hand-written: tower-http's `TraceLayer` ends at the response head, and an event
//! stream is in flight to its last byte; metrics, span and access line here come from one
//! observation.

use std::{
    borrow::Cow,
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::{Arc, OnceLock},
    task::{Context, Poll},
    time::{Instant, SystemTime},
};

use axum::{
    body::Body,
    extract::{ConnectInfo, Request},
    http::{Method, StatusCode, Version, header},
    response::Response,
};
use bytes::Bytes;
use metrics::{Gauge, Label};
use opentelemetry::{
    KeyValue,
    trace::{SpanBuilder, Status, TraceContextExt as _},
};
use tower::Service;
use tracing::Instrument;

use super::{
    body::Guarded,
    refusals,
    request_id::{self, X_REQUEST_ID},
};
use crate::{
    context::{self, RequestContext},
    telemetry::{
        self, Tracing,
        metrics::{HistogramSeries, labels, names},
        semconv,
    },
};

/// The outermost layer, around the router. A service rather than axum's `from_fn` inside
/// `Router::layer`: that one boxes and clones the layers below it for every request, and
/// `Router::layer` clones each route's whole stack again (callgrind: ~2,200 instructions a
/// request).
#[derive(Clone)]
pub struct Observe<S> {
    inner: S,
    observer: Arc<Observer>,
}

impl<S> Observe<S> {
    pub fn new(inner: S, observer: Arc<Observer>) -> Self {
        Self { inner, observer }
    }
}

impl<S, B> Service<Request> for Observe<S>
where
    S: Service<Request, Response = Response<B>, Error = Infallible>,
    S::Future: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    /// Opens the request: its id, and its context with its `tracing` span, which every future of
    /// the request runs in; records it when the response body is finished or dropped.
    fn call(&mut self, mut req: Request) -> Self::Future {
        let started = Instant::now();
        let observer = self.observer.clone();
        let request_id = request_id::take_or_make(&mut req);
        let span = context::request_span(request_id.to_str().unwrap_or_default());
        let context = RequestContext::new(request_id.clone(), started, span.clone());
        let method = semconv::known_method(req.method());
        let route = observer.route(req.uri().path());
        let probe = route.as_deref().is_some_and(super::is_health_probe);
        // Made at the end unless the endpoint made the request's server span (health probes:
        // never).
        let http_span = (!probe && observer.tracing.0.is_some()).then(|| {
            (
                telemetry::context_from_headers(req.headers()),
                http_span(&req, method, route.as_deref(), context.request_id()),
                SystemTime::now(),
            )
        });
        req.extensions_mut().insert(context.clone());
        // Made before the request is handled: when the client goes away, its future is dropped
        // here, and the observation still records the request (and takes it out of the
        // in-flight gauge).
        let mut observation = Observation {
            context,
            observer,
            http_span,
            method,
            route,
            status: None,
        };
        observation.observer.active_requests().increment(1.0);
        let handled = span.in_scope(|| self.inner.call(req));
        Box::pin(
            async move {
                let response = match handled.await {
                    Ok(response) => response.map(Body::new),
                    Err(never) => match never {},
                };
                let mut response =
                    refusals::as_json_rpc(response, Some(&observation.context)).await;
                response
                    .headers_mut()
                    .entry(&X_REQUEST_ID)
                    .or_insert(request_id);
                observation.status = Some(response.status());
                Ok(response.map(|body| Body::new(Guarded::new(body, observation))))
            }
            .instrument(span),
        )
    }
}

/// What the observe layer keeps across requests.
pub struct Observer {
    tracing: Tracing,
    /// The router's paths (all static): a request's `http.route`.
    routes: Vec<String>,
    active_requests: OnceLock<Gauge>,
    /// `http.server.request.duration`, by method, status code, route and error type.
    durations: HistogramSeries,
}

impl Observer {
    pub fn new(tracing: Tracing, routes: Vec<String>) -> Arc<Self> {
        Arc::new(Self {
            tracing,
            routes,
            active_requests: OnceLock::new(),
            durations: HistogramSeries::new(names::HTTP_REQUEST_DURATION),
        })
    }

    /// The route `path` matches, if any (the router's routes have no parameters).
    fn route(&self, path: &str) -> Option<Cow<'static, str>> {
        self.routes
            .iter()
            .any(|route| route == path)
            .then(|| route_label(path))
    }

    fn active_requests(&self) -> &Gauge {
        self.active_requests
            .get_or_init(|| metrics::gauge!(names::HTTP_ACTIVE_REQUESTS))
    }
}

/// The HTTP server span's name and request attributes (semantic conventions).
fn http_span(
    req: &Request,
    method: &'static str,
    route: Option<&str>,
    request_id: &str,
) -> SpanBuilder {
    let name = match route {
        Some(route) => format!("{method} {route}"),
        None => method.to_owned(),
    };
    let attributes = http_attributes(
        req.method(),
        req.uri(),
        route,
        req.version(),
        req.headers(),
        req.extensions(),
        request_id,
    );
    SpanBuilder::from_name(name).with_attributes(attributes)
}

/// A request's HTTP attributes (semantic conventions), for whichever span is its server span.
pub fn http_attributes(
    method: &Method,
    uri: &axum::http::Uri,
    route: Option<&str>,
    version: Version,
    headers: &axum::http::HeaderMap,
    extensions: &axum::http::Extensions,
    request_id: &str,
) -> Vec<KeyValue> {
    let mut attributes = vec![
        KeyValue::new(semconv::HTTP_REQUEST_METHOD, semconv::known_method(method)),
        KeyValue::new(semconv::URL_PATH, uri.path().to_owned()),
        KeyValue::new(semconv::URL_SCHEME, "http"),
        KeyValue::new(semconv::NETWORK_PROTOCOL_VERSION, protocol_version(version)),
        KeyValue::new(semconv::REQUEST_ID, request_id.to_owned()),
    ];
    if let Some(route) = route {
        attributes.push(KeyValue::new(semconv::HTTP_ROUTE, route_label(route)));
    }
    if let Some(peer) = extensions.get::<ConnectInfo<std::net::SocketAddr>>() {
        attributes.push(KeyValue::new(
            semconv::CLIENT_ADDRESS,
            peer.0.ip().to_string(),
        ));
    }
    if let Some(agent) = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
    {
        attributes.push(KeyValue::new(
            semconv::USER_AGENT_ORIGINAL,
            agent.to_owned(),
        ));
    }
    attributes
}

/// Our routes are a handful of static paths; labels borrow the common ones instead of allocating.
fn route_label(path: &str) -> Cow<'static, str> {
    match path {
        "/mcp" => Cow::Borrowed("/mcp"),
        super::LIVEZ_PATH => Cow::Borrowed(super::LIVEZ_PATH),
        super::READYZ_PATH => Cow::Borrowed(super::READYZ_PATH),
        other => Cow::Owned(other.to_owned()),
    }
}

/// Status codes as label values, without formatting the common ones.
fn status_label(status: StatusCode) -> Cow<'static, str> {
    match status.as_u16() {
        200 => "200".into(),
        202 => "202".into(),
        400 => "400".into(),
        401 => "401".into(),
        403 => "403".into(),
        404 => "404".into(),
        405 => "405".into(),
        406 => "406".into(),
        413 => "413".into(),
        415 => "415".into(),
        500 => "500".into(),
        503 => "503".into(),
        504 => "504".into(),
        other => other.to_string().into(),
    }
}

fn protocol_version(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "0.9",
        Version::HTTP_10 => "1.0",
        Version::HTTP_2 => "2",
        Version::HTTP_3 => "3",
        _ => "1.1",
    }
}

/// Recorded when the response body is finished (or abandoned), so streamed responses are
/// measured to their last byte.
struct Observation {
    context: RequestContext,
    observer: Arc<Observer>,
    /// The HTTP server span to make at the end (parent, span, start), unless the endpoint made
    /// the request's server span.
    http_span: Option<(opentelemetry::Context, SpanBuilder, SystemTime)>,
    method: &'static str,
    route: Option<Cow<'static, str>>,
    /// `None` while no response exists: dropped so, the request was cancelled.
    status: Option<StatusCode>,
}

impl Drop for Observation {
    fn drop(&mut self) {
        let elapsed = self.context.received().elapsed();
        self.observer.active_requests().decrement(1.0);
        let status = self.status.map(|status| status.as_u16());
        let status_text = self.status.map(status_label);
        // Server spans: only 5xx are errors (semantic conventions); a request with no response
        // has no status code, and its error type says why.
        let error_type = match (self.status, &status_text) {
            (Some(status), Some(text)) => status.is_server_error().then(|| text.clone()),
            _ => Some(Cow::Borrowed(semconv::CANCELLED)),
        };
        self.observer.durations.record(
            [
                Some(Label::new(labels::HTTP_REQUEST_METHOD, self.method)),
                status_text.map(|status| Label::new(labels::HTTP_RESPONSE_STATUS_CODE, status)),
                self.route
                    .clone()
                    .map(|route| Label::new(labels::HTTP_ROUTE, route)),
                error_type
                    .clone()
                    .map(|error| Label::new(labels::ERROR_TYPE, error)),
            ],
            elapsed.as_secs_f64(),
        );

        let made_by_endpoint = self.context.trace().is_some();
        if let Some((parent, builder, start)) = self.http_span.take()
            && !made_by_endpoint
            && let Some(trace) = self
                .observer
                .tracing
                .start_server_span(|| (parent, builder.with_start_time(start)))
        {
            let span = trace.span();
            if let Some(status) = status {
                span.set_attribute(KeyValue::new(
                    semconv::HTTP_RESPONSE_STATUS_CODE,
                    i64::from(status),
                ));
            }
            if let Some(error_type) = &error_type {
                span.set_attribute(KeyValue::new(semconv::ERROR_TYPE, error_type.to_string()));
                if self.status.is_some() {
                    span.set_status(Status::error(""));
                }
            }
            span.end();
            self.context.set_trace(trace);
        }
        // Health checks arrive every few seconds from every load balancer node: metrics only.
        let probe = self.route.as_deref().is_some_and(super::is_health_probe);
        if probe && self.status == Some(StatusCode::OK) {
            return;
        }
        let rpc = self.context.rpc();
        tracing::info!(
            parent: self.context.span(),
            http.method = self.method,
            http.route = self.route.as_deref().unwrap_or(""),
            http.status = status,
            error.type = error_type.as_deref(),
            mcp.method = rpc.and_then(|r| r.method.as_deref()),
            mcp.target = rpc.and_then(|r| r.target.as_deref()),
            mcp.error = self.context.rpc_error().filter(|e| !e.is_empty()),
            duration_ms = elapsed.as_secs_f64() * 1000.0,
            "request"
        );
    }
}
