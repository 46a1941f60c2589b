//! The MCP server span and the `mcp.server.operation.duration` metric (OpenTelemetry MCP
//! semantic conventions), for every JSON-RPC request whatever handler serves it: a tool added
//! later is traced and measured without doing anything.

use std::{
    borrow::Cow,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Instant,
};

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use metrics::Label;
use opentelemetry::{
    Context as TraceContext, KeyValue,
    trace::{Status, TraceContextExt as _},
};
use serde::Deserialize;
use serde_json::Value;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use super::{SUPPORTED_PROTOCOL_VERSIONS, envelope::McpRequestInfo};
use crate::{
    context::{Outcome, RequestFacts, RpcSummary, SpanStart},
    telemetry::{
        self, ServerSpans,
        logs::SERVER_SPAN_TARGET,
        metrics::{HistogramSeries, labels},
        semconv,
    },
};

/// Method names from the MCP specifications; anything else is labelled `_OTHER`.
const KNOWN_METHODS: &[&str] = &[
    "initialize",
    "ping",
    "server/discover",
    "tools/list",
    "tools/call",
    "prompts/list",
    "prompts/get",
    "resources/list",
    "resources/read",
    "resources/templates/list",
    "resources/subscribe",
    "resources/unsubscribe",
    "completion/complete",
    "logging/setLevel",
    "subscriptions/listen",
    "tasks/get",
    "tasks/update",
    "tasks/cancel",
    "notifications/initialized",
    "notifications/cancelled",
    "notifications/progress",
    "notifications/roots/list_changed",
];

/// One MCP request being served.
pub(super) struct Operation {
    started: Instant,
    /// While spans are exported: the MCP span's context, ended with the operation...
    pub(super) trace: Option<TraceContext>,
    /// ...and the `tracing` span it belongs to, which the handler runs in.
    pub(super) span: Span,
    method_label: &'static str,
    tool_label: Option<String>,
    /// A version we speak, or `_OTHER`: the caller chooses it (`_meta`), so it is bounded.
    protocol_version: Option<&'static str>,
    facts: RequestFacts,
    /// Decided by the first message answering the request (or a refusal).
    outcome: Option<Outcome>,
    /// Whether the whole response was seen; dropped before, the operation was cancelled.
    complete: bool,
    durations: Arc<HistogramSeries>,
}

impl Operation {
    /// Opens the request's server span (one per request: X-Ray draws one node per request). Its
    /// parent is the caller's `_meta.traceparent` when there is one (the MCP convention), with a
    /// link to the HTTP `traceparent`; else the HTTP `traceparent`. It carries the HTTP
    /// attributes too (made by the access layer), so no separate transport span is made.
    pub(super) fn start(
        info: McpRequestInfo,
        facts: &RequestFacts,
        spans: &ServerSpans,
        durations: Arc<HistogramSeries>,
        tool_known: impl FnOnce(&str) -> bool,
    ) -> Self {
        let method = info.method.as_deref().unwrap_or("");
        let target = match method {
            "tools/call" | "prompts/get" => info.name.as_deref(),
            _ => None,
        };
        let protocol_version = info.protocol_version.as_deref().map(protocol_version_label);
        // While spans are exported: the MCP span, a `tracing` span the handler's futures run in
        // (rmcp's tasks too), so every span opened below it is its child.
        let span = match spans.0 {
            Some(_) => {
                let SpanStart {
                    parent: http,
                    http_attributes,
                    ..
                } = facts.take_span_start().unwrap_or_else(|| SpanStart {
                    parent: opentelemetry::Context::new(),
                    start: std::time::SystemTime::now(),
                    http_attributes: Vec::new(),
                });
                let meta = info
                    .traceparent
                    .as_deref()
                    .map(|tp| telemetry::context_from_meta(tp, info.tracestate.as_deref()))
                    .filter(|cx| cx.span().span_context().is_valid());
                let name = span_name(method, target);
                let span = tracing::info_span!(
                    target: SERVER_SPAN_TARGET,
                    "mcp.server",
                    otel.name = name,
                    otel.kind = "server"
                );
                let parent = match meta {
                    Some(meta) => {
                        let remote = http.span().span_context().clone();
                        if remote.is_valid() {
                            span.add_link(remote);
                        }
                        meta
                    }
                    None => http,
                };
                let _ = span.set_parent(parent);
                let mut attributes = mcp_attributes(&info, method, target, protocol_version);
                attributes.extend(http_attributes);
                attributes.push(KeyValue::new(semconv::HTTP_ROUTE, super::MCP_PATH));
                if let Some(principal) = facts.principal() {
                    attributes.push(KeyValue::new(
                        semconv::ENDUSER_ID,
                        principal.subject.clone(),
                    ));
                }
                for KeyValue { key, value, .. } in attributes {
                    span.set_attribute(key, value);
                }
                span
            }
            None => Span::none(),
        };
        let trace = (!span.is_none())
            .then(|| span.context())
            .filter(|cx| cx.span().span_context().is_valid());
        if let Some(trace) = &trace {
            facts.set_server_span(trace.clone());
        }
        let method_label = KNOWN_METHODS
            .iter()
            .find(|m| **m == method)
            .copied()
            .unwrap_or(semconv::OTHER);
        let tool_label = match (method, info.name.as_deref()) {
            ("tools/call", Some(tool)) if tool_known(tool) => Some(tool.to_owned()),
            ("tools/call", _) => Some(semconv::OTHER.to_owned()),
            _ => None,
        };
        facts.set_rpc(RpcSummary {
            method: info.method,
            // tasks/*: the task's id, for the access line (never a span name or a label).
            target: target.map(str::to_owned).or(info.task_id),
        });
        Self {
            started: Instant::now(),
            trace,
            span,
            method_label,
            tool_label,
            protocol_version,
            facts: facts.clone(),
            outcome: None,
            complete: false,
            durations,
        }
    }

