//! Load shedding: above a fixed number of requests in flight, a new one is answered 503 at once
//! (never a growing queue). Hand-written: tower's `ConcurrencyLimit` releases its permit when the
//! response head leaves, but an event stream is still in flight until its last byte.

use std::sync::Arc;

use axum::{
    body::Body,
    extract::{Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use tokio::sync::Semaphore;

use super::body::Guarded;
use crate::{
    context::RequestContext,
    jsonrpc::{JsonRpcError, code},
    telemetry::metrics::names,
};

/// Requests allowed in flight.
#[derive(Clone)]
pub struct InFlight(Arc<Semaphore>);

impl InFlight {
    pub fn new(max_in_flight: usize) -> Self {
        Self(Arc::new(Semaphore::new(max_in_flight)))
    }
}

pub async fn shed(State(in_flight): State<InFlight>, req: Request, next: Next) -> Response {
    let Ok(permit) = in_flight.0.clone().try_acquire_owned() else {
        metrics::counter!(names::SHED_REQUESTS).increment(1);
        tracing::warn!("shed request: too many requests in flight");
        let mut response = JsonRpcError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            code::SERVER_OVERLOADED,
            "server overloaded: too many requests in flight, retry shortly",
        )
        .for_request(RequestContext::of(req.extensions()))
        .into_response();
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
