//! Second from the outside: the `http.server.*` metrics and the access log line, recorded once
//! the response is finished (or abandoned), and for a request that never reached the MCP
//! endpoint (refused before it, or another route) its HTTP server span. Hand-written: tower-http's
//! `TraceLayer` ends at the response head, and an event stream is in flight to its last byte;
//! metrics, span and access line here come from one record.

use std::{
    borrow::Cow,
    convert::Infallible,
    future::Future,
    sync::{Arc, OnceLock},
    time::SystemTime,
};

use super::{Around, Handled, body::Guarded};
use crate::{
    context::{RequestFacts, SpanStart},
    telemetry::{
        self, ServerSpans,
        metrics::{HistogramSeries, labels, names},
        semconv,
    },
};
use axum::{
    body::Body,
    extract::{ConnectInfo, Request},
    http::{StatusCode, Version, header},
    response::Response,
};
use metrics::{Gauge, Label};
use opentelemetry::{
    KeyValue,
    trace::{SpanBuilder, Status, TraceContextExt as _},
};

impl Around for AccessLog {
    fn around<F>(self: &Arc<Self>, req: Request, next: impl FnOnce(Request) -> F) -> Handled
    where
        F: Future<Output = Result<Response, Infallible>> + Send + 'static,
    {
        let Some(facts) = RequestFacts::of(req.extensions()).cloned() else {
            // Only reachable by mounting this layer outside the request-id layer.
            return Box::pin(next(req));
        };
        if self.spans.0.is_some() {
            facts.set_span_start(SpanStart {
                parent: telemetry::context_from_headers(req.headers()),
                start: SystemTime::now(),
                http_attributes: http_attributes(&req, facts.request_id()),
            });
        }
        // Made before the request is handled: when the client goes away, its future is dropped
        // here, and the record is still written (and the request leaves the in-flight gauge).
        let mut record = Record {
            facts,
            log: self.clone(),
            method: semconv::known_method(req.method()),
            status: None,
        };
        record.log.active_requests().increment(1.0);
        let handled = next(req);
        Box::pin(async move {
            let response = handled.await?;
            record.status = Some(response.status());
            Ok(response.map(|body| Body::new(Guarded::new(body, record))))
        })
    }
}

/// Records every request (an [`Around`] layer): what it keeps across requests.
pub struct AccessLog {
    spans: ServerSpans,
    active_requests: OnceLock<Gauge>,
    /// `http.server.request.duration`, by method, status code, route and error type.
    durations: HistogramSeries,
}

impl AccessLog {
    pub fn new(spans: ServerSpans) -> Self {
        Self {
            spans,
            active_requests: OnceLock::new(),
            durations: HistogramSeries::new(names::HTTP_REQUEST_DURATION),
        }
    }

    fn active_requests(&self) -> &Gauge {
        self.active_requests
            .get_or_init(|| metrics::gauge!(names::HTTP_ACTIVE_REQUESTS))
    }
}

/// A request's HTTP attributes (semantic conventions), for whichever span is its server span
/// (the route is added by the layer that makes it).
fn http_attributes(req: &Request, request_id: &str) -> Vec<KeyValue> {
    let mut attributes = vec![
        KeyValue::new(
            semconv::HTTP_REQUEST_METHOD,
            semconv::known_method(req.method()),
        ),
        KeyValue::new(semconv::URL_PATH, req.uri().path().to_owned()),
        KeyValue::new(semconv::URL_SCHEME, "http"),
        KeyValue::new(
            semconv::NETWORK_PROTOCOL_VERSION,
            protocol_version(req.version()),
        ),
        KeyValue::new(semconv::REQUEST_ID, request_id.to_owned()),
    ];
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

/// Written when the response body is finished (or abandoned), so streamed responses are
/// measured to their last byte.
struct Record {
    facts: RequestFacts,
    log: Arc<AccessLog>,
    method: &'static str,
    /// `None` while no response exists: dropped so, the request was cancelled.
    status: Option<StatusCode>,
}

impl Drop for Record {
    fn drop(&mut self) {
        let elapsed = self.facts.received().elapsed();
        self.log.active_requests().decrement(1.0);
        let status = self.status.map(|status| status.as_u16());
        let status_text = self.status.map(status_label);
        let route = self.facts.route().map(route_label);
        // Server spans: only 5xx are errors (semantic conventions); a request with no response
        // has no status code, and its error type says why.
        let error_type = match (self.status, &status_text) {
            (Some(status), Some(text)) => status.is_server_error().then(|| text.clone()),
            _ => Some(Cow::Borrowed(semconv::CANCELLED)),
        };
        self.log.durations.record(
            [
                Some(Label::new(labels::HTTP_REQUEST_METHOD, self.method)),
                status_text.map(|status| Label::new(labels::HTTP_RESPONSE_STATUS_CODE, status)),
                route
                    .clone()
                    .map(|route| Label::new(labels::HTTP_ROUTE, route)),
                error_type
                    .clone()
                    .map(|error| Label::new(labels::ERROR_TYPE, error)),
            ],
            elapsed.as_secs_f64(),
        );
        // Health checks arrive every few seconds from every load balancer node: metrics only.
        let probe = route.as_deref().is_some_and(super::is_health_probe);
        if !probe {
            self.http_span(route.as_deref(), status, error_type.as_deref());
        }
        if probe && self.status == Some(StatusCode::OK) {
            return;
        }
        let rpc = self.facts.rpc();
        let mcp_error = self.facts.outcome().and_then(semconv::outcome_error_type);
        tracing::info!(
            parent: self.facts.span(),
            http.method = self.method,
            http.route = route.as_deref().unwrap_or(""),
            http.status = status,
            error.type = error_type.as_deref(),
            mcp.method = rpc.and_then(|r| r.method.as_deref()),
            mcp.target = rpc.and_then(|r| r.target.as_deref()),
            mcp.error = mcp_error.as_deref(),
            duration_ms = elapsed.as_secs_f64() * 1000.0,
            "request"
        );
    }
}

impl Record {
    /// The HTTP server span of a request that has none yet (the MCP endpoint makes its own).
    fn http_span(&self, route: Option<&str>, status: Option<u16>, error_type: Option<&str>) {
        if self.facts.server_span().is_some() {
            return;
        }
        let Some(SpanStart {
            parent,
            start,
            mut http_attributes,
        }) = self.facts.take_span_start()
        else {
            return;
        };
        let name = match route {
            Some(route) => format!("{} {route}", self.method),
            None => self.method.to_owned(),
        };
        if let Some(route) = route {
            http_attributes.push(KeyValue::new(semconv::HTTP_ROUTE, route.to_owned()));
        }
        let builder = SpanBuilder::from_name(name)
            .with_attributes(http_attributes)
            .with_start_time(start);
        let Some(trace) = self.log.spans.start(|| (parent, builder)) else {
            return;
        };
        let span = trace.span();
        if let Some(status) = status {
            span.set_attribute(KeyValue::new(
                semconv::HTTP_RESPONSE_STATUS_CODE,
                i64::from(status),
            ));
        }
        if let Some(error_type) = error_type {
            span.set_attribute(KeyValue::new(semconv::ERROR_TYPE, error_type.to_owned()));
            if self.status.is_some() {
                span.set_status(Status::error(""));
            }
        }
        span.end();
        self.facts.record_trace_ids(&trace);
    }
}
