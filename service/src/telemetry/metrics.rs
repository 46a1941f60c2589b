//! Metric names (OpenTelemetry names; the Prometheus exporter renders them as
//! `http_server_request_duration_seconds`, `http_server_shed_requests_total`, ...).

pub mod names {
    pub const HTTP_REQUEST_DURATION: &str = "http.server.request.duration";
    pub const HTTP_ACTIVE_REQUESTS: &str = "http.server.active_requests";
    pub const SHED_REQUESTS: &str = "http.server.shed_requests";
    pub const REQUEST_TIMEOUTS: &str = "http.server.request_timeouts";
    pub const MCP_OPERATION_DURATION: &str = "mcp.server.operation.duration";
    pub const SPANS_DROPPED: &str = "otel.spans_dropped";
    pub const BUILD_INFO: &str = "mcp_server.build_info";
}