    /// A refusal that has only an HTTP status (its JSON-RPC code from the edge's mapping).
    pub(super) fn refused(&mut self, code: i64) {
        self.record_outcome(Outcome::Error(code), None);
    }

    /// The HTTP status the request is answered with, on the request's server span.
    pub(super) fn set_status(&self, status: http::StatusCode) {
        if let Some(trace) = &self.trace {
            trace.span().set_attribute(KeyValue::new(
                semconv::HTTP_RESPONSE_STATUS_CODE,
                i64::from(status.as_u16()),
            ));
        }
    }

    /// The whole response has been seen.
    pub(super) fn complete(&mut self) {
        self.complete = true;
    }

    /// Looks at one response message; the first one answering our request decides the outcome.
    fn inspect(&mut self, message: &Answer) {
        if self.outcome.is_some() || message.id.as_ref() != self.facts.jsonrpc_id() {
            return;
        }
        match (&message.error, &message.result) {
            (Some(error), _) => {
                self.record_outcome(Outcome::Error(error.code), Some(&error.message))
            }
            (None, Some(AnswerResult { is_error: true })) => {
                self.record_outcome(Outcome::ToolError, Some(""))
            }
            _ => self.record_outcome(Outcome::Success, None),
        };
    }

    /// Records the outcome, once: on the span now, in the request's facts when the operation is
    /// over.
    fn record_outcome(&mut self, outcome: Outcome, message: Option<&str>) {
        if self.outcome.is_some() {
            return;
        }
        self.outcome = Some(outcome);
        let (Some(trace), Some(error_type)) = (&self.trace, semconv::outcome_error_type(outcome))
        else {
            return;
        };
        let span = trace.span();
        span.set_attribute(KeyValue::new(semconv::ERROR_TYPE, error_type.to_string()));
        if let Outcome::Error(code) = outcome {
            span.set_attribute(KeyValue::new(
                semconv::RPC_RESPONSE_STATUS_CODE,
                code.to_string(),
            ));
        }
        span.set_status(Status::error(message.unwrap_or_default().to_owned()));
    }

    /// Reads the messages in one body chunk: a JSON body, or SSE `data:` lines. A handler that
    /// reported a plain success spares the reading.
    pub(super) fn inspect_chunk(&mut self, chunk: &[u8], sse: bool) {
        if self.outcome.is_some() {
            return;
        }
        if self.facts.handler_succeeded() {
            self.record_outcome(Outcome::Success, None);
            return;
        }
        if !sse {
            if let Ok(message) = serde_json::from_slice::<Answer>(chunk) {
                self.inspect(&message);
            }
            return;
        }
        for line in chunk.split(|b| *b == b'\n') {
            if let Some(data) = line.strip_prefix(b"data:")
                && let Ok(message) = serde_json::from_slice::<Answer>(data)
            {
                self.inspect(&message);
            }
        }
    }

