//! Protection of the MCP route: load shedding above a fixed number of requests in flight (503 at
//! once, never a growing queue), a whole-request deadline, panics turned into JSON-RPC 500s, and
//! the Host/Origin checks.

use std::{
    any::Any,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use axum::{
    body::Body,
    extract::{Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::sync::Semaphore;

use futures::FutureExt as _;

use super::guard::OriginGuard;
use crate::{
    config::HttpSettings,
    http::request_id::RequestId,
    jsonrpc::{JsonRpcError, code},
    telemetry::metrics::names,
};

/// The JSON-RPC id of the request, once the MCP layer has read the body. Outer layers (timeout,
/// panic) answer with it; the MCP layer fills it in.
#[derive(Debug, Clone, Default)]
pub struct JsonRpcIdSlot(pub Arc<std::sync::OnceLock<serde_json::Value>>);

fn error_for(
    req_id: Option<&RequestId>,
    jsonrpc_id: Option<&serde_json::Value>,
    err: JsonRpcError,
) -> Response {
    err.with_id(jsonrpc_id)
        .with_request_id(req_id.map(RequestId::as_str))
        .into_response()
}

/// The protection of the MCP route, in order: load shedding, the request deadline, panic
/// catching, Host/Origin checks. One middleware instead of four: every request pays for each
/// layer's boxing and cloning.
#[derive(Clone)]
pub struct Protection {
    /// Requests allowed in flight; one that finds none left is answered 503 at once.
    permits: Arc<Semaphore>,
    timeout: Duration,
    guard: OriginGuard,
}

impl Protection {
    pub fn new(settings: &HttpSettings) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(settings.max_in_flight)),
            timeout: settings.request_timeout(),
            guard: OriginGuard::new(settings),
        }
    }
}

pub async fn protect(
    State(protection): State<Protection>,
    mut req: Request,
    next: Next,
) -> Response {
    let request_id = req.extensions().get::<RequestId>().cloned();
    let Ok(permit) = protection.permits.clone().try_acquire_owned() else {
        metrics::counter!(names::SHED_REQUESTS).increment(1);
        tracing::warn!("shed request: too many requests in flight");
        let mut response = error_for(
            request_id.as_ref(),
            None,
            JsonRpcError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                code::SERVER_OVERLOADED,
                "server overloaded: too many requests in flight, retry shortly",
            ),
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return response;
    };
    if let Some(refused) = protection.guard.refusal(&req) {
        return refused;
    }
    let slot = req
        .extensions_mut()
        .get_or_insert_default::<JsonRpcIdSlot>()
        .clone();
    // Dropping the inner future on expiry drops the tool's work with it.
    let deadline = tokio::time::Instant::now() + protection.timeout;
    let guarded = std::panic::AssertUnwindSafe(next.run(req)).catch_unwind();
    let response = match tokio::time::timeout_at(deadline, guarded).await {
        Ok(Ok(response)) => response,
        Ok(Err(panic)) => {
            tracing::error!(panic = panic_message(&*panic), "handler panicked");
            error_for(
                request_id.as_ref(),
                slot.0.get(),
                JsonRpcError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    code::INTERNAL_ERROR,
                    "internal error while handling the request",
                ),
            )
        }
        Err(_) => timed_out(protection.timeout, request_id.as_ref(), slot.0.get()).into_response(),
    };
    let response = if super::is_event_stream(response.headers()) {
        response.map(|body| {
            Body::new(StreamDeadline {
                body,
                timeout: protection.timeout,
                deadline: Box::pin(tokio::time::sleep_until(deadline)),
                request_id,
                jsonrpc_id: slot,
                span: tracing::Span::current(),
                ended: false,
            })
        })
    } else {
        response
    };
    // The permit lives until the response body has been sent (streams included).
    response.map(|body| Body::new(Guarded::new(body, permit)))
}

/// The answer to a request past its deadline (counted and logged).
fn timed_out(
    timeout: Duration,
    request_id: Option<&RequestId>,
    jsonrpc_id: Option<&serde_json::Value>,
) -> JsonRpcError {
    metrics::counter!(names::REQUEST_TIMEOUTS).increment(1);
    let ms = timeout.as_millis();
    tracing::warn!(timeout_ms = ms as u64, "request timed out");
    JsonRpcError::new(
        StatusCode::GATEWAY_TIMEOUT,
        code::REQUEST_TIMEOUT,
        format!("request timed out after {ms} ms"),
    )
    .with_id(jsonrpc_id)
    .with_request_id(request_id.map(RequestId::as_str))
}

/// Holds an event stream (a tool that sends notifications before its result) to the request's
/// deadline, which otherwise only covers the wait for the response's head: when it passes, the
/// stream ends with a JSON-RPC timeout error event, and dropping the stream stops the tool.
struct StreamDeadline<B> {
    body: B,
    timeout: Duration,
    deadline: Pin<Box<tokio::time::Sleep>>,
    request_id: Option<RequestId>,
    jsonrpc_id: JsonRpcIdSlot,
    /// The request's span, for the log line (the body is polled outside it).
    span: tracing::Span,
    ended: bool,
}

impl<B: HttpBody<Data = Bytes> + Unpin> HttpBody for StreamDeadline<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.ended {
            return Poll::Ready(None);
        }
        if let Poll::Ready(frame) = Pin::new(&mut self.body).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        if self.deadline.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        self.ended = true;
        let error = self.span.in_scope(|| {
            timed_out(
                self.timeout,
                self.request_id.as_ref(),
                self.jsonrpc_id.0.get(),
            )
        });
        let event = format!("data: {}\n\n", error.body());
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(event)))))
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.body.is_end_stream()
    }
}

/// The text of a caught panic.
pub fn panic_message(panic: &(dyn Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("<non-string panic>")
}

/// A body that holds a guard until it is fully sent or dropped.
pub struct Guarded<B, G> {
    body: B,
    _guard: G,
}

impl<B, G> Guarded<B, G> {
    pub fn new(body: B, guard: G) -> Self {
        Self {
            body,
            _guard: guard,
        }
    }
}

impl<B: HttpBody + Unpin, G: Unpin> HttpBody for Guarded<B, G> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
