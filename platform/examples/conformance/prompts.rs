//! Fixture prompts (the input-required prompt is in `input_required`: the prompt router cannot
//! see `inputResponses`).

use rmcp::{
    handler::server::wrapper::Parameters,
    model::{ContentBlock, PromptMessage, ResourceContents, Role},
    prompt, prompt_router,
};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::server::{Conformance, PNG_BASE64};

#[derive(Debug, Deserialize, JsonSchema)]
struct TwoArgs {
    /// First value to put into the prompt (completions are offered for it).
    arg1: String,
    /// Second value to put into the prompt.
    arg2: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct ResourceArg {
    /// URI of the resource to embed.
    resource_uri: String,
}

#[prompt_router(router = "prompts", vis = "pub(crate)")]
impl Conformance {
    #[prompt(description = "A prompt without arguments.")]
    async fn test_simple_prompt(&self) -> Vec<PromptMessage> {
        vec![PromptMessage::new_text(
            Role::User,
            "This is a simple prompt for testing.",
        )]
    }

    #[prompt(description = "A prompt that substitutes two arguments.")]
    async fn test_prompt_with_arguments(
        &self,
        Parameters(args): Parameters<TwoArgs>,
    ) -> Vec<PromptMessage> {
        vec![PromptMessage::new_text(
            Role::User,
            format!(
                "Prompt with arguments: arg1='{}', arg2='{}'",
                args.arg1, args.arg2
            ),
        )]
    }

    #[prompt(description = "A prompt that embeds the resource it is given.")]
    async fn test_prompt_with_embedded_resource(
        &self,
        Parameters(args): Parameters<ResourceArg>,
    ) -> Vec<PromptMessage> {
        vec![
            PromptMessage::new(
                Role::User,
                ContentBlock::resource(ResourceContents::text(
                    "Embedded resource content for testing.",
                    args.resource_uri,
                )),
            ),
            PromptMessage::new_text(Role::User, "Please process the embedded resource above."),
        ]
    }

    #[prompt(description = "A prompt that carries an image.")]
    async fn test_prompt_with_image(&self) -> Vec<PromptMessage> {
        vec![
            PromptMessage::new(Role::User, ContentBlock::image(PNG_BASE64, "image/png")),
            PromptMessage::new_text(Role::User, "Please analyze the image above."),
        ]
    }
}
