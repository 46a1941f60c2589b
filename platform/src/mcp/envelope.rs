//! What an MCP request is: the JSON-RPC envelope read once, just enough of it (method, id, tool
//! or prompt name, `_meta` trace context and protocol version), and the protocol-version header
//! check. Bodies that no protocol version accepts are refused here, with a JSON-RPC error.

use std::{borrow::Cow, fmt, marker::PhantomData};

use axum::http::{HeaderMap, HeaderName, StatusCode};
use serde::{
    Deserialize, Deserializer,
    de::{IgnoredAny, MapAccess, Visitor, value::MapAccessDeserializer},
};
use serde_json::{Value, json};

use super::SUPPORTED_PROTOCOL_VERSIONS;
use crate::jsonrpc::{JsonRpcError, code};

/// A name made once: looked up by a `&str`, a header name is parsed again on every request.
const PROTOCOL_VERSION_HEADER: HeaderName = HeaderName::from_static("mcp-protocol-version");
/// JSON-RPC error code for an unsupported protocol version (2026-07-28 `UnsupportedProtocolVersionError`).
const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;

/// What the request is, as far as MCP is concerned.
#[derive(Debug, Clone, Default)]
pub struct McpRequestInfo {
    /// `tools/call`, `initialize`, ...; `None` for a client's JSON-RPC response.
    pub method: Option<String>,
    /// The JSON-RPC id; `None` for notifications.
    pub id: Option<Value>,
    /// `params.name` (tools/call, prompts/get).
    pub name: Option<String>,
    /// `params.taskId` (tasks/get, tasks/update, tasks/cancel): for the access line.
    pub task_id: Option<String>,
    /// From the `MCP-Protocol-Version` header, else `params._meta`.
    pub protocol_version: Option<String>,
    /// W3C trace context from `params._meta` (the MCP convention).
    pub traceparent: Option<String>,
    pub tracestate: Option<String>,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(default)]
    id: Option<Value>,
    #[serde(borrow, default)]
    method: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    params: Option<Object<Params<'a>>>,
}

#[derive(Deserialize)]
struct Params<'a> {
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "taskId")]
    task_id: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "_meta")]
    meta: Option<Object<Meta<'a>>>,
}

#[derive(Deserialize)]
struct Meta<'a> {
    #[serde(borrow, default)]
    traceparent: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    tracestate: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "io.modelcontextprotocol/protocolVersion")]
    protocol_version: Option<Cow<'a, str>>,
}

/// A member that must be a JSON object. serde also reads a struct from an array, by position:
/// `"params": ["ping"]` would name the tool `ping` (found by the `envelope` fuzz target).
struct Object<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
            type Value = T;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map))
            }
        }
        deserializer
            .deserialize_map(ObjectVisitor(PhantomData))
            .map(Object)
    }
}

/// An `MCP-Protocol-Version` header must name a version we speak (400 otherwise, per spec).
pub fn check_protocol_version(headers: &HeaderMap) -> Result<(), JsonRpcError> {
    let Some(requested) = headers.get(&PROTOCOL_VERSION_HEADER) else {
        return Ok(());
    };
    let requested = requested.to_str().unwrap_or_default();
    if SUPPORTED_PROTOCOL_VERSIONS
        .iter()
        .any(|v| v.as_str() == requested)
    {
        return Ok(());
    }
    let supported: Vec<&str> = SUPPORTED_PROTOCOL_VERSIONS
        .iter()
        .map(|v| v.as_str())
        .collect();
    Err(JsonRpcError::new(
        StatusCode::BAD_REQUEST,
        UNSUPPORTED_PROTOCOL_VERSION,
        format!(
            "unsupported MCP-Protocol-Version {requested:?}; supported: {}",
            supported.join(", ")
        ),
    )
    .with_data(json!({ "supported": supported, "requested": requested })))
}

