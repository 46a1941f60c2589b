//! Bearer-token parsing and JWT header decoding (the gate's auth step with a JWKS file) on any
//! `Authorization`: never a call through without a valid signature, always a 401 with one
//! `WWW-Authenticate: Bearer` challenge a client can read (naming the metadata document, and
//! `invalid_token` when a token was sent), a JSON-RPC error body, and the token never echoed.
//!
//! `Authorization: Bearer json:<header>\t<claims>\t<signature>` is sent with the two JSON parts
//! base64url-encoded, so libFuzzer mutates the JWT's JSON rather than its base64.
#![no_main]

use std::sync::LazyLock;

use axum::{
    Router,
    extract::Request,
    middleware::{Next, from_fn},
};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use http::{HeaderValue, StatusCode, header};
use libfuzzer_sys::fuzz_target;
use mcp_platform_fuzz::{AUTH, authenticator, challenge, jsonrpc_error, send, settings};

static GATE: LazyLock<Router> = LazyLock::new(|| {
    let auth = authenticator(&settings(AUTH)).expect("auth is on");
    Router::new()
        .fallback(|| async { "served" })
        .layer(from_fn(move |req: Request, next: Next| {
            let auth = auth.clone();
            async move {
                match auth.admit(req.headers(), None).await {
                    Ok(()) => next.run(req).await,
                    Err(refused) => refused,
                }
            }
        }))
});

/// A token shaped like a JWT (three base64url parts of 8 or more characters): what a caller would
/// mind seeing echoed, and unlike any fixed text of the platform (libFuzzer soon sends a token
/// that is a piece of the refusal's own words, such as "malformed token: InvalidTo").
fn jwt_shaped(token: &str) -> bool {
    let parts: Vec<&str> = token.split('.').collect();
    parts.len() == 3
        && parts.iter().all(|part| {
            part.len() >= 8
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

fuzz_target!(|data: &[u8]| {
    let Some(mut request) = mcp_platform_fuzz::request(data) else {
        return;
    };
    if let Some(jwt) = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer json:"))
    {
        let mut parts = jwt.splitn(3, |b| *b == b'\t');
        let (head, claims, signature) = (
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
        );
        let token = format!(
            "Bearer {}.{}.{}",
            URL_SAFE_NO_PAD.encode(head),
            URL_SAFE_NO_PAD.encode(claims),
            String::from_utf8_lossy(signature)
        );
        let Ok(value) = HeaderValue::from_str(&token) else {
            return;
        };
        request.headers_mut().insert(header::AUTHORIZATION, value);
    }
    let sent = request.headers().get(header::AUTHORIZATION).cloned();
    let answer = send(&*GATE, request);

    assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{:?}", answer.body);
    let challenge = challenge(&answer);
    assert_eq!(
        challenge.contains("error=\"invalid_token\""),
        sent.is_some(),
        "{challenge}"
    );
    let body = jsonrpc_error(&answer.body);
    assert_eq!(
        body["error"]["code"],
        mcp_platform::jsonrpc::code::INVALID_REQUEST
    );
    // A token (what follows the scheme) is never echoed.
    let token = sent
        .as_ref()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .map(|(_, token)| token.trim())
        .filter(|token| jwt_shaped(token));
    if let Some(token) = token {
        let message = body["error"]["message"].as_str().unwrap();
        assert!(!message.contains(token), "echoed: {message}");
        assert!(!challenge.contains(token), "echoed: {challenge}");
    }
});
