//! The request context: what the layers of the stack learn about one request, kept in one place
//! at the bottom of the platform so every layer can read it without importing another.
//!
//! It is made by the outermost layer and shared (an `Arc` in the request's extensions) rather
//! than passed back in response extensions: an outer layer must still read what an inner one
//! learned when the inner future is dropped (the request deadline, a client that went away).
//! Each fact is written once, by the layer that learns it.

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
    /// The request's exported server span, once one exists (only while spans are exported).
    trace: OnceLock<opentelemetry::Context>,
    jsonrpc_id: OnceLock<Value>,
    rpc: OnceLock<RpcSummary>,
    /// The RPC outcome: a JSON-RPC error code, `tool_error`, or empty for success.
    rpc_error: OnceLock<String>,
    principal: OnceLock<Principal>,
}

impl RequestContext {
    pub fn new(request_id: HeaderValue, received: Instant) -> Self {
        Self(Arc::new(Facts {
            request_id,
            received,
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

    pub fn trace(&self) -> Option<&opentelemetry::Context> {
        self.0.trace.get()
    }

    pub fn set_trace(&self, trace: opentelemetry::Context) {
        let _ = self.0.trace.set(trace);
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
        let _ = self.0.principal.set(principal);
    }
}
