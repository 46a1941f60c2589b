//! [`McpServer`]: an rmcp handler serving a tool router (and optionally a prompt router) over
//! shared state `S`. The routers are built once and shared, never rebuilt per request.

use std::{borrow::Cow, panic::AssertUnwindSafe, sync::Arc};

use futures::FutureExt as _;
use tokio_util::sync::CancellationToken;

use rmcp::{
    ErrorData, RoleServer, ServerHandler,
    handler::server::{
        router::{prompt::PromptRouter, tool::ToolRouter},
        tool::ToolCallContext,
    },
    model::{
        CacheScope, CallToolRequestParams, CallToolResponse, GetPromptRequestParams,
        GetPromptResponse, Implementation, ListPromptsResult, ListToolsResult,
        PaginatedRequestParams, ProtocolVersion, ResultType, ServerCapabilities, ServerConfig,
        Tool,
    },
    service::RequestContext,
};

use super::{SUPPORTED_PROTOCOL_VERSIONS, schema, validate};
use crate::{context::RequestFacts, http::refusals::panic_message, identity::Service};

/// How long clients may cache `tools/list` and `prompts/list` (2026-07-28 `ttlMs`): the lists only
/// change with a deployment.
const LIST_TTL_MS: u64 = 60_000;

pub struct McpServer<S> {
    state: S,
    tools: ToolRouter<S>,
    input_schemas: validate::InputSchemas,
    prompts: PromptRouter<S>,
    info: ServerConfig,
}

impl<S: Send + Sync + 'static> McpServer<S> {
    /// `service` names the server to clients (`serverInfo`); `tools` is served over `state`.
    pub fn new(service: &Service, state: S, mut tools: ToolRouter<S>) -> Self {
        for route in tools.map.values_mut() {
            let tool = &mut route.attr;
            schema::for_model_providers(Arc::make_mut(&mut tool.input_schema));
            if let Some(output) = tool.output_schema.as_mut() {
                schema::for_model_providers(Arc::make_mut(output));
            }
        }
        let mut server = Self {
            state,
            input_schemas: validate::InputSchemas::compile(&tools),
            tools,
            prompts: PromptRouter::new(),
            info: ServerConfig::default(),
        };
        server.info = server.build_info(Implementation::new(service.name, service.version), None);
        server
    }

    pub fn with_prompts(mut self, prompts: PromptRouter<S>) -> Self {
        self.prompts = prompts;
        self.info = self.build_info(
            self.info.server_info.clone(),
            self.info.instructions.clone(),
        );
        self
    }

    pub fn with_instructions(mut self, instructions: impl Into<String>) -> Self {
        self.info = self.build_info(self.info.server_info.clone(), Some(instructions.into()));
        self
    }

    fn build_info(
        &self,
        implementation: Implementation,
        instructions: Option<String>,
    ) -> ServerConfig {
        let capabilities = if self.prompts.list_all().is_empty() {
            ServerCapabilities::builder().enable_tools().build()
        } else {
            ServerCapabilities::builder()
                .enable_tools()
                .enable_prompts()
                .build()
        };
        let info = ServerConfig::new(capabilities).with_server_info(implementation);
        match instructions {
            Some(text) => info.with_instructions(text),
            None => info,
        }
    }
}

/// The facts of the HTTP request carrying this one.
pub(crate) fn request_facts(context: &RequestContext<RoleServer>) -> Option<&RequestFacts> {
    context
        .extensions
        .get::<http::request::Parts>()
        .and_then(|parts| RequestFacts::of(&parts.extensions))
}

/// Runs a tool's or a prompt's (`kind` `name`) future. rmcp runs it in a task of its own, in the
/// request's spans (it spawns it in the current span), so nothing is needed here for its log
/// lines and spans. The future is dropped once the request is cancelled (`cancelled`: the
/// deadline passed, the client went away), still in those spans: rmcp only signals it. A panic
/// becomes an internal error (in rmcp's task a panic would leave the request hanging until its
/// deadline). A result `succeeded` says is a success is recorded as the request's outcome here,
/// so the endpoint need not parse the response to learn it; errors it still reads from the
/// response.
async fn run_guarded<T>(
    kind: &str,
    name: &str,
    request: Option<RequestFacts>,
    cancelled: CancellationToken,
    succeeded: impl FnOnce(&T) -> bool,
    call: impl Future<Output = Result<T, ErrorData>>,
) -> Result<T, ErrorData> {
    let guarded = AssertUnwindSafe(call).catch_unwind();
    let outcome = tokio::select! {
        outcome = guarded => outcome,
        () = cancelled.cancelled() => {
            return Err(ErrorData::internal_error(format!("{kind} {name} cancelled"), None));
        }
    };
    let outcome = outcome.unwrap_or_else(|panic| {
        let panic = panic_message(&*panic);
        tracing::error!(kind, name, panic, "{kind} panicked");
        Err(ErrorData::internal_error(
            format!("internal error in {kind} {name}"),
            None,
        ))
    });
    if let (Some(request), Ok(result)) = (&request, &outcome)
        && succeeded(result)
    {
        request.set_handler_succeeded();
    }
    outcome
}

