//! The HTTP side of the platform: listeners and lifecycle ([`server`]), the layers of the stack
//! (each in its own module; [`crate::stack`] puts them in order) and the health routes. Nothing
//! here knows which protocol the endpoint behind it speaks, beyond answering in JSON-RPC.

pub mod auth;
pub mod body;
pub mod budget;
pub mod cors;
pub mod deadline;
pub mod guard;
pub mod healthcheck;
pub mod memory_limit;
pub mod observe;
pub mod rate_limit;
pub mod refusals;
pub mod request_id;
pub mod sampled_log;
pub mod server;
pub mod shed;

use axum::{
    Json,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::IntoResponse,
};
use serde_json::json;

pub use server::{Readiness, Server, shutdown_signal};

pub const LIVEZ_PATH: &str = "/livez";
pub const READYZ_PATH: &str = "/readyz";

/// Whether a path is a health probe's: probes are answered, counted, and neither traced nor
/// logged when healthy (they arrive every few seconds from every load balancer node).
pub fn is_health_probe(route: &str) -> bool {
    route == LIVEZ_PATH || route == READYZ_PATH
}

/// Whether a response is an event stream (SSE) rather than a complete body.
pub fn is_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"))
}

/// Whether a message is JSON (`application/json`, any parameters).
pub fn is_json(headers: &HeaderMap) -> bool {
    headers.get(header::CONTENT_TYPE).is_some_and(|v| {
        let mime = v
            .as_bytes()
            .split(|b| *b == b';')
            .next()
            .unwrap_or_default();
        mime.trim_ascii().eq_ignore_ascii_case(b"application/json")
    })
}

/// `GET /livez`: the process is alive.
pub async fn livez() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// `GET /readyz`: 200 while the listener should receive traffic, 503 once draining.
pub async fn readyz(State(readiness): State<Readiness>) -> impl IntoResponse {
    if readiness.is_ready() {
        (StatusCode::OK, Json(json!({ "status": "ready" })))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "draining" })),
        )
    }
}
