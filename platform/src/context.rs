//! What the stack learns about one request ([`RequestFacts`]), kept in one place at the bottom of
//! the platform so every layer can read it without importing another.
//!
//! The facts are made by the outermost layer and shared (an `Arc` in the request's extensions)
//! rather than passed back in response extensions: an outer layer must still read what an inner
//! one learned when the inner future is dropped (the request deadline, a client that went away).
//! Each fact has one writer, named on its setter; the setters are the platform's own (a tool
//! cannot claim a principal), and a second write is a bug that debug builds stop at.
//!
//! Log lines and spans take the request's context from its `tracing` span ([`RequestFacts::span`]),
//! the way the ecosystem carries context: `Span::current()`, `.in_current_span()`, `#[instrument]`
//! and rmcp's own spawned tasks all carry it without a tool doing anything platform-specific.

use std::{
    sync::{Arc, Mutex, OnceLock},
    time::{Instant, SystemTime},
};

use axum::{
    extract::MatchedPath,
    http::{Extensions, HeaderValue},
};
use opentelemetry::KeyValue;
use serde_json::Value;

/// Who is calling, as the bearer token says (set by the auth layer; absent when auth is off).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's `sub`.
    pub subject: String,
    pub scopes: Vec<String>,
    /// `client_id` or `azp`, when present.
    pub client_id: Option<String>,
}

/// What the RPC endpoint says a request is, for the access log and the refusals.
#[derive(Debug, Clone, Default)]
pub struct RpcSummary {
    /// `tools/call`, `initialize`, ...; `None` for a client's JSON-RPC response.
    pub method: Option<String>,
    /// The tool or prompt called.
    pub target: Option<String>,
}

/// How a JSON-RPC request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// A tool's result with `isError: true`.
    ToolError,
    /// A JSON-RPC error response, with its code.
    Error(i64),
}

/// A fact one layer writes once and the others read.
#[derive(Debug)]
struct Slot<T>(OnceLock<T>);

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Self(OnceLock::new())
    }
}

impl<T> Slot<T> {
    fn get(&self) -> Option<&T> {
        self.0.get()
    }

    #[track_caller]
    fn set(&self, value: T) {
        let first = self.0.set(value).is_ok();
        debug_assert!(first, "a request fact has one writer, and it writes once");
    }
}

/// What the request's server span starts from, made once by the outermost layer and taken by
/// whichever layer makes that span: its parent (the HTTP `traceparent`), start time and HTTP
/// attributes.
#[derive(Debug)]
pub(crate) struct SpanStart {
    pub parent: opentelemetry::Context,
    pub start: SystemTime,
    pub http_attributes: Vec<KeyValue>,
}

/// One request's facts. Cheap to clone.
#[derive(Debug, Clone)]
pub struct RequestFacts(Arc<Facts>);

#[derive(Debug)]
struct Facts {
    request_id: HeaderValue,
    received: Instant,
    /// The request's `tracing` span: the parent of every span and log line of the request.
    span: tracing::Span,
    /// Only while spans are exported; taken by the layer that makes the server span.
    span_start: Mutex<Option<SpanStart>>,
    route: Slot<MatchedPath>,
    principal: Slot<Principal>,
    jsonrpc_id: Slot<Value>,
    rpc: Slot<RpcSummary>,
    server_span: Slot<opentelemetry::Context>,
    handler_success: Slot<()>,
    outcome: Slot<Outcome>,
}

impl RequestFacts {
    /// A request's facts (made by the request-id layer); `span` is its `tracing` span (see
    /// [`request_span`]).
    pub(crate) fn new(request_id: HeaderValue, received: Instant, span: tracing::Span) -> Self {
        Self(Arc::new(Facts {
            request_id,
            received,
            span,
            span_start: Mutex::new(None),
            route: Slot::default(),
            principal: Slot::default(),
            jsonrpc_id: Slot::default(),
            rpc: Slot::default(),
            server_span: Slot::default(),
            handler_success: Slot::default(),
            outcome: Slot::default(),
        }))
    }

    /// The facts of a request that went through the stack's outermost layer.
    pub fn of(extensions: &Extensions) -> Option<&Self> {
        extensions.get::<Self>()
    }

    /// The `x-request-id` (the caller's when sane, else generated), echoed on the response.
    pub fn request_id(&self) -> &str {
        // Only ever made of visible ASCII (see `http::request_id`).
        self.0.request_id.to_str().unwrap_or_default()
    }

    /// When the request arrived.
    pub fn received(&self) -> Instant {
        self.0.received
    }