    /// Whether the answer was a JSON-RPC internal error (a server fault).
    pub(super) fn internal_error(&self) -> bool {
        self.outcome == Some(Outcome::Error(crate::jsonrpc::code::INTERNAL_ERROR))
    }
}

/// Just what decides the outcome of a response message; everything else is skipped unparsed.
#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    error: Option<AnswerError>,
    #[serde(default)]
    result: Option<AnswerResult>,
}

#[derive(Deserialize)]
struct AnswerError {
    code: i64,
    #[serde(default)]
    message: String,
}

#[derive(Deserialize)]
struct AnswerResult {
    #[serde(default, rename = "isError")]
    is_error: bool,
}

impl Drop for Operation {
    fn drop(&mut self) {
        let error_type = match self.outcome {
            Some(outcome) => semconv::outcome_error_type(outcome),
            None if self.complete => None,
            None => Some(Cow::Borrowed(semconv::CANCELLED)),
        };
        self.durations.record(
            [
                Some(Label::new(labels::MCP_METHOD_NAME, self.method_label)),
                self.tool_label
                    .take()
                    .map(|tool| Label::new(labels::GEN_AI_TOOL_NAME, tool)),
                self.protocol_version
                    .map(|version| Label::new(labels::MCP_PROTOCOL_VERSION, version)),
                error_type
                    .clone()
                    .map(|error| Label::new(labels::ERROR_TYPE, error)),
            ],
            self.started.elapsed().as_secs_f64(),
        );
        if let Some(trace) = &self.trace {
            let span = trace.span();
            if self.outcome.is_none() && !self.complete {
                span.set_attribute(KeyValue::new(semconv::ERROR_TYPE, semconv::CANCELLED));
            }
            span.end();
        }
        if let Some(outcome) = self.outcome {
            self.facts.set_outcome(outcome);
        }
    }
}

/// A protocol version as a label or attribute value: one we speak, else `_OTHER` (a caller could
/// otherwise create a metric series per request).
fn protocol_version_label(version: &str) -> &'static str {
    SUPPORTED_PROTOCOL_VERSIONS
        .iter()
        .map(|v| v.as_str())
        .find(|v| *v == version)
        .unwrap_or(semconv::OTHER)
}

/// The MCP server span's name: `{mcp.method.name} {target}`.
fn span_name(method: &str, target: Option<&str>) -> String {
    match target {
        Some(target) => format!("{method} {target}"),
        None => method.to_owned(),
    }
}

/// The MCP server span's attributes (semantic conventions for MCP).
fn mcp_attributes(
    info: &McpRequestInfo,
    method: &str,
    target: Option<&str>,
    protocol_version: Option<&'static str>,
) -> Vec<KeyValue> {
    let mut attributes = vec![KeyValue::new(semconv::MCP_METHOD_NAME, method.to_owned())];
    if let Some(version) = protocol_version {
        attributes.push(KeyValue::new(semconv::MCP_PROTOCOL_VERSION, version));
    }
    if let Some(id) = &info.id {
        attributes.push(KeyValue::new(
            semconv::JSONRPC_REQUEST_ID,
            JsonRpcId(id).to_string(),
        ));
    }
    match (method, target) {
        ("tools/call", Some(tool)) => attributes.extend([
            KeyValue::new(semconv::GEN_AI_TOOL_NAME, tool.to_owned()),
            KeyValue::new(semconv::GEN_AI_OPERATION_NAME, semconv::EXECUTE_TOOL),
        ]),
        ("prompts/get", Some(prompt)) => attributes.push(KeyValue::new(
            semconv::GEN_AI_PROMPT_NAME,
            prompt.to_owned(),
        )),
        _ => {}
    }
    attributes
}

/// `jsonrpc.request.id` is a string attribute whatever the id's JSON type.
struct JsonRpcId<'a>(&'a Value);

impl std::fmt::Display for JsonRpcId<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Value::String(s) => f.write_str(s),
            other => write!(f, "{other}"),
        }
    }
}

/// An event-stream body that shows each chunk to its [`Operation`] and ends it with the body.
pub(super) struct Observed<B> {
    body: B,
    operation: Operation,
}

impl<B> Observed<B> {
    pub(super) fn new(body: B, operation: Operation) -> Self {
        Self { body, operation }
    }
}

impl<B: HttpBody<Data = Bytes> + Unpin> HttpBody for Observed<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.operation.inspect_chunk(data, true);
                }
            }
            Poll::Ready(None) => self.operation.complete(),
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
