//! The conformance handler: the fixture tools and prompts through rmcp's routers (as the product
//! registers its own), plus resources, completion and logging, which the product does not offer.

// `logging/setLevel` and `resources/subscribe` are legacy methods the 0.1.16 suite tests; the
// 2026-07-28 revision deprecates or removes them and rmcp marks them `#[deprecated]`.
#![allow(deprecated)]

use std::borrow::Cow;

use mcp_platform::mcp::SUPPORTED_PROTOCOL_VERSIONS;
use rmcp::{
    ErrorData, RoleServer, ServerHandler,
    handler::server::prompt::PromptContext,
    model::{
        CompleteRequestParams, CompleteResult, CompletionInfo, GetPromptRequestParams,
        GetPromptResponse, Implementation, ListPromptsResult, ListResourceTemplatesResult,
        ListResourcesResult, PaginatedRequestParams, ProtocolVersion, ReadResourceRequestParams,
        ReadResourceResponse, ReadResourceResult, Reference, ServerCapabilities, ServerConfig,
        SetLevelRequestMethod, SetLevelRequestParams, SubscribeRequestParams, SubscriptionFilter,
        UnsubscribeRequestParams,
    },
    service::RequestContext,
    tool_handler,
};

use crate::{
    input_required, resources,
    server::{Conformance, modern},
};

/// Completions offered for `arg1` of `test_prompt_with_arguments`.
const ARG1_VALUES: &[&str] = &["alpha", "beta", "gamma", "paris", "python"];

#[tool_handler(router = self.tools)]
impl ServerHandler for Conformance {
    fn get_info(&self) -> ServerConfig {
        // No `listChanged`: the lists are fixed. `subscribe` is honest in both eras because the
        // watched resource never changes: there is never an update to deliver.
        let capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_prompts()
            .enable_resources()
            .enable_resources_subscribe()
            .enable_completions()
            .enable_logging()
            .build();
        ServerConfig::new(capabilities).with_server_info(Implementation::new(
            "conformance-server",
            env!("CARGO_PKG_VERSION"),
        ))
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        Cow::Borrowed(SUPPORTED_PROTOCOL_VERSIONS)
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        let mut prompts = self.prompts.list_all();
        prompts.push(input_required::prompt());
        Ok(ListPromptsResult::with_all_items(prompts))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        if request.name == input_required::PROMPT {
            return input_required::get_prompt(&request, &context);
        }
        let prompt = PromptContext::new(self, request.name, request.arguments, context);
        self.prompts.get_prompt(prompt).await
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        Ok(ListResourcesResult::with_all_items(resources::list()))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        Ok(ListResourceTemplatesResult::with_all_items(
            resources::templates(),
        ))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let contents = resources::read(&request.uri)?;
        Ok(ReadResourceResult::new(vec![contents]).into())
    }

    /// Legacy subscription: acknowledged for resources that exist (see `get_info` on why that is
    /// truthful). 2026-07-28 clients use `subscriptions/listen` instead (rmcp answers them 404).
    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        resources::read(&request.uri).map(drop)
    }

    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        resources::read(&request.uri).map(drop)
    }

    /// 2026-07-28 subscriptions: every category we advertise (rmcp narrows the request to
    /// those). The default `listen` holds the stream open until the client leaves.
    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        Some(requested.clone())
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        let for_arg1 = matches!(&request.r#ref, Reference::Prompt(p) if p.name == "test_prompt_with_arguments")
            && request.argument.name == "arg1";
        let values = if for_arg1 {
            ARG1_VALUES
                .iter()
                .filter(|v| v.starts_with(request.argument.value.as_str()))
                .map(|v| (*v).to_owned())
                .collect()
        } else {
            Vec::new()
        };
        let info = CompletionInfo::new(values).map_err(|e| ErrorData::internal_error(e, None))?;
        Ok(CompleteResult::new(info))
    }

    /// Legacy clients set a level once per connection; a stateless server cannot keep it for
    /// the next request (which may reach another replica), so it acknowledges and logs per
    /// request instead. 2026-07-28 removed the method for that reason (level in `_meta`).
    async fn set_level(
        &self,
        _request: SetLevelRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        if modern(&context) {
            return Err(ErrorData::method_not_found::<SetLevelRequestMethod>());
        }
        Ok(())
    }
}
