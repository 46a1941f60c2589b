//! The MCP protocol engine: rmcp's Streamable HTTP service, configured stateless, behind an
//! ingress that reads the JSON-RPC envelope once (for validation, errors and telemetry).
//!
//! [`endpoint`] serves any rmcp [`ServerHandler`]; [`McpServer`] is the handler most services
//! want: a set of tools (and optionally prompts) over shared state.

mod caller;
mod envelope;
mod ingress;
mod observe;
mod parse_cost;
mod schema;
mod server;
mod validate;

use std::{convert::Infallible, sync::Arc};

use axum::{extract::Request, response::Response};
use rmcp::{
    ServerHandler,
    model::ProtocolVersion,
    transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService, session::never::NeverSessionManager,
    },
};
use tokio_util::sync::CancellationToken;
use tower::Service;

pub use caller::Caller;
pub use server::McpServer;
pub(crate) use server::request_facts;

/// The envelope reader, for the fuzz targets in `platform/fuzz/`; not an API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    pub use super::envelope::{McpRequestInfo, check_protocol_version, read_envelope};
}

use crate::{http::rate_limit::ToolRateLimits, telemetry::ServerSpans};

/// The path of the MCP endpoint.
pub const MCP_PATH: &str = "/mcp";
/// The request headers MCP clients send (for CORS).
pub const REQUEST_HEADERS: &[&str] = &[
    "mcp-protocol-version",
    "mcp-method",
    "mcp-name",
    "traceparent",
    "tracestate",
];

/// The protocol versions this server speaks (2024-11-05 is deliberately not among them).
pub const SUPPORTED_PROTOCOL_VERSIONS: &[ProtocolVersion] = &[
    ProtocolVersion::V_2025_03_26,
    ProtocolVersion::V_2025_06_18,
    ProtocolVersion::V_2025_11_25,
    ProtocolVersion::V_2026_07_28,
];

/// Options of the MCP endpoint that come from configuration.
#[derive(Debug, Clone)]
pub struct EndpointOptions {
    pub max_body_bytes: usize,
    /// Cancelled once the drain is over: ends any stream still open.
    pub shutdown: CancellationToken,
    pub spans: ServerSpans,
    /// Per-caller limits of single tools (`http.tool_rate_limits`), checked once the tool's name
    /// is read; `None`: none.
    pub tool_rate_limits: Option<Arc<ToolRateLimits>>,
}

/// The `POST /mcp` service for `handler`, shared (not rebuilt) across requests.
pub fn endpoint<H>(
    handler: Arc<H>,
    options: EndpointOptions,
) -> impl Service<Request, Response = Response, Error = Infallible, Future: Send + 'static>
+ Clone
+ Send
+ Sync
+ 'static
where
    H: ServerHandler + Send + Sync + 'static,
{
    let config = StreamableHttpServerConfig::default()
        // Stateless for every protocol era: no session ids, any replica can serve any request.
        .with_legacy_session_mode(false)
        // JSON unless a tool streams notifications before its result.
        .with_json_response(true)
        // Host/Origin are checked by the HTTP layer (with JSON-RPC error bodies), and the body
        // size by the ingress.
        .disable_allowed_hosts()
        .with_max_request_body_bytes(options.max_body_bytes)
        .with_cancellation_token(options.shutdown.child_token());
    let lookup = handler.clone();
    let tool_known: ingress::ToolLookup = Arc::new(move |name| lookup.get_tool(name).is_some());
    let rmcp = StreamableHttpService::new(
        move || Ok(handler.clone()),
        Arc::new(NeverSessionManager::default()),
        config,
    );
    ingress::Ingress::new(
        rmcp,
        options.max_body_bytes,
        tool_known,
        options.tool_rate_limits,
        options.spans,
    )
}
