//! CORS for browser-based MCP clients on the origins the guard allows (`APP__HTTP__ALLOWED_ORIGINS`,
//! and loopback origins while only loopback hosts are allowed): answers their preflight and lets
//! them read the headers MCP clients need (the auth challenge, the request id). Without allowed
//! origins there is nothing to add: browsers are refused anyway.

use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

use super::guard::OriginGuard;
use super::request_id::X_REQUEST_ID;

/// How long a browser may cache a preflight answer.
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(600);

/// `request_headers`: what the endpoint's clients send besides the standard ones.
pub fn layer(guard: &OriginGuard, request_headers: &[&'static str]) -> Option<CorsLayer> {
    if guard.no_origin() {
        return None;
    }
    let origins = if guard.any_origin() {
        AllowOrigin::any()
    } else {
        let guard = guard.clone();
        AllowOrigin::predicate(move |origin: &HeaderValue, _| {
            origin.to_str().is_ok_and(|o| guard.origin_allowed(o))
        })
    };
    let allowed_headers = [
        header::CONTENT_TYPE,
        header::ACCEPT,
        header::AUTHORIZATION,
        X_REQUEST_ID.clone(),
    ]
    .into_iter()
    .chain(
        request_headers
            .iter()
            .map(|name| HeaderName::from_static(name)),
    );
    Some(
        CorsLayer::new()
            .allow_origin(origins)
            .allow_methods([Method::POST])
            .allow_headers(allowed_headers.collect::<Vec<_>>())
            .expose_headers([header::WWW_AUTHENTICATE, X_REQUEST_ID.clone()])
            .max_age(PREFLIGHT_MAX_AGE),
    )
}
