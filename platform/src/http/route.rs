//! Records the route the router matched (its own `MatchedPath`) in the request's facts, for the
//! access log, the metrics and the server span: routes are matched once, by the router.

use std::{
    convert::Infallible,
    task::{Context, Poll},
};

use axum::{
    extract::{MatchedPath, Request},
    response::Response,
};
use tower::{Layer, Service};

use crate::context::RequestFacts;

/// Applied to every route with `Router::route_layer` ([`RecordRoute`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct RecordRouteLayer;

impl<S> Layer<S> for RecordRouteLayer {
    type Service = RecordRoute<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RecordRoute { inner }
    }
}

#[derive(Debug, Clone)]
pub struct RecordRoute<S> {
    inner: S,
}

impl<S> Service<Request> for RecordRoute<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        if let (Some(facts), Some(route)) = (
            RequestFacts::of(req.extensions()),
            req.extensions().get::<MatchedPath>(),
        ) {
            facts.set_route(route.clone());
        }
        self.inner.call(req)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use axum::{Router, http::HeaderValue, routing::get};
    use tower::ServiceExt as _;

    use super::*;

    #[tokio::test]
    async fn the_route_the_router_matched_is_recorded_once() {
        let router = Router::new()
            .route("/livez", get(|| async { "ok" }))
            .route_layer(RecordRouteLayer);
        let call = |method: &str, path: &str| {
            let facts = RequestFacts::new(
                HeaderValue::from_static("id"),
                Instant::now(),
                tracing::Span::none(),
            );
            let mut req = Request::builder()
                .method(method)
                .uri(path)
                .body(axum::body::Body::empty())
                .unwrap();
            req.extensions_mut().insert(facts.clone());
            let answer = router.clone().oneshot(req);
            async move { (answer.await.unwrap().status(), facts) }
        };
        let (status, facts) = call("GET", "/livez").await;
        assert_eq!((status.as_u16(), facts.route()), (200, Some("/livez")));
        // The method router's own 405 is the route's too.
        let (status, facts) = call("POST", "/livez").await;
        assert_eq!((status.as_u16(), facts.route()), (405, Some("/livez")));
        let (status, facts) = call("GET", "/nowhere").await;
        assert_eq!((status.as_u16(), facts.route()), (404, None));
    }
}
