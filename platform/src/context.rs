//! The request context: what the layers of the stack learn about one request, kept in one place
//! at the bottom of the platform so every layer can read it without importing another.
//!
//! It is made by the outermost layer and shared (an `Arc` in the request's extensions) rather
//! than passed back in response extensions: an outer layer must still read what an inner one
//! learned when the inner future is dropped (the request deadline, a client that went away).
//! Each fact is written once, by the layer that learns it.

use std::{
    cell::RefCell,
    future::Future,
    pin::Pin,
    sync::{Arc, OnceLock},
    task::{Context, Poll},
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

thread_local! {
    /// The request whose future this thread is polling (see [`RequestContext::scope`]).
    static CURRENT: RefCell<Option<RequestContext>> = const { RefCell::new(None) };
}

impl RequestContext {
    /// `future`, run with this request as the thread's current one on each poll: the JSON log
    /// lines written meanwhile carry its id, caller and trace ids. Hand-written: the `tracing`
    /// span per request that did this cost ~4,200 instructions a request more (callgrind, 200
    /// calls in flight): its making, and an entry and an exit on every poll of every task rmcp
    /// serves the request in. The pretty format still shows the request's span.
    pub fn scope<F: Future>(self, future: F) -> Scoped<F> {
        scoped(Some(self), future)
    }

    /// Runs `f` with this request as the thread's current one.
    pub fn in_scope<R>(&self, f: impl FnOnce() -> R) -> R {
        let _current = Current::enter(Some(self.clone()));
        f()
    }

    /// The request this thread is serving right now, if any.
    pub fn with_current<R>(f: impl FnOnce(Option<&RequestContext>) -> R) -> R {
        CURRENT.with(|current| match current.try_borrow() {
            Ok(current) => f(current.as_ref()),
            Err(_) => f(None),
        })
    }

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

/// `future` in the scope of `context` when there is one (see [`RequestContext::scope`]).
pub fn scoped<F: Future>(context: Option<RequestContext>, future: F) -> Scoped<F> {
    Scoped { context, future }
}

pin_project_lite::pin_project! {
    /// A future run in a request's scope (see [`RequestContext::scope`]).
    pub struct Scoped<F> {
        context: Option<RequestContext>,
        #[pin]
        future: F,
    }
}

impl<F: Future> Future for Scoped<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        if this.context.is_none() {
            return this.future.poll(cx);
        }
        // The context moves into the thread's slot and back: no reference count touched.
        let current = Current::enter(this.context.take());
        let polled = this.future.poll(cx);
        *this.context = current.leave();
        polled
    }
}

/// The thread's current request while it lives; the one before it afterwards (also when the
/// future panics).
struct Current {
    before: Option<Option<RequestContext>>,
}

impl Current {
    fn enter(context: Option<RequestContext>) -> Self {
        Self {
            before: Some(CURRENT.with(|current| current.replace(context))),
        }
    }

    /// Puts the one before back, and returns the one it entered.
    fn leave(mut self) -> Option<RequestContext> {
        let before = self.before.take().flatten();
        CURRENT.with(|current| current.replace(before))
    }
}

impl Drop for Current {
    fn drop(&mut self) {
        if let Some(before) = self.before.take() {
            CURRENT.with(|current| current.replace(before));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::task::Waker;

    use super::*;

    fn request(id: &'static str) -> RequestContext {
        RequestContext::new(HeaderValue::from_static(id), Instant::now())
    }

    fn current_id() -> Option<String> {
        RequestContext::with_current(|current| current.map(|c| c.request_id().to_owned()))
    }

    #[test]
    fn a_scope_is_current_only_while_its_future_is_polled_and_nests() {
        let mut seen = Vec::new();
        {
            let mut future = std::pin::pin!(request("outer").scope(async {
                seen.push(current_id());
                request("inner").in_scope(|| seen.push(current_id()));
                seen.push(current_id());
                std::future::pending::<()>().await;
            }));
            let mut cx = Context::from_waker(Waker::noop());
            assert!(future.as_mut().poll(&mut cx).is_pending());
            assert_eq!(current_id(), None, "left when the poll returns");
            assert!(future.as_mut().poll(&mut cx).is_pending());
        }
        let outer = Some("outer".to_owned());
        assert_eq!(
            seen,
            [outer.clone(), Some("inner".to_owned()), outer.clone()]
        );
        assert_eq!(current_id(), None);
    }

    #[test]
    fn a_panic_inside_leaves_the_scope_it_found() {
        let caught = request("outer").in_scope(|| {
            let caught = std::panic::catch_unwind(|| {
                request("inner").in_scope(|| panic!("in a handler"));
            });
            assert_eq!(current_id().as_deref(), Some("outer"));
            caught
        });
        assert!(caught.is_err());
        assert_eq!(current_id(), None);
    }
}
