//! The front of the MCP endpoint. It reads the body once (bounded), checks the JSON-RPC envelope
//! and the protocol-version header, learns what the request is ([`McpRequestInfo`], for the span,
//! the metrics and the access log), hands the request to rmcp, and turns rmcp's plain-text HTTP errors into JSON-RPC
//! error bodies so every client gets a parseable answer.

use std::{
    borrow::Cow,
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use axum::{
    body::Body,
    extract::Request,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use serde::Deserialize;
use serde_json::{Value, json};
use tower::Service;
use tracing::Instrument;

use super::{
    SUPPORTED_PROTOCOL_VERSIONS,
    observe::{Observed, Operation},
};
use crate::{
    http::{
        is_event_stream,
        limits::{Guarded, JsonRpcIdSlot},
        request_id::RequestId,
    },
    jsonrpc::{JsonRpcError, code},
    telemetry::RequestTrace,
};

const PROTOCOL_VERSION_HEADER: &str = "mcp-protocol-version";
/// JSON-RPC error code for an unsupported protocol version (2026-07-28 `UnsupportedProtocolVersionError`).
const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;
/// Longest rmcp error text worth reading back into a JSON-RPC message.
const MAX_ERROR_TEXT: usize = 4096;

/// What the request is, as far as MCP is concerned.
#[derive(Debug, Clone, Default)]
pub(super) struct McpRequestInfo {
    /// `tools/call`, `initialize`, ...; `None` for a client's JSON-RPC response.
    pub method: Option<String>,
    /// The JSON-RPC id; `None` for notifications.
    pub id: Option<Value>,
    /// `params.name` (tools/call, prompts/get).
    pub name: Option<String>,
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
    params: Option<Params<'a>>,
}

#[derive(Deserialize)]
struct Params<'a> {
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "_meta")]
    meta: Option<Meta<'a>>,
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

/// Whether a tool name is registered (unknown names are labelled `_OTHER` in metrics).
pub(super) type ToolLookup = Arc<dyn Fn(&str) -> bool + Send + Sync>;

#[derive(Clone)]
pub(super) struct Ingress<S> {
    inner: S,
    max_body_bytes: usize,
    tool_known: ToolLookup,
}

impl<S> Ingress<S> {
    pub(super) fn new(inner: S, max_body_bytes: usize, tool_known: ToolLookup) -> Self {
        Self {
            inner,
            max_body_bytes,
            tool_known,
        }
    }
}

impl<S, B> Service<Request> for Ingress<S>
where
    S: Service<Request<Body>, Response = Response<B>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = Bytes, Error = Infallible> + Send + Unpin + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { Ok(this.handle(req).await) })
    }
}

impl<S, B> Ingress<S>
where
    S: Service<Request<Body>, Response = Response<B>, Error = Infallible>,
    B: http_body::Body<Data = Bytes, Error = Infallible> + Send + Unpin + 'static,
{
    async fn handle(mut self, req: Request) -> Response {
        let request_id = req.extensions().get::<RequestId>().cloned();
        let reject = |err: JsonRpcError| -> Response {
            tracing::info!(status = err.status.as_u16(), code = err.code, error = %err.message, "rejected MCP request");
            err.with_request_id(request_id.as_ref().map(RequestId::as_str))
                .into_response()
        };
        let (mut parts, bytes) = match read_body(req, self.max_body_bytes).await {
            Ok(read) => read,
            Err(err) => return reject(err),
        };
        let info = match read_envelope(&bytes, &parts.headers) {
            Ok(info) => info,
            Err(err) => return reject(err),
        };
        if let Some(slot) = parts.extensions.get::<JsonRpcIdSlot>()
            && let Some(id) = &info.id
        {
            let _ = slot.0.set(id.clone());
        }
        if let Err(err) = check_protocol_version(&parts.headers) {
            return reject(err.with_id(info.id.as_ref()));
        }

        let mut operation =
            Operation::start(info, parts.extensions.get::<RequestTrace>(), |tool| {
                (self.tool_known)(tool)
            });
        if let Some(trace) = &operation.trace {
            // For the handlers below: a tool's own spans are children of the MCP span.
            parts.extensions.insert(RequestTrace(trace.clone()));
        }
        let span = operation.span.clone();
        let request = Request::from_parts(parts, Body::from(bytes));
        let response = match self.inner.call(request).instrument(span).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        let failed = response.status().is_client_error() || response.status().is_server_error();
        let response = if failed && !is_json(response.headers()) {
            plain_error_to_jsonrpc(response, operation.jsonrpc_id(), request_id.as_ref()).await
        } else {
            response.map(Body::new)
        };
        let summary = operation.summary();
        let mut response = if is_event_stream(response.headers()) {
            response.map(|body| Body::new(Observed::new(body, operation)))
        } else {
            // A JSON answer is complete already: read its outcome now, so that an internal error
            // can still be a 500 (load balancer metrics, alarms and the availability SLO count
            // 5xx, not JSON-RPC codes inside a 200).
            let (mut parts, body) = response.into_parts();
            let bytes = body
                .collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            operation.inspect_chunk(&bytes, false);
            operation.complete();
            if operation.internal_error() {
                parts.status = StatusCode::INTERNAL_SERVER_ERROR;
            }
            Response::from_parts(parts, Body::new(Guarded::new(Full::new(bytes), operation)))
        };
        response.extensions_mut().insert(summary);
        response
    }
}

