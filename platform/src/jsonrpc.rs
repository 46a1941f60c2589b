//! The JSON-RPC error bodies every layer answers with, so a client always gets a parseable error
//! (a status alone, or a plain-text body, tells an MCP client nothing it can act on).

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::context::RequestFacts;

/// JSON-RPC 2.0 error codes used outside rmcp's own handling.
pub mod code {
    pub const PARSE_ERROR: i64 = -32700;
    pub const INVALID_REQUEST: i64 = -32600;
    pub const METHOD_NOT_FOUND: i64 = -32601;
    pub const INTERNAL_ERROR: i64 = -32603;
    /// Implementation-defined server errors (-32000..-32019 per the 2026-07-28 error policy).
    pub const SERVER_OVERLOADED: i64 = -32000;
    pub const REQUEST_TIMEOUT: i64 = -32001;
}

/// An HTTP error response carrying a JSON-RPC error object.
#[derive(Debug, Clone)]
pub struct JsonRpcError {
    pub status: StatusCode,
    pub code: i64,
    pub message: String,
    /// The JSON-RPC id of the request when it is known (else `null`).
    pub id: Value,
    /// Extra context for the client, e.g. `{"requestId": ...}`.
    pub data: Option<Value>,
}

impl JsonRpcError {
    pub fn new(status: StatusCode, code: i64, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            id: Value::Null,
            data: None,
        }
    }

    pub fn with_id(mut self, id: Option<&Value>) -> Self {
        self.id = id.cloned().unwrap_or(Value::Null);
        self
    }

    /// A JSON-RPC error response another component wrote (rmcp's own refusals), read back so it
    /// can be completed like ours; `None` when the body is not one.
    pub fn from_body(status: StatusCode, body: &[u8]) -> Option<Self> {
        #[derive(Deserialize)]
        struct Response {
            #[serde(default)]
            id: Value,
            error: ErrorObject,
        }
        #[derive(Deserialize)]
        struct ErrorObject {
            code: i64,
            message: String,
            #[serde(default)]
            data: Option<Value>,
        }
        let Response { id, error } = serde_json::from_slice(body).ok()?;
        Some(Self {
            status,
            code: error.code,
            message: error.message,
            id,
            data: error.data,
        })
    }

    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    /// Answers the request `context` describes: its JSON-RPC id (once the body was read) and its
    /// `x-request-id`.
    pub fn for_request(self, context: Option<&RequestFacts>) -> Self {
        let known = match self.id {
            Value::Null => context.and_then(RequestFacts::jsonrpc_id).cloned(),
            ref id => Some(id.clone()),
        };
        self.with_id(known.as_ref())
            .with_request_id(context.map(RequestFacts::request_id))
    }

    /// Adds the `x-request-id` so a caller can quote it when reporting a problem.
    pub fn with_request_id(mut self, request_id: Option<&str>) -> Self {
        match &mut self.data {
            Some(Value::Object(data)) => {
                data.insert("requestId".into(), json!(request_id));
            }
            _ => self.data = Some(json!({ "requestId": request_id })),
        }
        self
    }

    pub fn body(&self) -> Value {
        let mut error = json!({ "code": self.code, "message": self.message });
        if let Some(data) = &self.data {
            error["data"] = data.clone();
        }
        json!({ "jsonrpc": "2.0", "id": self.id, "error": error })
    }
}

impl IntoResponse for JsonRpcError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.body()).unwrap_or_default();
        let mut response = (self.status, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    }
}
