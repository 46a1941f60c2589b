//! The JSON-RPC edge of the stack ([`JsonRpcEdge`], around every route): any refusal that is not
//! JSON yet (a stock layer's plain 413 or 500, rmcp's plain-text transport errors, an unknown
//! route) becomes a JSON-RPC error body with the request's ids, so every client gets an answer it
//! can parse and quote. The layers that know their JSON-RPC error code answer in JSON-RPC
//! themselves and pass through untouched.

use std::{any::Any, convert::Infallible, future::Future, sync::Arc};

use axum::{
    body::Body,
    extract::Request,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use http_body_util::{BodyExt as _, Limited};

use super::{Around, Handled};

use crate::{
    context::RequestFacts,
    jsonrpc::{JsonRpcError, code},
};

/// Puts every refusal in JSON-RPC (an [`Around`] layer).
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonRpcEdge;

impl Around for JsonRpcEdge {
    fn around<F>(self: &Arc<Self>, req: Request, next: impl FnOnce(Request) -> F) -> Handled
    where
        F: Future<Output = Result<Response, Infallible>> + Send + 'static,
    {
        let facts = RequestFacts::of(req.extensions()).cloned();
        let handled = next(req);
        Box::pin(async move { Ok(as_json_rpc(handled.await?, facts.as_ref()).await) })
    }
}

/// Longest plain-text error worth reading back into a JSON-RPC message.
const MAX_ERROR_TEXT: usize = 4096;

/// `response` as a JSON-RPC error when it is a refusal that is not JSON yet; else unchanged.
pub async fn as_json_rpc(response: Response, context: Option<&RequestFacts>) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || super::is_json(response.headers())
    {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = match Limited::new(body, MAX_ERROR_TEXT).collect().await {
        Ok(collected) => String::from_utf8_lossy(&collected.to_bytes())
            .trim()
            .to_owned(),
        Err(_) => String::new(),
    };
    let message = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("request rejected")
            .to_owned()
    } else {
        text
    };
    let code = code_for(status);
    tracing::info!(status = status.as_u16(), error = %message, "rejected request");
    let mut mapped = JsonRpcError::new(status, code, message)
        .for_request(context)
        .into_response();
    // Keep headers such as `Allow`, but not the old body's framing.
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            mapped.headers_mut().append(name.clone(), value.clone());
        }
    }
    mapped
}

/// The JSON-RPC error code of a refusal that has only an HTTP status.
pub fn code_for(status: StatusCode) -> i64 {
    match status {
        StatusCode::NOT_FOUND => code::METHOD_NOT_FOUND,
        StatusCode::SERVICE_UNAVAILABLE => code::SERVER_OVERLOADED,
        StatusCode::GATEWAY_TIMEOUT => code::REQUEST_TIMEOUT,
        s if s.is_server_error() => code::INTERNAL_ERROR,
        _ => code::INVALID_REQUEST,
    }
}

/// The text of a caught panic.
pub fn panic_message(panic: &(dyn Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("<non-string panic>")
}

/// tower-http's catch-panic answer: logged, then a plain 500 the edge turns into JSON-RPC.
pub fn panicked(panic: Box<dyn Any + Send + 'static>) -> Response<Body> {
    tracing::error!(panic = panic_message(&*panic), "handler panicked");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal error while handling the request",
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use tower::{Layer as _, ServiceExt as _, service_fn};

    use super::*;

    #[tokio::test]
    async fn the_edge_turns_a_plain_refusal_into_json_rpc_and_passes_the_rest() {
        let inner = service_fn(|req: Request| async move {
            Ok::<_, Infallible>(match req.uri().path() {
                "/plain" => (StatusCode::PAYLOAD_TOO_LARGE, "too big").into_response(),
                _ => (StatusCode::OK, "fine").into_response(),
            })
        });
        let service = super::super::AroundLayer::new(JsonRpcEdge).layer(inner);
        let call = |path: &str| {
            service
                .clone()
                .oneshot(Request::post(path).body(Body::empty()).unwrap())
        };
        let refused = call("/plain").await.unwrap();
        assert_eq!(refused.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert!(super::super::is_json(refused.headers()));
        let body = axum::body::to_bytes(refused.into_body(), 1024)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["code"], code::INVALID_REQUEST);
        assert_eq!(body["error"]["message"], "too big");

        let passed = call("/ok").await.unwrap();
        let body = axum::body::to_bytes(passed.into_body(), 1024)
            .await
            .unwrap();
        assert_eq!(&body[..], b"fine");
    }
}
