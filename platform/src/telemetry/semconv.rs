//! OpenTelemetry attribute names we use. Ours, not the semconv crate's: its MCP and GenAI
//! constants are deprecated there (they moved to the GenAI conventions repository).

use std::borrow::Cow;

use crate::context::Outcome;

pub const HTTP_REQUEST_METHOD: &str = "http.request.method";
pub const SERVER_ADDRESS: &str = "server.address";
pub const URL_FULL: &str = "url.full";
pub const HTTP_ROUTE: &str = "http.route";
pub const HTTP_RESPONSE_STATUS_CODE: &str = "http.response.status_code";
pub const URL_PATH: &str = "url.path";
pub const URL_SCHEME: &str = "url.scheme";
pub const CLIENT_ADDRESS: &str = "client.address";
pub const USER_AGENT_ORIGINAL: &str = "user_agent.original";
pub const NETWORK_PROTOCOL_VERSION: &str = "network.protocol.version";
pub const ERROR_TYPE: &str = "error.type";
pub const ENDUSER_ID: &str = "enduser.id";
/// Not a convention: the request id, to find a request's spans from its log lines.
pub const REQUEST_ID: &str = "request_id";

pub const MCP_METHOD_NAME: &str = "mcp.method.name";
pub const MCP_PROTOCOL_VERSION: &str = "mcp.protocol.version";
pub const JSONRPC_REQUEST_ID: &str = "jsonrpc.request.id";
pub const RPC_RESPONSE_STATUS_CODE: &str = "rpc.response.status_code";
pub const GEN_AI_TOOL_NAME: &str = "gen_ai.tool.name";
pub const GEN_AI_PROMPT_NAME: &str = "gen_ai.prompt.name";
pub const GEN_AI_OPERATION_NAME: &str = "gen_ai.operation.name";
/// `gen_ai.operation.name` of a tool call.
pub const EXECUTE_TOOL: &str = "execute_tool";
/// `error.type` of a tool result with `isError: true`.
pub const TOOL_ERROR: &str = "tool_error";
/// `error.type` of a request that ended before its response was complete: the client went away,
/// the request deadline passed, or the shutdown grace period ended.
pub const CANCELLED: &str = "cancelled";
/// Stands in for a value outside the known set, to keep label sets bounded.
pub const OTHER: &str = "_OTHER";

pub const SERVICE_NAME: &str = "service.name";
pub const SERVICE_VERSION: &str = "service.version";
pub const SERVICE_INSTANCE_ID: &str = "service.instance.id";
pub const DEPLOYMENT_ENVIRONMENT_NAME: &str = "deployment.environment.name";
pub const CLOUD_PROVIDER: &str = "cloud.provider";
pub const CLOUD_PLATFORM: &str = "cloud.platform";
pub const CLOUD_AVAILABILITY_ZONE: &str = "cloud.availability_zone";
pub const AWS_ECS_TASK_ARN: &str = "aws.ecs.task.arn";
pub const AWS_ECS_CLUSTER_ARN: &str = "aws.ecs.cluster.arn";
pub const AWS_ECS_TASK_FAMILY: &str = "aws.ecs.task.family";
pub const AWS_ECS_TASK_REVISION: &str = "aws.ecs.task.revision";
pub const AWS_ECS_LAUNCHTYPE: &str = "aws.ecs.launchtype";
pub const AWS_LOG_GROUP_NAMES: &str = "aws.log.group.names";
pub const AWS_LOG_STREAM_NAMES: &str = "aws.log.stream.names";

/// The `error.type` of a JSON-RPC request's outcome: `None` for a success.
pub fn outcome_error_type(outcome: Outcome) -> Option<Cow<'static, str>> {
    match outcome {
        Outcome::Success => None,
        Outcome::ToolError => Some(Cow::Borrowed(TOOL_ERROR)),
        Outcome::Error(code) => Some(Cow::Owned(code.to_string())),
    }
}

/// `http.request.method`: methods outside the registered set become `_OTHER` (bounded values).
pub fn known_method(method: &http::Method) -> &'static str {
    use http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => OTHER,
    }
}
