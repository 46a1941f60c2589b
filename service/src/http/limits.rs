//! Protection of the MCP route: load shedding above a fixed number of requests in flight (503 at
//! once, never a growing queue), a whole-request deadline, and panics turned into JSON-RPC 500s.

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
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::sync::Semaphore;

use crate::{
    http::request_id::RequestId,
    jsonrpc::{JsonRpcError, code},
    telemetry::metrics::names,
};

/// The JSON-RPC id of the request, once the MCP layer has read the body. Outer layers (timeout,
/// panic) answer with it; the MCP layer fills it in.
#[derive(Debug, Clone, Default)]
pub struct JsonRpcIdSlot(pub Arc<std::sync::OnceLock<serde_json::Value>>);

/// Puts a [`JsonRpcIdSlot`] in the request and returns a handle to it.
fn id_slot(req: &mut Request) -> JsonRpcIdSlot {
    req.extensions_mut()
        .get_or_insert_default::<JsonRpcIdSlot>()
        .clone()
}

fn error_for(req_id: Option<&RequestId>, slot: &JsonRpcIdSlot, err: JsonRpcError) -> Response {
    err.with_id(slot.0.get())
        .with_request_id(req_id.map(RequestId::as_str))
        .into_response()
}

/// Sheds load: a request that finds every permit taken is answered 503 + `Retry-After` at once.
#[derive(Clone)]
pub struct LoadShed {
    permits: Arc<Semaphore>,
}

impl LoadShed {
    pub fn new(max_in_flight: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max_in_flight)),
        }
    }
}

pub async fn shed(State(shed): State<LoadShed>, req: Request, next: Next) -> Response {
    let Ok(permit) = shed.permits.clone().try_acquire_owned() else {
        metrics::counter!(names::SHED_REQUESTS).increment(1);
        let req_id = req.extensions().get::<RequestId>().cloned();
        tracing::warn!("shed request: too many requests in flight");
        let mut response = error_for(
            req_id.as_ref(),
            &JsonRpcIdSlot::default(),
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
    // The permit lives until the response body has been sent (streams included).
    next.run(req)
        .await
        .map(|body| Body::new(Guarded::new(body, permit)))
}

/// Deadline for the whole request. On expiry the inner future (and with it the tool) is dropped
/// and the client gets a JSON-RPC error instead of a hung socket.
#[derive(Clone, Copy)]
pub struct Deadline(pub Duration);

pub async fn deadline(
    State(Deadline(timeout)): State<Deadline>,
    mut req: Request,
    next: Next,
) -> Response {
    let slot = id_slot(&mut req);
    let req_id = req.extensions().get::<RequestId>().cloned();
    match tokio::time::timeout(timeout, next.run(req)).await {
        Ok(response) => response,
        Err(_) => {
            metrics::counter!(names::REQUEST_TIMEOUTS).increment(1);
            tracing::warn!(timeout_ms = timeout.as_millis() as u64, "request timed out");
            error_for(
                req_id.as_ref(),
                &slot,
                JsonRpcError::new(
                    StatusCode::GATEWAY_TIMEOUT,
                    code::REQUEST_TIMEOUT,
                    format!("request timed out after {} ms", timeout.as_millis()),
                ),
            )
        }
    }
}

/// Panics in handlers become a JSON-RPC 500 and an error log; the connection stays up.
pub async fn catch_panic(mut req: Request, next: Next) -> Response {
    use futures::FutureExt;
    let slot = id_slot(&mut req);
    let req_id = req.extensions().get::<RequestId>().cloned();
    match std::panic::AssertUnwindSafe(next.run(req))
        .catch_unwind()
        .await
    {
        Ok(response) => response,
        Err(panic) => {
            tracing::error!(panic = panic_message(&*panic), "handler panicked");
            error_for(
                req_id.as_ref(),
                &slot,
                JsonRpcError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    code::INTERNAL_ERROR,
                    "internal error while handling the request",
                ),
            )
        }
    }
}

fn panic_message(panic: &(dyn Any + Send)) -> &str {
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
