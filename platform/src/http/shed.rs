//! Load shedding: above a fixed number of requests in flight, a new one is answered 503 at once
//! (never a growing queue). Hand-written: tower's `ConcurrencyLimit` releases its permit when the
//! response head leaves, but an event stream is still in flight until its last byte.

use std::{convert::Infallible, future::Future, sync::Arc};

use super::{Around, Handled, body::Guarded};
use crate::{
    context::RequestFacts,
    jsonrpc::{JsonRpcError, code},
    telemetry::metrics::{labels, names, shed},
};
use axum::{
    body::Body,
    extract::Request,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Requests allowed in flight, shared by every request of the route (an [`Around`] layer).
pub struct Shed(Arc<Semaphore>);

impl Shed {
    pub fn new(max_in_flight: usize) -> Self {
        Self(Arc::new(Semaphore::new(max_in_flight)))
    }
}

impl Around for Shed {
    fn around<F>(self: &Arc<Self>, req: Request, next: impl FnOnce(Request) -> F) -> Handled
    where
        F: Future<Output = Result<Response, Infallible>> + Send + 'static,
    {
        let Ok(permit) = self.0.clone().try_acquire_owned() else {
            return Box::pin(std::future::ready(Ok(overloaded(&req))));
        };
        let handled = next(req);
        Box::pin(async move { Ok(hold(handled.await?, permit)) })
    }
}

/// The answer to a request shed for too many in flight: 503 with `Retry-After`.
fn overloaded(req: &Request) -> Response {
    metrics::counter!(names::SHED_REQUESTS, labels::REASON => shed::IN_FLIGHT).increment(1);
    tracing::warn!("shed request: too many requests in flight");
    retry_shortly(
        "server overloaded: too many requests in flight, retry shortly",
        RequestFacts::of(req.extensions()),
    )
}

/// Every shed's answer: 503, a JSON-RPC overload error, `Retry-After: 1`.
pub fn retry_shortly(message: &'static str, context: Option<&RequestFacts>) -> Response {
    let mut response = JsonRpcError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        code::SERVER_OVERLOADED,
        message,
    )
    .for_request(context)
    .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// The permit lives until the response body has been sent (streams included).
fn hold(response: Response, permit: OwnedSemaphorePermit) -> Response {
    response.map(|body| Body::new(Guarded::new(body, permit)))
}

#[cfg(test)]
mod tests {
    use tower::{Layer as _, ServiceExt as _, service_fn};

    use super::*;

    #[tokio::test]
    async fn a_request_over_the_limit_is_shed_until_a_response_body_is_done() {
        let inner =
            service_fn(|_req: Request| async { Ok::<_, Infallible>("pong".into_response()) });
        let service = super::super::AroundLayer::new(Shed::new(1)).layer(inner);
        let request = || Request::post("/mcp").body(Body::empty()).unwrap();
        let held = service.clone().oneshot(request()).await.unwrap();
        assert_eq!(held.status(), StatusCode::OK);
        let shed = service.clone().oneshot(request()).await.unwrap();
        assert_eq!(shed.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(shed.headers()[header::RETRY_AFTER], "1");
        // The permit is the first response body's: sent, it admits the next request.
        axum::body::to_bytes(held.into_body(), 64).await.unwrap();
        let admitted = service.oneshot(request()).await.unwrap();
        assert_eq!(admitted.status(), StatusCode::OK);
    }
}
