//! CORS for browser-based MCP clients on the origins the guard allows (`APP__HTTP__ALLOWED_ORIGINS`,
//! and loopback origins while only loopback hosts are allowed): answers their preflight and lets
//! them read the headers MCP clients need (the auth challenge, the request id). Without allowed
//! origins there is nothing to add: browsers are refused anyway.

use std::{
    convert::Infallible,
    task::{Context, Poll},
    time::Duration,
};

use axum::{
    extract::Request,
    http::{HeaderName, HeaderValue, Method, header},
    response::Response,
};
use futures::future::Either;
use tower::{Layer, Service};
use tower_http::cors::{AllowOrigin, Cors, CorsLayer, ResponseFuture};

use super::guard::OriginGuard;
use super::request_id::X_REQUEST_ID;

/// How long a browser may cache a preflight answer.
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(600);

/// tower-http's CORS for requests with an `Origin` (browsers'); other callers skip its
/// per-request work (see the README's performance section).
#[derive(Clone)]
pub struct BrowserCorsLayer(CorsLayer);

impl<S> Layer<S> for BrowserCorsLayer {
    type Service = BrowserCors<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BrowserCors(self.0.layer(inner))
    }
}

#[derive(Clone)]
pub struct BrowserCors<S>(Cors<S>);

impl<S> Service<Request> for BrowserCors<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<ResponseFuture<S::Future>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // CORS checks its rules, then readies the one inner service both paths call.
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        if req.headers().contains_key(header::ORIGIN) {
            Either::Left(self.0.call(req))
        } else {
            Either::Right(self.0.get_mut().call(req))
        }
    }
}

/// `request_headers`: what the endpoint's clients send besides the standard ones.
pub fn layer(guard: &OriginGuard, request_headers: &[&'static str]) -> Option<BrowserCorsLayer> {
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
    Some(BrowserCorsLayer(
        CorsLayer::new()
            .allow_origin(origins)
            .allow_methods([Method::POST])
            .allow_headers(allowed_headers.collect::<Vec<_>>())
            .expose_headers([header::WWW_AUTHENTICATE, X_REQUEST_ID.clone()])
            .max_age(PREFLIGHT_MAX_AGE),
    ))
}

#[cfg(test)]
mod tests {
    use axum::{
        http::StatusCode,
        response::{IntoResponse as _, Response},
    };
    use tower::{ServiceExt as _, service_fn};

    use super::*;
    use crate::config::{NoTools, Settings};

    #[tokio::test]
    async fn browsers_get_cors_and_other_callers_pass_untouched() {
        let settings = Settings::<NoTools>::load_from([(
            "APP__HTTP__ALLOWED_ORIGINS".to_owned(),
            "https://app.example.com".to_owned(),
        )])
        .unwrap();
        let cors = layer(&OriginGuard::new(&settings.http), &["mcp-method"]).expect("origins set");
        let inner = service_fn(|_req: Request| async {
            Ok::<Response, Infallible>(StatusCode::ACCEPTED.into_response())
        });
        let service = cors.layer(inner);

        let preflight = Request::options("/mcp")
            .header(header::ORIGIN, "https://app.example.com")
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .body(axum::body::Body::empty())
            .unwrap();
        let answer = service.clone().oneshot(preflight).await.unwrap();
        assert_eq!(answer.status(), StatusCode::OK, "preflights stop here");
        assert_eq!(
            answer.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "https://app.example.com"
        );

        let plain = Request::post("/mcp")
            .body(axum::body::Body::empty())
            .unwrap();
        let answer = service.oneshot(plain).await.unwrap();
        assert_eq!(answer.status(), StatusCode::ACCEPTED);
        assert!(answer.headers().is_empty(), "{:?}", answer.headers());
    }
}
