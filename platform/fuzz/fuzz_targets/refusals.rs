//! The edge of the stack (`refusals`): whatever a layer or rmcp answers, an error that is not JSON
//! yet leaves as a JSON-RPC error with the same status, the code for that status, the answer's
//! own text (or the status's reason) as the message, and the answer's other headers; anything
//! else passes untouched.
#![no_main]

use std::sync::LazyLock;

use axum::{
    Extension, Router,
    body::Body,
    extract::Request as AxumRequest,
    middleware::{Next, from_fn},
    response::Response,
};
use bytes::Bytes;
use http::{Request, header};
use libfuzzer_sys::fuzz_target;
use mcp_platform::http::refusals::{as_json_rpc, code_for};
use mcp_platform_fuzz::{is_json, jsonrpc_error, send};

/// The answer the inner service gives, carried to it in the request.
#[derive(Clone)]
struct Canned(http::StatusCode, http::HeaderMap, Bytes);

/// The edge (as the observe layer applies it) around a service that answers the canned response.
static EDGE: LazyLock<Router> = LazyLock::new(|| {
    Router::new()
        .fallback(
            |Extension(Canned(status, headers, body)): Extension<Canned>| async move {
                let mut response = Response::new(Body::from(body));
                *response.status_mut() = status;
                *response.headers_mut() = headers;
                response
            },
        )
        .layer(from_fn(|req: AxumRequest, next: Next| async move {
            as_json_rpc(next.run(req).await, None).await
        }))
});

fuzz_target!(|data: &[u8]| {
    let Some(inner) = mcp_platform_fuzz::response(data) else {
        return;
    };
    let mut request = Request::new(Bytes::new());
    request.extensions_mut().insert(Canned(
        inner.status(),
        inner.headers().clone(),
        inner.body().clone(),
    ));
    let answer = send(&*EDGE, request);
    let status = inner.status();
    assert_eq!(answer.status, status, "the status is kept");

    let is_error = status.is_client_error() || status.is_server_error();
    if !is_error || is_json(inner.headers()) {
        assert_eq!(answer.body, inner.body(), "passes untouched");
        // axum frames a body it knows the size of (when the inner answer did not); every other
        // header is the inner answer's.
        let mut headers = answer.headers.clone();
        headers.remove(header::CONTENT_LENGTH);
        let mut inner_headers = inner.headers().clone();
        inner_headers.remove(header::CONTENT_LENGTH);
        assert_eq!(headers, inner_headers, "passes untouched");
        return;
    }
    assert!(is_json(&answer.headers), "a refusal is JSON");
    let body = jsonrpc_error(&answer.body);
    assert_eq!(body["error"]["code"], code_for(status));
    assert!(body["id"].is_null(), "no request read, no id: {body}");
    let message = body["error"]["message"].as_str().unwrap();
    let text = String::from_utf8_lossy(inner.body());
    let reason = status.canonical_reason().unwrap_or("request rejected");
    // A long text may be cut to the reason; a short one is always quoted.
    match text.trim() {
        "" => assert_eq!(message, reason),
        text if inner.body().len() <= 1024 => assert_eq!(message, text),
        text => assert!(message == text || message == reason, "{message:?}"),
    }
    for (name, value) in inner.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            assert!(
                answer.headers.get_all(name).iter().any(|v| v == value),
                "header {name}: {value:?} is kept: {:?}",
                answer.headers
            );
        }
    }
});
