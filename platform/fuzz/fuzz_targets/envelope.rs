//! The JSON-RPC envelope and `_meta` reader and the `MCP-Protocol-Version` check, on any headers
//! and body: never a panic, the same reading as serde_json's own of the same bytes, and every
//! refusal a 400 with a valid JSON-RPC error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_platform::{
    jsonrpc::{JsonRpcError, code},
    mcp::{
        SUPPORTED_PROTOCOL_VERSIONS,
        fuzzing::{check_protocol_version, read_envelope},
    },
};
use serde_json::Value;

/// Error code of an unsupported protocol version (2026-07-28 `UnsupportedProtocolVersionError`).
const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;

fuzz_target!(|data: &[u8]| {
    let Some(request) = mcp_platform_fuzz::request(data) else {
        return;
    };
    let (parts, body) = request.into_parts();
    let headers = &parts.headers;
    let header_version = headers.get("mcp-protocol-version");

    // serde_json's reading of the body is the reference.
    let reference: Option<Value> = serde_json::from_slice(&body).ok();
    match read_envelope(&body, headers) {
        Ok(info) => {
            let object = reference
                .as_ref()
                .and_then(Value::as_object)
                .expect("an accepted body is a JSON object");
            let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
            // Members of an object that is one; an array or a scalar has none.
            let member = |parent: Option<&Value>, name: &str| {
                parent
                    .and_then(Value::as_object)
                    .and_then(|o| o.get(name))
                    .cloned()
            };
            let params = object.get("params");
            let meta = member(params, "_meta");
            assert_eq!(info.method, text(object.get("method")), "method");
            assert_eq!(
                info.id,
                object.get("id").filter(|id| !id.is_null()).cloned(),
                "id"
            );
            assert!(
                info.id
                    .as_ref()
                    .is_none_or(|id| id.is_string() || id.is_number()),
                "a JSON-RPC id is a string or a number"
            );
            assert_eq!(
                info.name,
                text(member(params, "name").as_ref()),
                "params.name"
            );
            assert_eq!(
                info.traceparent,
                text(member(meta.as_ref(), "traceparent").as_ref()),
                "traceparent"
            );
            assert_eq!(
                info.tracestate,
                text(member(meta.as_ref(), "tracestate").as_ref()),
                "tracestate"
            );
            let meta_version =
                text(member(meta.as_ref(), "io.modelcontextprotocol/protocolVersion").as_ref());
            let header = header_version
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            assert_eq!(
                info.protocol_version,
                header.or(meta_version),
                "protocol version"
            );
        }
        Err(refusal) => {
            assert_refusal(&refusal);
            let expected = match &reference {
                None => code::PARSE_ERROR,
                Some(_) => code::INVALID_REQUEST,
            };
            assert_eq!(refusal.code, expected, "{}", refusal.message);
            // An id is echoed only as the body has it, and only a string or a number.
            if !refusal.id.is_null() {
                let sent = reference.as_ref().and_then(|v| v.get("id"));
                assert_eq!(Some(&refusal.id), sent);
                assert!(refusal.id.is_string() || refusal.id.is_number());
            }
        }
    }

    let supported: Vec<&str> = SUPPORTED_PROTOCOL_VERSIONS
        .iter()
        .map(|v| v.as_str())
        .collect();
    let requested = header_version.map(|v| v.to_str().unwrap_or_default());
    match check_protocol_version(headers) {
        Ok(()) => assert!(
            requested.is_none_or(|v| supported.contains(&v)),
            "{requested:?}"
        ),
        Err(refusal) => {
            assert_refusal(&refusal);
            let requested = requested.expect("only a header that is sent is refused");
            assert!(!supported.contains(&requested));
            assert_eq!(refusal.code, UNSUPPORTED_PROTOCOL_VERSION);
            let data = refusal
                .data
                .as_ref()
                .expect("the refusal lists what is supported");
            assert_eq!(data["supported"], serde_json::json!(supported));
            assert_eq!(data["requested"], requested);
        }
    }
});

/// A 400 whose body is a valid JSON-RPC error with the same code and message.
fn assert_refusal(refusal: &JsonRpcError) {
    assert_eq!(refusal.status, http::StatusCode::BAD_REQUEST);
    let body = serde_json::to_vec(&refusal.body()).expect("a JSON-RPC error serialises");
    let parsed = mcp_platform_fuzz::jsonrpc_error(&body);
    assert_eq!(parsed["error"]["code"], refusal.code);
    assert_eq!(parsed["error"]["message"], refusal.message);
}
