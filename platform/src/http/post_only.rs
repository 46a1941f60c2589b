//! The stateless server has no GET stream and no session to DELETE: anything but POST is a 405
//! naming what is allowed.

use axum::{
    extract::Request,
    http::{HeaderValue, Method, StatusCode, header},
    response::{IntoResponse, Response},
};

use super::Check;

/// Lets POST through.
#[derive(Debug, Clone, Copy, Default)]
pub struct PostOnly;

impl Check for PostOnly {
    fn check(&self, req: &Request) -> Option<Response> {
        (req.method() != Method::POST).then(|| method_not_allowed(req))
    }
}

/// A plain 405: the JSON-RPC edge gives it its error body, keeping `Allow`.
fn method_not_allowed(req: &Request) -> Response {
    let mut response = (
        StatusCode::METHOD_NOT_ALLOWED,
        format!(
            "{} is not supported on {}: this stateless server accepts POST only",
            req.method(),
            req.uri().path()
        ),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
    response
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use tower::{Layer as _, ServiceExt as _, service_fn};

    use super::*;
    use crate::http::CheckLayer;

    #[tokio::test]
    async fn only_post_reaches_the_inner_service() {
        let inner = service_fn(|_req: Request| async {
            Ok::<_, Infallible>(StatusCode::ACCEPTED.into_response())
        });
        let service = CheckLayer::new(PostOnly).layer(inner);
        let post = Request::post("/mcp")
            .body(axum::body::Body::empty())
            .unwrap();
        let answer = service.clone().oneshot(post).await.unwrap();
        assert_eq!(answer.status(), StatusCode::ACCEPTED);

        let get = Request::get("/mcp")
            .body(axum::body::Body::empty())
            .unwrap();
        let answer = service.oneshot(get).await.unwrap();
        assert_eq!(answer.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(answer.headers()[header::ALLOW], "POST");
        let text = axum::body::to_bytes(answer.into_body(), 1024)
            .await
            .unwrap();
        assert!(
            String::from_utf8_lossy(&text).contains("GET is not supported on /mcp"),
            "{text:?}"
        );
    }
}
