//! `echo`: an example of a typed input schema with validation. Arguments that break the schema's
//! rules come back as a tool error the model can read and correct (not a protocol error).

use rmcp::{
    handler::server::wrapper::Parameters,
    model::{CallToolResult, ContentBlock},
    tool, tool_router,
};
use schemars::JsonSchema;
use serde::Deserialize;

use super::Toolbox;

const MAX_TEXT_CHARS: usize = 4096;
const MAX_REPEAT: u32 = 10;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EchoArgs {
    /// The text to echo back (1 to 4096 characters).
    #[schemars(length(min = 1, max = 4096))]
    pub text: String,
    /// How many times to repeat the text, joined by spaces (1 to 10; default 1).
    #[serde(default)]
    #[schemars(range(min = 1, max = 10))]
    pub repeat: Option<u32>,
    /// Return the text in upper case.
    #[serde(default)]
    pub uppercase: bool,
}

impl EchoArgs {
    /// The rules the schema states, enforced (a JSON Schema is advice to the client, not a check).
    fn validate(&self) -> Result<(), String> {
        let chars = self.text.chars().count();
        if !(1..=MAX_TEXT_CHARS).contains(&chars) {
            return Err(format!(
                "`text` must be 1 to {MAX_TEXT_CHARS} characters long (got {chars})"
            ));
        }
        if let Some(n) = self.repeat
            && !(1..=MAX_REPEAT).contains(&n)
        {
            return Err(format!(
                "`repeat` must be between 1 and {MAX_REPEAT} (got {n})"
            ));
        }
        Ok(())
    }
}

#[tool_router(router = echo_router, vis = "pub(super)")]
impl Toolbox {
    #[tool(
        description = "Echo text back, optionally repeated and upper-cased.",
        annotations(
            title = "Echo",
            read_only_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn echo(&self, Parameters(args): Parameters<EchoArgs>) -> CallToolResult {
        if let Err(problem) = args.validate() {
            // Log lines from a tool carry the request's ids without the tool doing anything.
            tracing::info!(%problem, "echo: invalid arguments");
            return CallToolResult::error(vec![ContentBlock::text(format!(
                "invalid arguments: {problem}"
            ))]);
        }
        let text = if args.uppercase {
            args.text.to_uppercase()
        } else {
            args.text
        };
        let repeated = vec![text; args.repeat.unwrap_or(1) as usize].join(" ");
        CallToolResult::success(vec![ContentBlock::text(repeated)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str, repeat: Option<u32>) -> EchoArgs {
        EchoArgs {
            text: text.into(),
            repeat,
            uppercase: false,
        }
    }

    #[test]
    fn validation_states_the_rule_and_the_value() {
        assert!(args("hi", Some(3)).validate().is_ok());
        assert!(args("", None).validate().unwrap_err().contains("got 0"));
        assert!(
            args(&"x".repeat(4097), None)
                .validate()
                .unwrap_err()
                .contains("4096")
        );
        assert!(
            args("hi", Some(11))
                .validate()
                .unwrap_err()
                .contains("got 11")
        );
        assert!(
            args("hi", Some(0))
                .validate()
                .unwrap_err()
                .contains("between 1 and 10")
        );
    }
}