/// Reads the whole body, refusing anything but JSON and anything over the limit.
async fn read_body(
    req: Request,
    max_body_bytes: usize,
) -> Result<(http::request::Parts, Bytes), JsonRpcError> {
    if !is_json(req.headers()) {
        return Err(JsonRpcError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code::INVALID_REQUEST,
            "Content-Type must be application/json",
        ));
    }
    let too_large = || {
        JsonRpcError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            code::INVALID_REQUEST,
            format!("request body is larger than {max_body_bytes} bytes"),
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > max_body_bytes as u64) {
        return Err(too_large());
    }
    let (parts, body) = req.into_parts();
    match Limited::new(body, max_body_bytes).collect().await {
        Ok(collected) => Ok((parts, collected.to_bytes())),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(e) => Err(JsonRpcError::new(
            StatusCode::BAD_REQUEST,
            code::INVALID_REQUEST,
            format!("could not read the request body: {e}"),
        )),
    }
}

/// An `MCP-Protocol-Version` header must name a version we speak (400 otherwise, per spec).
fn check_protocol_version(headers: &HeaderMap) -> Result<(), JsonRpcError> {
    let Some(requested) = headers.get(PROTOCOL_VERSION_HEADER) else {
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

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

/// Parses just enough of the body to know what it is, and rejects what no version accepts.
fn read_envelope(bytes: &[u8], headers: &HeaderMap) -> Result<McpRequestInfo, JsonRpcError> {
    let invalid = |message: String| {
        JsonRpcError::new(StatusCode::BAD_REQUEST, code::INVALID_REQUEST, message)
    };
    // serde would happily read a struct from an array by position, so look at the shape first.
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => {}
        Some(b'[') if serde_json::from_slice::<Value>(bytes).is_ok() => {
            return Err(invalid(
                "Invalid Request: JSON-RPC batches are not supported; send one request per POST \
                 (batching was removed in protocol 2025-06-18)"
                    .into(),
            ));
        }
        _ if serde_json::from_slice::<Value>(bytes).is_ok() => {
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
    let meta = envelope.params.as_ref().and_then(|p| p.meta.as_ref());
    let header_version = headers
        .get(PROTOCOL_VERSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Ok(McpRequestInfo {
        method: envelope.method.map(Cow::into_owned),
        id: envelope.id.filter(|id| !id.is_null()),
        name: envelope
            .params
            .as_ref()
            .and_then(|p| p.name.clone())
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

/// rmcp answers some transport errors (406 Accept, 415, 400 header errors) in plain text.
async fn plain_error_to_jsonrpc<B>(
    response: Response<B>,
    id: Option<&Value>,
    request_id: Option<&RequestId>,
) -> Response
where
    B: http_body::Body<Data = Bytes, Error = Infallible>,
{
    let (parts, body) = response.into_parts();
    let text = match Limited::new(body, MAX_ERROR_TEXT).collect().await {
        Ok(collected) => String::from_utf8_lossy(&collected.to_bytes())
            .trim()
            .to_owned(),
        Err(_) => String::new(),
    };
    let status = parts.status;
    let message = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("request rejected")
            .to_owned()
    } else {
        text
    };
    let code = match status {
        StatusCode::NOT_FOUND => code::METHOD_NOT_FOUND,
        s if s.is_server_error() => code::INTERNAL_ERROR,
        _ => code::INVALID_REQUEST,
    };
    tracing::info!(status = status.as_u16(), error = %message, "rejected MCP request");
    let mut mapped = JsonRpcError::new(status, code, message)
        .with_id(id)
        .with_request_id(request_id.map(RequestId::as_str))
        .into_response();
    // Keep headers such as `Allow`, but not the old body's framing.
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            mapped.headers_mut().insert(name.clone(), value.clone());
        }
    }
    mapped
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
        // An id that is itself malformed is not echoed.
        let bad_id = read(r#"{"jsonrpc":"2.0","id":{"x":1},"method":5}"#).unwrap_err();
        assert_eq!(bad_id.id, Value::Null);
    }
}
