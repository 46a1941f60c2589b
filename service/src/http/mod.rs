//! The HTTP side: routes, the middleware stack and the listeners. The MCP endpoint is any tower
//! service handed in by the caller (see [`crate::mcp`]); this layer knows nothing of MCP itself.

pub mod auth;
mod cors;
pub mod guard;
pub mod healthcheck;
pub mod limits;
pub mod observe;
pub mod request_id;
pub mod server;

use std::{convert::Infallible, sync::Arc};

use axum::{
    Json, Router,
    extract::{Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    middleware::{from_fn, from_fn_with_state},
    response::{IntoResponse, Response},
    routing::{MethodRouter, get, post_service},
};
use serde_json::json;
use tower::Service;

pub use server::{Readiness, Server, shutdown_signal};

use crate::{
    config::HttpSettings,
    jsonrpc::{JsonRpcError, code},
};

/// Whether a response is an event stream (SSE) rather than a complete body.
pub fn is_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"))
}

/// Path of the MCP endpoint.
pub const MCP_PATH: &str = "/mcp";
pub const LIVEZ_PATH: &str = "/livez";
pub const READYZ_PATH: &str = "/readyz";

/// Builds the public router: `POST /mcp` behind the protection stack, and the health routes
/// outside it (health checks must never be shed, timed out or Host-checked).
pub fn router<S>(
    settings: &HttpSettings,
    mcp: S,
    readiness: Readiness,
    auth: Option<Arc<auth::Authenticator>>,
) -> Router
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
{
    let mut mcp_route: MethodRouter = post_service(mcp).fallback(mcp_method_not_allowed);
    if let Some(auth) = &auth {
        // `route_layer`: the 405 fallback for GET/DELETE answers before (and without) auth.
        mcp_route = mcp_route.route_layer(from_fn_with_state(auth.clone(), auth::middleware));
    }
    let mut mcp_route = mcp_route.layer(from_fn_with_state(
        limits::Protection::new(settings),
        limits::protect,
    ));
    // Outermost on the route: a browser's preflight is answered before any other check.
    if let Some(cors) = cors::layer(settings) {
        mcp_route = mcp_route.layer(cors);
    }

    let mut router = Router::new()
        .route(MCP_PATH, mcp_route)
        .route(LIVEZ_PATH, get(livez))
        .route(READYZ_PATH, get(readyz).with_state(readiness));
    if let Some(auth) = auth {
        // Clients look for the path-inserted document first, then the root one.
        let document = get(auth::metadata).with_state(auth.clone());
        router = router.route(&auth.metadata_path(), document.clone());
        if auth.metadata_path() != auth::METADATA_PATH {
            router = router.route(auth::METADATA_PATH, document);
        }
    }
    router
        .fallback(not_found)
        // Router::layer runs after routing, so the observer sees the matched route.
        .layer(from_fn(observe::middleware))
}

async fn livez() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

async fn readyz(State(readiness): State<Readiness>) -> impl IntoResponse {
    if readiness.is_ready() {
        (StatusCode::OK, Json(json!({ "status": "ready" })))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "draining" })),
        )
    }
}

/// The stateless server has no GET stream and no session to DELETE.
async fn mcp_method_not_allowed(req: Request) -> Response {
    let mut response = JsonRpcError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        code::INVALID_REQUEST,
        format!(
            "{} is not supported on {MCP_PATH}: this stateless server accepts POST only",
            req.method()
        ),
    )
    .with_request_id(request_id::RequestId::of(&req))
    .into_response();
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
    response
}

async fn not_found(req: Request) -> Response {
    JsonRpcError::new(
        StatusCode::NOT_FOUND,
        code::INVALID_REQUEST,
        format!(
            "no route for {} {}; the MCP endpoint is POST {MCP_PATH}",
            req.method(),
            req.uri().path()
        ),
    )
    .with_request_id(request_id::RequestId::of(&req))
    .into_response()
}