    /// The request's `tracing` span, which carries `request_id`, `enduser.id` and the server
    /// span's `trace_id`/`span_id` to every log line and span made in it.
    pub fn span(&self) -> &tracing::Span {
        &self.0.span
    }

    /// Written by the access layer, while spans are exported.
    pub(crate) fn set_span_start(&self, start: SpanStart) {
        if let Ok(mut slot) = self.0.span_start.lock() {
            debug_assert!(
                slot.is_none(),
                "a request fact has one writer, and it writes once"
            );
            *slot = Some(start);
        }
    }

    /// What the server span starts from, for the layer that makes it; `None` once taken, and
    /// when spans are not exported.
    pub(crate) fn take_span_start(&self) -> Option<SpanStart> {
        self.0.span_start.lock().ok()?.take()
    }

    /// The route the router matched (`None`: no route).
    pub fn route(&self) -> Option<&str> {
        self.0.route.get().map(MatchedPath::as_str)
    }

    /// Written by the router's route layer (`stack`).
    pub(crate) fn set_route(&self, route: MatchedPath) {
        self.0.route.set(route);
    }

    pub fn principal(&self) -> Option<&Principal> {
        self.0.principal.get()
    }

    /// Written by the auth layer.
    pub(crate) fn set_principal(&self, principal: Principal) {
        self.0.span.record("enduser.id", principal.subject.as_str());
        self.0.principal.set(principal);
    }

    /// The JSON-RPC id, once the body has been read (`None` before, and for notifications).
    pub fn jsonrpc_id(&self) -> Option<&Value> {
        self.0.jsonrpc_id.get()
    }

    /// Written by the MCP ingress.
    pub(crate) fn set_jsonrpc_id(&self, id: Value) {
        self.0.jsonrpc_id.set(id);
    }

    pub fn rpc(&self) -> Option<&RpcSummary> {
        self.0.rpc.get()
    }

    /// Written by the MCP operation (`mcp::observe`).
    pub(crate) fn set_rpc(&self, rpc: RpcSummary) {
        self.0.rpc.set(rpc);
    }

    /// The request's server span, once one exists (only while spans are exported).
    pub fn server_span(&self) -> Option<&opentelemetry::Context> {
        self.0.server_span.get()
    }

    /// Records the request's server span, and its ids on the request's `tracing` span. Written
    /// by the MCP operation (a request that never reached it gets its span from the access
    /// layer, which only records the ids).
    pub(crate) fn set_server_span(&self, trace: opentelemetry::Context) {
        self.record_trace_ids(&trace);
        self.0.server_span.set(trace);
    }

    /// Puts the ids of `trace`'s span on the request's `tracing` span, for its log lines.
    pub(crate) fn record_trace_ids(&self, trace: &opentelemetry::Context) {
        use opentelemetry::trace::TraceContextExt as _;
        let ids = trace.span().span_context().clone();
        if ids.is_valid() {
            self.0
                .span
                .record("trace_id", tracing::field::display(ids.trace_id()));
            self.0
                .span
                .record("span_id", tracing::field::display(ids.span_id()));
        }
    }

    /// Whether the handler reported a plain success, which spares reading its answer back.
    pub(crate) fn handler_succeeded(&self) -> bool {
        self.0.handler_success.get().is_some()
    }

    /// Written by the MCP handler ([`crate::McpServer`]).
    pub(crate) fn set_handler_succeeded(&self) {
        self.0.handler_success.set(());
    }

    /// How the JSON-RPC request ended, once its answer was seen.
    pub fn outcome(&self) -> Option<Outcome> {
        self.0.outcome.get().copied()
    }

    /// Written by the MCP operation, once it is over.
    pub(crate) fn set_outcome(&self, outcome: Outcome) {
        self.0.outcome.set(outcome);
    }
}

/// The target of [`request_span`]: the platform's context span, never exported itself (the
/// request's server span is).
pub const REQUEST_SPAN_TARGET: &str = "mcp_platform::request";
/// The name of [`request_span`].
pub const REQUEST_SPAN_NAME: &str = "request";

/// Whether `meta` is the request span's (always made, never exported).
pub fn is_request_span(meta: &tracing::Metadata<'_>) -> bool {
    meta.target() == REQUEST_SPAN_TARGET && meta.name() == REQUEST_SPAN_NAME
}

/// A request's `tracing` span: `request_id` now; `enduser.id`, `trace_id` and `span_id` once known.
pub fn request_span(request_id: &str) -> tracing::Span {
    tracing::info_span!(
        target: REQUEST_SPAN_TARGET,
        REQUEST_SPAN_NAME,
        request_id,
        enduser.id = tracing::field::Empty,
        trace_id = tracing::field::Empty,
        span_id = tracing::field::Empty,
    )
}
