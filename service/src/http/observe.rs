//! The HTTP server span, the `http.server.*` metrics and the access log line: one place that
//! sees every request from arrival to the last byte of its response.

use std::{
    borrow::Cow,
    sync::{Arc, OnceLock},
    time::Instant,
};

use axum::{
    body::Body,
    extract::{ConnectInfo, MatchedPath, Request},
    http::{Method, StatusCode, Version, header},
    middleware::Next,
    response::Response,
};
use metrics::Label;
use opentelemetry::{
    Context, KeyValue,
    trace::{SpanBuilder, Status, TraceContextExt as _},
};
use tracing::{Instrument, Span, field::Empty};

use super::{
    limits::Guarded,
    request_id::{self, X_REQUEST_ID},
};
use crate::telemetry::{
    self, RequestTrace,
    metrics::{labels, names},
    semconv,
};

/// What an RPC endpoint behind this layer says about a request, for the access log: put in the
/// response's extensions by the endpoint.
#[derive(Debug, Clone, Default)]
pub struct RpcSummary {
    pub method: Option<String>,
    /// The tool or prompt called.
    pub target: Option<String>,
    /// Set once the outcome is known (a JSON-RPC error code, `tool_error`).
    pub error_type: Arc<OnceLock<String>>,
}

/// The outermost layer: assigns the request id, opens the HTTP server span, and (through the
/// response body) records the metrics and the access log once the response is finished.
pub async fn middleware(mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let request_id = request_id::assign(&mut req);
    let method = known_method(req.method());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| route_label(p.as_str()));
    let trace = telemetry::start_server_span(|| {
        (
            telemetry::context_from_headers(req.headers()),
            http_span(&req, method, route.as_deref(), &request_id),
        )
    });
    if let Some(trace) = &trace {
        req.extensions_mut().insert(RequestTrace(trace.clone()));
    }
    // The `tracing` span carries what log lines inside the request show.
    let ids = trace.as_ref().map(telemetry::log_ids);
    let span = tracing::info_span!(
        "http.server",
        request_id = request_id.to_str().unwrap_or_default(),
        enduser.id = Empty,
        trace_id = ids.map(|(trace_id, _)| trace_id),
        span_id = ids.map(|(_, span_id)| span_id),
    );
    // Made before the request is handled: when the client goes away, its future is dropped here,
    // and the observation still records the request (and takes it out of the in-flight gauge).
    let mut observation = Observation {
        started,
        span: span.clone(),
        trace,
        method,
        route,
        status: None,
        rpc: None,
    };
    metrics::gauge!(names::HTTP_ACTIVE_REQUESTS).increment(1.0);
    let mut response = next.run(req).instrument(span).await;
    response
        .headers_mut()
        .insert(X_REQUEST_ID.clone(), request_id);
    observation.status = Some(response.status());
    observation.rpc = response.extensions_mut().remove::<RpcSummary>();
    response.map(|body| Body::new(Guarded::new(body, observation)))
}

/// The HTTP server span's name and request attributes (semantic conventions).
fn http_span(
    req: &Request,
    method: &'static str,
    route: Option<&str>,
    request_id: &header::HeaderValue,
) -> SpanBuilder {
    let name = match route {
        Some(route) => format!("{method} {route}"),
        None => method.to_owned(),
    };
    let mut attributes = vec![
        KeyValue::new(semconv::HTTP_REQUEST_METHOD, method),
        KeyValue::new(semconv::URL_PATH, req.uri().path().to_owned()),
        KeyValue::new(semconv::URL_SCHEME, "http"),
        KeyValue::new(
            semconv::NETWORK_PROTOCOL_VERSION,
            protocol_version(req.version()),
        ),
        KeyValue::new(
            semconv::REQUEST_ID,
            request_id.to_str().unwrap_or_default().to_owned(),
        ),
    ];
    if let Some(route) = route {
        attributes.push(KeyValue::new(semconv::HTTP_ROUTE, route.to_owned()));
    }
    if let Some(peer) = req.extensions().get::<ConnectInfo<std::net::SocketAddr>>() {
        attributes.push(KeyValue::new(
            semconv::CLIENT_ADDRESS,
            peer.0.ip().to_string(),
        ));
    }
    if let Some(agent) = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
    {
        attributes.push(KeyValue::new(
            semconv::USER_AGENT_ORIGINAL,
            agent.to_owned(),
        ));
    }
    SpanBuilder::from_name(name).with_attributes(attributes)
}

/// Our routes are a handful of static paths; labels borrow them instead of allocating.
fn route_label(path: &str) -> Cow<'static, str> {
    match path {
        super::MCP_PATH => Cow::Borrowed(super::MCP_PATH),
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
    started: Instant,
    span: Span,
    /// The exported HTTP span, ended here.
    trace: Option<Context>,
    method: &'static str,
    route: Option<Cow<'static, str>>,
    /// `None` while no response exists: dropped so, the request was cancelled.
    status: Option<StatusCode>,
    rpc: Option<RpcSummary>,
}

impl Drop for Observation {
    fn drop(&mut self) {
        let elapsed = self.started.elapsed();
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

        if let Some(trace) = &self.trace {
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
        }
        // Health checks arrive every few seconds from every load balancer node: metrics only.
        let health = matches!(
            self.route.as_deref(),
            Some(super::LIVEZ_PATH | super::READYZ_PATH)
        );
        if health && self.status == Some(StatusCode::OK) {
            return;
        }
        let rpc = self.rpc.as_ref();
        tracing::info!(
            parent: &self.span,
            http.method = self.method,
            http.route = self.route.as_deref().unwrap_or(""),
            http.status = status,
            error.type = error_type.as_deref(),
            mcp.method = rpc.and_then(|r| r.method.as_deref()),
            mcp.target = rpc.and_then(|r| r.target.as_deref()),
            mcp.error = rpc.and_then(|r| r.error_type.get().map(String::as_str)).filter(|e| !e.is_empty()),
            duration_ms = elapsed.as_secs_f64() * 1000.0,
            "request"
        );
    }
}
