//! The front of the MCP endpoint. It reads the body once (bounded: the stock body-limit layer's
//! 413 would not name the limit), checks the JSON-RPC envelope and the protocol-version header,
//! learns what the request is ([`McpRequestInfo`], for the span, the metrics, the access log and
//! the request context), checks the caller's limit for the tool it calls, charges the memory
//! budget for the tree the body will parse into, and hands the request to rmcp.

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use axum::{
    body::Body,
    extract::Request,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use tower::Service;
use tracing::Instrument;

use super::{
    envelope::{check_protocol_version, read_envelope},
    observe::{Observed, Operation},
    parse_cost::Shape,
};
use crate::{
    context::RequestFacts,
    http::{
        body::Guarded,
        budget::{BodyCharge, Extra},
        is_event_stream, is_json,
        rate_limit::ToolRateLimits,
        refusals,
    },
    jsonrpc::{JsonRpcError, code},
    telemetry::{
        ServerSpans,
        metrics::{HistogramSeries, labels, names, shed},
    },
};

/// Whether a tool name is registered (unknown names are labelled `_OTHER` in metrics).
pub(super) type ToolLookup = Arc<dyn Fn(&str) -> bool + Send + Sync>;

#[derive(Clone)]
pub(super) struct Ingress<S> {
    inner: S,
    max_body_bytes: usize,
    tool_known: ToolLookup,
    /// Per-caller limits of single tools, when the service sets any.
    tool_limits: Option<Arc<ToolRateLimits>>,
    spans: ServerSpans,
    /// `mcp.server.operation.duration`.
    durations: Arc<HistogramSeries>,
}

impl<S> Ingress<S> {
    pub(super) fn new(
        inner: S,
        max_body_bytes: usize,
        tool_known: ToolLookup,
        tool_limits: Option<Arc<ToolRateLimits>>,
        spans: ServerSpans,
    ) -> Self {
        Self {
            inner,
            max_body_bytes,
            tool_known,
            tool_limits,
            spans,
            durations: Arc::new(HistogramSeries::new(names::MCP_OPERATION_DURATION)),
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
        let Some(facts) = RequestFacts::of(req.extensions()).cloned() else {
            // Only reachable by mounting the endpoint outside the platform's stack.
            return JsonRpcError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                code::INTERNAL_ERROR,
                "the MCP endpoint runs inside the platform's stack",
            )
            .into_response();
        };
        let reject = |err: JsonRpcError| -> Response {
            tracing::info!(status = err.status.as_u16(), code = err.code, error = %err.message, "rejected MCP request");
            err.for_request(Some(&facts)).into_response()
        };
        let (parts, bytes) = match read_body(req, self.max_body_bytes).await {
            Ok(read) => read,
            Err(err) => return reject(err),
        };
        let info = match read_envelope(&bytes, &parts.headers) {
            Ok(info) => info,
            Err(err) => return reject(err),
        };
        if let Some(id) = &info.id {
            facts.set_jsonrpc_id(id.clone());
        }
        if let Err(err) = check_protocol_version(&parts.headers) {
            return reject(err);
        }
        // The tool's name is known here in every protocol era (the body's, which a 2026-07-28
        // `Mcp-Name` header must match): its caller's bucket for it, before rmcp parses the body.
        if let Some(limits) = &self.tool_limits
            && info.method.as_deref() == Some("tools/call")
            && let Some(tool) = info.name.as_deref()
            && let Some(refused) = limits.refusal(tool, &parts.headers, &parts.extensions, &facts)
        {
            return refused;
        }
        if let Some(refused) = charge_parsing(&bytes, &parts.extensions, &facts) {
            return refused;
        }

        let durations = self.durations.clone();
        let mut operation = Operation::start(info, &facts, &self.spans, durations, |tool| {
            (self.tool_known)(tool)
        });
        let span = operation.span.clone();
        let request = Request::from_parts(parts, Body::from(bytes));
        let response = match self.inner.call(request).instrument(span).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        let status = response.status();
        if (status.is_client_error() || status.is_server_error()) && !is_json(response.headers()) {
            // rmcp's plain-text transport errors (406 Accept, ...): the edge of the stack turns
            // them into JSON-RPC; the operation records their code now.
            operation.refused(refusals::code_for(status));
            return response.map(Body::new);
        }
        if is_event_stream(response.headers()) {
            return response.map(|body| Body::new(Observed::new(body, operation)));
        }
        // A JSON answer is complete already: read its outcome now, so that an internal error can
        // still be a 500 (load balancer metrics, alarms and the availability SLO count 5xx, not
        // JSON-RPC codes inside a 200).
        let (mut parts, body) = response.into_parts();
        let bytes = body
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        operation.inspect_chunk(&bytes, false);
        operation.complete();
        // rmcp's own JSON-RPC refusals (a 2026-07-28 request without `_meta`, a header that
        // contradicts the body, an unknown method) quote the request id like every other refusal.
        let refusal = parts
            .status
            .is_client_error()
            .then(|| JsonRpcError::from_body(parts.status, &bytes))
            .flatten();
        let bytes = match refusal {
            Some(refusal) => {
                parts.headers.remove(header::CONTENT_LENGTH);
                let body = refusal.with_request_id(Some(facts.request_id())).body();
                serde_json::to_vec(&body).map_or(bytes, Bytes::from)
            }
            None => bytes,
        };
        if operation.internal_error() {
            parts.status = StatusCode::INTERNAL_SERVER_ERROR;
        }
        operation.set_status(parts.status);
        Response::from_parts(parts, Body::new(Guarded::new(Full::new(bytes), operation)))
    }
}

/// Bodies this small are not scanned (the scan would be most of what the budget costs them):
/// their trees take at most ~50 KiB each, so `max_in_flight` (1,024) of them take less than the
/// 64 MiB that many bodies of the 64 KiB the budget never refuses take already.
const UNSCANNED_BODY_BYTES: usize = 1024;

/// Charges the memory budget for what parsing the body will take beyond its bytes (many small
/// values can take ~47 times them): the budget's 503 when that does not fit now, a 413 naming
/// what to change when it never can. `None`: go on (also without a budget).
fn charge_parsing(
    bytes: &[u8],
    extensions: &http::Extensions,
    context: &RequestFacts,
) -> Option<Response> {
    if bytes.len() <= UNSCANNED_BODY_BYTES {
        return None;
    }
    let shape = Shape::of(bytes);
    let extra = shape.parsed_bytes().checked_sub(bytes.len() as u64)?;
    let charge = extensions.get::<BodyCharge>()?;
    match charge.try_add(extra) {
        Extra::Charged => None,
        Extra::NotNow => Some(charge.refusal(Some(context))),
        Extra::Never => {
            metrics::counter!(names::SHED_REQUESTS, labels::REASON => shed::JSON_EXPANSION)
                .increment(1);
            let mib = |b: u64| b.div_ceil(1 << 20);
            Some(
                JsonRpcError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    code::INVALID_REQUEST,
                    format!(
                        "request body is too intricate: its {} values ({} objects) in {} bytes \
                         would take about {} MiB of memory to parse, more than this server's \
                         whole budget; send the same data in fewer values (e.g. one string, or \
                         fewer and larger items)",
                        shape.values,
                        shape.objects,
                        bytes.len(),
                        mib(shape.parsed_bytes()),
                    ),
                )
                .for_request(Some(context))
                .into_response(),
            )
        }
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
