//! CORS for browser-based MCP clients on the origins in `APP__HTTP__ALLOWED_ORIGINS`: answers
//! their preflight and lets them read the headers MCP clients need (the auth challenge, the
//! request id). Without allowed origins there is nothing to add: browsers are refused anyway.

use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

use super::request_id::X_REQUEST_ID;
use crate::config::HttpSettings;

/// How long a browser may cache a preflight answer.
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(600);

/// `request_headers`: what the endpoint's clients send besides the standard ones.
pub fn layer(settings: &HttpSettings, request_headers: &[&'static str]) -> Option<CorsLayer> {
    if settings.allowed_origins.is_empty() {
        return None;
    }
    let origins = if settings.allowed_origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            settings
                .allowed_origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o.trim_end_matches('/')).ok()),
        )
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
