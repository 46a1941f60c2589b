//! Request-id sanitising through the real stack: any `x-request-id` values (one per line of the
//! input) on a health probe and on a refused MCP call: one sane id on every answer, the caller's
//! first when it is sane, else a UUID v4, and the refusal quotes it.
#![no_main]

use std::sync::LazyLock;

use mcp_platform::stack::PublicService;
use bytes::Bytes;
use http::{HeaderValue, Request, StatusCode};
use libfuzzer_sys::fuzz_target;
use mcp_platform_fuzz::{check_request_id, jsonrpc_error, send, stack};

static STACK: LazyLock<PublicService> = LazyLock::new(|| stack(&[]));

fuzz_target!(|data: &[u8]| {
    let ids: Vec<HeaderValue> = data
        .split(|b| *b == b'\n')
        .filter_map(|id| HeaderValue::from_bytes(id).ok())
        .collect();
    for (method, path) in [("GET", "/livez"), ("POST", "/mcp")] {
        // No Content-Type: the MCP endpoint refuses it (415) after every layer before it ran.
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "localhost:8080");
        for id in &ids {
            request = request.header("x-request-id", id.clone());
        }
        let request = request.body(Bytes::new()).unwrap();
        let answer = send(&*STACK, request.clone());
        let id = check_request_id(request.headers(), &answer);
        if answer.status != StatusCode::OK {
            assert_eq!(answer.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
            assert_eq!(
                jsonrpc_error(&answer.body)["error"]["data"]["requestId"],
                id
            );
        }
    }
});