/// Parses just enough of the body to know what it is, and rejects what no version accepts.
pub fn read_envelope(bytes: &[u8], headers: &HeaderMap) -> Result<McpRequestInfo, JsonRpcError> {
    let invalid = |message: String| {
        JsonRpcError::new(StatusCode::BAD_REQUEST, code::INVALID_REQUEST, message)
    };
    // serde_json checks UTF-8 only in the strings it keeps: a body whose ignored strings are
    // not UTF-8 would pass here and fail in rmcp (found by the `envelope` fuzz target).
    if let Err(e) = std::str::from_utf8(bytes) {
        return Err(JsonRpcError::new(
            StatusCode::BAD_REQUEST,
            code::PARSE_ERROR,
            format!("Parse error: the body is not valid JSON (not UTF-8: {e})"),
        ));
    }
    // serde would happily read a struct from an array by position, so look at the shape first.
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => {}
        // Checked without building the tree (`[[],[],...]` would take ~16 times its bytes).
        Some(b'[') if serde_json::from_slice::<IgnoredAny>(bytes).is_ok() => {
            return Err(invalid(
                "Invalid Request: JSON-RPC batches are not supported; send one request per POST \
                 (batching was removed in protocol 2025-06-18)"
                    .into(),
            ));
        }
        _ if serde_json::from_slice::<IgnoredAny>(bytes).is_ok() => {
            return Err(invalid(
                "Invalid Request: a JSON-RPC message must be a JSON object".into(),
            ));
        }
        _ => {}
    }
    let envelope: Envelope<'_> = match serde_json::from_slice(bytes) {
        Ok(envelope) => envelope,
        Err(e) => {
            return Err(match serde_json::from_slice::<Value>(bytes) {
                Err(_) => JsonRpcError::new(
                    StatusCode::BAD_REQUEST,
                    code::PARSE_ERROR,
                    format!("Parse error: the body is not valid JSON ({e})"),
                ),
                // The id may still be readable: the caller can then match the error to its call.
                Ok(value) => invalid(format!("Invalid Request: not a JSON-RPC message ({e})"))
                    .with_id(
                        value
                            .get("id")
                            .filter(|id| id.is_string() || id.is_number()),
                    ),
            });
        }
    };
    // rmcp would echo any id in its own refusal (found by the `stack` fuzz target).
    if envelope
        .id
        .as_ref()
        .is_some_and(|id| !(id.is_null() || id.is_string() || id.is_number()))
    {
        return Err(invalid(
            "Invalid Request: a JSON-RPC id is a string, a number or null".into(),
        ));
    }
    let params = envelope.params.map(|Object(params)| params);
    let meta = params
        .as_ref()
        .and_then(|p| p.meta.as_ref())
        .map(|Object(meta)| meta);
    let header_version = headers
        .get(&PROTOCOL_VERSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Ok(McpRequestInfo {
        method: envelope.method.map(Cow::into_owned),
        id: envelope.id.filter(|id| !id.is_null()),
        name: params
            .as_ref()
            .and_then(|p| p.name.clone())
            .map(Cow::into_owned),
        task_id: params
            .as_ref()
            .and_then(|p| p.task_id.clone())
            .map(Cow::into_owned),
        protocol_version: header_version.or_else(|| {
            meta.and_then(|m| m.protocol_version.clone())
                .map(Cow::into_owned)
        }),
        traceparent: meta
            .and_then(|m| m.traceparent.clone())
            .map(Cow::into_owned),
        tracestate: meta.and_then(|m| m.tracestate.clone()).map(Cow::into_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(body: &str) -> Result<McpRequestInfo, JsonRpcError> {
        read_envelope(body.as_bytes(), &HeaderMap::new())
    }

    #[test]
    fn reads_method_id_name_and_trace_context() {
        let info = read(
            r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"ping","arguments":{},
              "_meta":{"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                       "io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#,
        )
        .unwrap();
        assert_eq!(info.method.as_deref(), Some("tools/call"));
        assert_eq!(info.id, Some(json!(7)));
        assert_eq!(info.name.as_deref(), Some("ping"));
        assert_eq!(info.protocol_version.as_deref(), Some("2026-07-28"));
        assert!(info.traceparent.unwrap().starts_with("00-0af7"));
    }

    #[test]
    fn classifies_bad_bodies() {
        let parse = read("{not json").unwrap_err();
        assert_eq!(
            (parse.status, parse.code),
            (StatusCode::BAD_REQUEST, code::PARSE_ERROR)
        );
        let batch = read(r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#).unwrap_err();
        assert_eq!(batch.code, code::INVALID_REQUEST);
        assert!(batch.message.contains("batch"));
        let not_utf8 = read_envelope(
            b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"x\":\"\xff\"}",
            &HeaderMap::new(),
        )
        .unwrap_err();
        assert_eq!(not_utf8.code, code::PARSE_ERROR, "{}", not_utf8.message);
        let shape = read(r#""just a string""#).unwrap_err();
        assert_eq!(shape.code, code::INVALID_REQUEST);
    }

    #[test]
    fn a_bad_envelope_keeps_a_readable_id() {
        let bad_meta = read(
            r#"{"jsonrpc":"2.0","id":"call-9","method":"tools/call",
               "params":{"name":"ping","_meta":{"traceparent":123}}}"#,
        )
        .unwrap_err();
        assert_eq!(bad_meta.code, code::INVALID_REQUEST);
        assert!(
            bad_meta.message.contains("expected a string"),
            "{}",
            bad_meta.message
        );
        assert_eq!(bad_meta.id, json!("call-9"));
        // `params` and `_meta` are objects; serde alone would read an array by position.
        for body in [
            r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":["ping"]}"#,
            r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"_meta":["00-a-b-01"]}}"#,
        ] {
            let positional = read(body).unwrap_err();
            assert_eq!(positional.code, code::INVALID_REQUEST, "{body}");
            assert!(
                positional.message.contains("a JSON object"),
                "{positional:?}"
            );
            assert_eq!(positional.id, json!(3));
        }
        // An id that is itself malformed is not echoed.
        let bad_id = read(r#"{"jsonrpc":"2.0","id":{"x":1},"method":5}"#).unwrap_err();
        assert_eq!(bad_id.id, Value::Null);
        let object_id = read(r#"{"jsonrpc":"2.0","id":{"name":"ping"}}"#).unwrap_err();
        assert_eq!(object_id.code, code::INVALID_REQUEST);
        assert_eq!(object_id.id, Value::Null);
    }
}