/// Cache hints exist from 2026-07-28 on; older clients must not see them.
fn cache_hints(context: &RequestContext<RoleServer>) -> (Option<u64>, Option<CacheScope>) {
    let modern = context
        .protocol_version()
        .is_some_and(|v| v >= ProtocolVersion::V_2026_07_28);
    if modern {
        (Some(LIST_TTL_MS), Some(CacheScope::Public))
    } else {
        (None, None)
    }
}

impl<S: Send + Sync + 'static> ServerHandler for McpServer<S> {
    fn get_info(&self) -> ServerConfig {
        self.info.clone()
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        Cow::Borrowed(SUPPORTED_PROTOCOL_VERSIONS)
    }

    async fn call_tool(
        &self,
        mut request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let invalid = self.input_schemas.check(&mut request).err();
        let tool = request.name.clone();
        let facts = request_facts(&context).cloned();
        let cancelled = context.ct.clone();
        let call = self
            .tools
            .call(ToolCallContext::new(&self.state, request, context));
        let call = validate::unless_invalid(invalid, call);
        // Other kinds of answer (input required, a task) are rare: the endpoint reads them.
        let succeeded = |response: &CallToolResponse| {
            let CallToolResponse::Complete(result) = response else {
                return false;
            };
            result.is_error != Some(true)
        };
        run_guarded("tool", &tool, facts, cancelled, succeeded, call).await
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let (ttl_ms, cache_scope) = cache_hints(&context);
        Ok(ListToolsResult {
            result_type: Some(ResultType::COMPLETE),
            tools: self.tools.list_all(),
            meta: None,
            next_cursor: None,
            ttl_ms,
            cache_scope,
        })
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.tools.get(name).cloned()
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        let (ttl_ms, cache_scope) = cache_hints(&context);
        Ok(ListPromptsResult {
            result_type: Some(ResultType::COMPLETE),
            prompts: self.prompts.list_all(),
            meta: None,
            next_cursor: None,
            ttl_ms,
            cache_scope,
        })
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        let facts = request_facts(&context).cloned();
        let cancelled = context.ct.clone();
        let ctx = rmcp::handler::server::prompt::PromptContext::new(
            &self.state,
            request.name,
            request.arguments,
            context,
        );
        let prompt = ctx.name.clone();
        let prompt_call = self.prompts.get_prompt(ctx);
        run_guarded("prompt", &prompt, facts, cancelled, |_| true, prompt_call).await
    }
}

#[cfg(test)]
mod tests {
    use rmcp::{model::GetPromptResult, prompt, prompt_router};

    use super::*;

    #[derive(Clone)]
    struct Greeter;

    #[prompt_router]
    impl Greeter {
        #[prompt(description = "Says hello.")]
        async fn hello(&self) -> GetPromptResult {
            GetPromptResult::new(vec![])
        }
    }

    #[test]
    fn capabilities_follow_what_is_registered() {
        let service = Service {
            name: "t",
            version: "1",
        };
        let tools_only = McpServer::new(&service, Greeter, ToolRouter::new());
        assert!(tools_only.get_info().capabilities.tools.is_some());
        assert!(tools_only.get_info().capabilities.prompts.is_none());

        let with_prompts = McpServer::new(&service, Greeter, ToolRouter::new())
            .with_prompts(Greeter::prompt_router())
            .with_instructions("Use hello.");
        let info = with_prompts.get_info();
        assert!(info.capabilities.prompts.is_some());
        assert_eq!(info.instructions.as_deref(), Some("Use hello."));
        assert_eq!(info.server_info.name, "t");
    }
}
