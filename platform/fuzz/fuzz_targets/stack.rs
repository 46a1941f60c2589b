//! The whole public router (request id, observe, refusals, catch-panic, CORS, shedding, Host and
//! Origin, deadline, auth, the envelope, rmcp and two tools), once with auth off and once with
//! auth on, on any request: only the statuses the README lists, a JSON-RPC error with the request
//! id on every refusal, a sane request id on every answer, and no call through auth without a
//! valid token.
#![no_main]

use std::sync::LazyLock;

use mcp_platform::stack::PublicService;
use http::{Method, StatusCode};
use libfuzzer_sys::fuzz_target;
use mcp_platform::jsonrpc::code;
use mcp_platform_fuzz::{AUTH, Answer, challenge, check_request_id, jsonrpc_error, send, stack};

/// The codes a 400 may carry besides parse error and invalid request: a 2026-07-28 header that
/// contradicts the body (rmcp), a 2026-07-28 request without its `_meta`, an unsupported version.
const HEADER_MISMATCH: i64 = -32020;
const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;
const INVALID_PARAMS: i64 = -32602;

/// A small body limit, so that a 413 is within libFuzzer's reach.
const BODY_LIMIT: (&str, &str) = ("APP__HTTP__MAX_BODY_BYTES", "2048");
static OPEN: LazyLock<PublicService> = LazyLock::new(|| stack(&[BODY_LIMIT]));
static AUTHED: LazyLock<PublicService> = LazyLock::new(|| stack(&[AUTH, &[BODY_LIMIT]].concat()));

fuzz_target!(|data: &[u8]| {
    let Some(request) = mcp_platform_fuzz::request(data) else {
        return;
    };
    for (router, auth_on) in [(&*OPEN, false), (&*AUTHED, true)] {
        let answer = send(router, request.clone());
        check(&request, &answer, auth_on);
    }
});

fn check(request: &http::Request<bytes::Bytes>, answer: &Answer, auth_on: bool) {
    let status = answer.status;
    let path = request.uri().path();
    let said = || String::from_utf8_lossy(&answer.body).into_owned();
    let request_id = check_request_id(request.headers(), answer);
    // The README's refusal table, less what a sequential in-process caller cannot cause (503
    // overload, 504 deadline, 500 panic); /readyz says 503 while not ready (nothing serves here).
    let listed = [200, 202, 400, 401, 403, 404, 405, 406, 413, 415];
    let readyz = path == "/readyz" && status == StatusCode::SERVICE_UNAVAILABLE;
    assert!(
        listed.contains(&status.as_u16()) || readyz,
        "unlisted status {status} for {} {path}: {}",
        request.method(),
        said()
    );
    if auth_on && request.method() == Method::POST && path == "/mcp" {
        assert!(
            !status.is_success(),
            "served without a valid token: {}",
            said()
        );
    }
    if status.is_client_error() && request.method() != Method::HEAD {
        let body = jsonrpc_error(&answer.body);
        assert_eq!(
            body["error"]["data"]["requestId"], request_id,
            "the refusal quotes the request id: {body}"
        );
        let error_code = body["error"]["code"].as_i64().unwrap();
        let codes: &[i64] = match status {
            StatusCode::BAD_REQUEST => &[
                code::PARSE_ERROR,
                code::INVALID_REQUEST,
                INVALID_PARAMS,
                HEADER_MISMATCH,
                UNSUPPORTED_PROTOCOL_VERSION,
            ],
            StatusCode::NOT_FOUND => &[code::METHOD_NOT_FOUND, code::INVALID_REQUEST],
            _ => &[code::INVALID_REQUEST],
        };
        assert!(
            codes.contains(&error_code),
            "{status} with code {error_code}: {body}"
        );
    }
    if status == StatusCode::UNAUTHORIZED {
        assert!(auth_on, "a 401 with auth off");
        challenge(answer);
    }
}
