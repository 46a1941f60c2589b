//! The request context: what the layers of the stack learn about one request, kept in one place
//! at the bottom of the platform so every layer can read it without importing another.
//!
//! It is made by the outermost layer and shared (an `Arc` in the request's extensions) rather
//! than passed back in response extensions: an outer layer must still read what an inner one
//! learned when the inner future is dropped (the request deadline, a client that went away).
//! Each fact is written once, by the layer that learns it.
//!
//! Log lines and spans take the request's context from its `tracing` span ([`RequestContext::span`]),
//! the way the ecosystem carries context: `Span::current()`, `.in_current_span()`, `#[instrument]`
//! and rmcp's own spawned tasks all carry it without a tool doing anything platform-specific.

use std::{
    sync::{Arc, OnceLock},
    time::Instant,
};

use axum::http::{Extensions, HeaderValue};
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

/// One request's context. Cheap to clone.
#[derive(Debug, Clone)]
pub struct RequestContext(Arc<Facts>);

#[derive(Debug)]
struct Facts {
    request_id: HeaderValue,
    received: Instant,
    /// The request's `tracing` span: the parent of every span and log line of the request.
    span: tracing::Span,
    /// The request's exported server span, once one exists (only while spans are exported).
    trace: OnceLock<opentelemetry::Context>,
    jsonrpc_id: OnceLock<Value>,
    rpc: OnceLock<RpcSummary>,
    /// The RPC outcome: a JSON-RPC error code, `tool_error`, or empty for success.
    rpc_error: OnceLock<String>,
    principal: OnceLock<Principal>,
}

impl RequestContext {
    /// A request's context; `span` is its `tracing` span (see [`request_span`]).
    pub fn new(request_id: HeaderValue, received: Instant, span: tracing::Span) -> Self {
        Self(Arc::new(Facts {
            request_id,
            received,
            span,
            trace: OnceLock::new(),
            jsonrpc_id: OnceLock::new(),
            rpc: OnceLock::new(),
            rpc_error: OnceLock::new(),
            principal: OnceLock::new(),
        }))
    }

    /// The context of a request that went through the stack's outermost layer.
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

    pub fn trace(&self) -> Option<&opentelemetry::Context> {
        self.0.trace.get()
    }

    /// Records the request's server span, and its ids on the request's `tracing` span.
    pub fn set_trace(&self, trace: opentelemetry::Context) {
        use opentelemetry::trace::TraceContextExt as _;
        let ids = trace.span().span_context().clone();
        if self.0.trace.set(trace).is_ok() && ids.is_valid() {
            self.0
                .span
                .record("trace_id", tracing::field::display(ids.trace_id()));
            self.0
                .span
                .record("span_id", tracing::field::display(ids.span_id()));
        }
    }

    /// The JSON-RPC id, once the body has been read (`None` before, and for notifications).
    pub fn jsonrpc_id(&self) -> Option<&Value> {
        self.0.jsonrpc_id.get()
    }

    pub fn set_jsonrpc_id(&self, id: Value) {
        let _ = self.0.jsonrpc_id.set(id);
    }

    pub fn rpc(&self) -> Option<&RpcSummary> {
        self.0.rpc.get()
    }

    pub fn set_rpc(&self, rpc: RpcSummary) {
        let _ = self.0.rpc.set(rpc);
    }

    pub fn rpc_error(&self) -> Option<&str> {
        self.0.rpc_error.get().map(String::as_str)
    }

    /// Records the RPC outcome; the first one recorded wins (returns whether this one did).
    pub fn set_rpc_error(&self, error_type: String) -> bool {
        self.0.rpc_error.set(error_type).is_ok()
    }

    pub fn principal(&self) -> Option<&Principal> {
        self.0.principal.get()
    }

    pub fn set_principal(&self, principal: Principal) {
        self.0.span.record("enduser.id", principal.subject.as_str());
        let _ = self.0.principal.set(principal);
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
