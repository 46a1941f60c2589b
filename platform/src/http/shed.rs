//! Load shedding: above a fixed number of requests in flight, a new one is answered 503 at once
//! (never a growing queue). Hand-written: tower's `ConcurrencyLimit` releases its permit when the
//! response head leaves, but an event stream is still in flight until its last byte.

use std::sync::Arc;

use axum::{
    body::Body,
    extract::Request,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::body::Guarded;
use crate::{
    context::RequestContext,
    jsonrpc::{JsonRpcError, code},
    telemetry::metrics::{labels, names, shed},
};

/// Requests allowed in flight.
#[derive(Clone)]
pub struct InFlight(Arc<Semaphore>);

impl InFlight {
    pub fn new(max_in_flight: usize) -> Self {
        Self(Arc::new(Semaphore::new(max_in_flight)))
    }
}

impl InFlight {
    /// A permit for one more request, unless `max_in_flight` are in flight already.
    pub fn try_admit(&self) -> Option<OwnedSemaphorePermit> {
        self.0.clone().try_acquire_owned().ok()
    }
}

/// The answer to a request shed for too many in flight: 503 with `Retry-After`.
pub fn overloaded(req: &Request) -> Response {
    metrics::counter!(names::SHED_REQUESTS, labels::REASON => shed::IN_FLIGHT).increment(1);
    tracing::warn!("shed request: too many requests in flight");
    retry_shortly(
        "server overloaded: too many requests in flight, retry shortly",
        RequestContext::of(req.extensions()),
    )
}

/// Every shed's answer: 503, a JSON-RPC overload error, `Retry-After: 1`.
pub fn retry_shortly(message: &'static str, context: Option<&RequestContext>) -> Response {
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
pub fn hold(response: Response, permit: OwnedSemaphorePermit) -> Response {
    response.map(|body| Body::new(Guarded::new(body, permit)))
}
