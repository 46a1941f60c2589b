//! The outermost layer of the stack: it makes the [`RequestContext`], and once the response is
//! finished (or abandoned) records the `http.server.*` metrics, the access log line and, unless
//! the endpoint made the request's server span itself, the HTTP server span. Hand-written:
//! tower-http's `TraceLayer` ends at the response head and would add a `tracing` span per request
//! (making the server's spans with the OpenTelemetry API measured ~8 % more requests per second,
//! commit 8455d23); metrics, span and access line here come from one observation.

use std::{
    borrow::Cow,
    time::{Instant, SystemTime},
};

use axum::{
    body::Body,
    extract::{ConnectInfo, MatchedPath, Request, State},
    http::{Method, StatusCode, Version, header},
    middleware::Next,
    response::Response,
};
use metrics::Label;
use opentelemetry::{
    KeyValue,
    trace::{SpanBuilder, Status, TraceContextExt as _},
};
use tower_http::request_id::RequestId;
use tracing::{Instrument, Span, field::Empty};

use super::body::Guarded;
use crate::{
    context::RequestContext,
    telemetry::{
        self, Tracing,
        metrics::{labels, names},
        semconv,
    },
};

/// Opens the request: its context and the `tracing` span its log lines carry; records it when
/// the response body is finished or dropped.
pub async fn observe(State(tracing): State<Tracing>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let request_id = req
        .extensions()
        .get::<RequestId>()
        .map(|id| id.header_value().clone())
        .unwrap_or_else(|| header::HeaderValue::from_static("-"));
    let context = RequestContext::new(request_id, started);
    let method = known_method(req.method());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| route_label(p.as_str()));
    let probe = route.as_deref().is_some_and(super::is_health_probe);
    // Made at the end unless the endpoint made the request's server span (health probes: never).
    let http_span = (!probe && tracing.0.is_some()).then(|| {
        (
            telemetry::context_from_headers(req.headers()),
            http_span(&req, method, route.as_deref(), context.request_id()),
            SystemTime::now(),
        )
    });
    req.extensions_mut().insert(context.clone());
    let span = tracing::info_span!(
        "http.server",
        request_id = context.request_id(),
        enduser.id = Empty,
        trace_id = Empty,
        span_id = Empty,
    );
    // Made before the request is handled: when the client goes away, its future is dropped here,
    // and the observation still records the request (and takes it out of the in-flight gauge).
    let mut observation = Observation {
        context,
        span: span.clone(),
        tracing,
        http_span,
        method,
        route,
        status: None,
    };
    metrics::gauge!(names::HTTP_ACTIVE_REQUESTS).increment(1.0);
    let response = next.run(req).instrument(span).await;
    observation.status = Some(response.status());
    response.map(|body| Body::new(Guarded::new(body, observation)))
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
    version: Version,
    headers: &axum::http::HeaderMap,
    extensions: &axum::http::Extensions,
    request_id: &str,
) -> Vec<KeyValue> {
    let mut attributes = vec![
        KeyValue::new(semconv::HTTP_REQUEST_METHOD, known_method(method)),
        KeyValue::new(semconv::URL_PATH, uri.path().to_owned()),
        KeyValue::new(semconv::URL_SCHEME, "http"),
        KeyValue::new(semconv::NETWORK_PROTOCOL_VERSION, protocol_version(version)),
        KeyValue::new(semconv::REQUEST_ID, request_id.to_owned()),
    ];
    if let Some(route) = extensions.get::<MatchedPath>() {
        attributes.push(KeyValue::new(
            semconv::HTTP_ROUTE,
            route_label(route.as_str()),
        ));
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

/// Methods outside the registered set become `_OTHER` (bounded label values).
fn known_method(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => semconv::OTHER,
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
    span: Span,
    tracing: Tracing,
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
        metrics::gauge!(names::HTTP_ACTIVE_REQUESTS).decrement(1.0);
        let status = self.status.map(|status| status.as_u16());
        let status_text = self.status.map(status_label);
        // Server spans: only 5xx are errors (semantic conventions); a request with no response
        // has no status code, and its error type says why.
        let error_type = match (self.status, &status_text) {
            (Some(status), Some(text)) => status.is_server_error().then(|| text.clone()),
            _ => Some(Cow::Borrowed(semconv::CANCELLED)),
        };
        let mut metric_labels = vec![Label::new(labels::HTTP_REQUEST_METHOD, self.method)];
        if let Some(status_text) = status_text {
            metric_labels.push(Label::new(labels::HTTP_RESPONSE_STATUS_CODE, status_text));
        }
        if let Some(route) = &self.route {
            metric_labels.push(Label::new(labels::HTTP_ROUTE, route.clone()));
        }
        if let Some(error_type) = &error_type {
            metric_labels.push(Label::new(labels::ERROR_TYPE, error_type.clone()));
        }
        metrics::histogram!(names::HTTP_REQUEST_DURATION, metric_labels)
            .record(elapsed.as_secs_f64());

        let made_by_endpoint = self.context.trace().is_some();
        if let Some((parent, builder, start)) = self.http_span.take()
            && !made_by_endpoint
            && let Some(trace) = self
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
        if let Some(trace) = self.context.trace() {
            let (trace_id, span_id) = telemetry::log_ids(trace);
            self.span.record("trace_id", trace_id);
            self.span.record("span_id", span_id);
        }
        // Health checks arrive every few seconds from every load balancer node: metrics only.
        let probe = self.route.as_deref().is_some_and(super::is_health_probe);
        if probe && self.status == Some(StatusCode::OK) {
            return;
        }
        if let Some(principal) = self.context.principal() {
            self.span
                .record(semconv::ENDUSER_ID, principal.subject.as_str());
        }
        let rpc = self.context.rpc();
        tracing::info!(
            parent: &self.span,
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
