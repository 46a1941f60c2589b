//! Fixtures of the 2026-07-28 multi round-trip requests (SEP-2322): instead of sending the client
//! a request (impossible without a session), a tool answers `input_required` with the questions;
//! the client retries the same call with the answers (`inputResponses`) and the `requestState`
//! the server handed out, sealed (`seal`); any replica holding the key can continue the flow.

// Sampling and roots are what MRTR asks clients for, and the 2026-07-28 revision deprecates them
// (SEP-2577); rmcp marks them `#[deprecated]`.
#![allow(deprecated)]

use rmcp::{
    ErrorData, RoleServer,
    handler::server::tool::{InputResponses, RequestState},
    model::{
        CallToolResponse, CallToolResult, ClientCapabilities, ContentBlock, CreateMessageRequest,
        CreateMessageRequestParams, ElicitRequest, ElicitRequestParams, ElicitationSchema,
        GetPromptRequestParams, GetPromptResponse, GetPromptResult, InputRequest, InputRequests,
        InputRequiredResult, InputResponses as Answers, ListRootsRequest, Prompt, PromptMessage,
        Role, SamplingMessage,
    },
    service::RequestContext,
    tool, tool_router,
};
use serde_json::{Map, Value};

use crate::server::Conformance;

/// The prompt that asks for input (served by hand: rmcp's prompt router drops `inputResponses`).
pub const PROMPT: &str = "test_input_required_result_prompt";

pub(crate) fn elicit(message: &str, schema: ElicitationSchema) -> InputRequest {
    InputRequest::Elicitation(ElicitRequest::new(
        ElicitRequestParams::FormElicitationParams {
            meta: None,
            message: message.into(),
            requested_schema: schema,
        },
    ))
}

pub(crate) fn text_field(name: &str) -> ElicitationSchema {
    ElicitationSchema::builder()
        .required_string(name)
        .build()
        .expect("a one-field schema is valid")
}

fn sample(prompt: &str) -> InputRequest {
    InputRequest::CreateMessage(CreateMessageRequest::new(CreateMessageRequestParams::new(
        vec![SamplingMessage::user_text(prompt)],
        50,
    )))
}

fn list_roots() -> InputRequest {
    InputRequest::ListRoots(ListRootsRequest::default())
}

/// The capability the client would need to answer `request`, when it did not declare it.
fn lacking(client: &ClientCapabilities, request: &InputRequest) -> Option<ClientCapabilities> {
    let builder = ClientCapabilities::builder();
    match request {
        InputRequest::Elicitation(_) if client.elicitation.is_none() => {
            Some(builder.enable_elicitation().build())
        }
        InputRequest::CreateMessage(_) if client.sampling.is_none() => {
            Some(builder.enable_sampling().build())
        }
        InputRequest::ListRoots(_) if client.roots.is_none() => {
            Some(builder.enable_roots().build())
        }
        _ => None,
    }
}

/// An `input_required` answer asking `questions`, after checking the client can answer them: a
/// server must not ask for what the client did not declare (-32021 names what is missing).
pub(crate) fn ask(
    context: &RequestContext<RoleServer>,
    questions: Vec<(&str, InputRequest)>,
    state: Option<String>,
) -> Result<InputRequiredResult, ErrorData> {
    let client = context.meta.client_capabilities().unwrap_or_default();
    if let Some(missing) = questions.iter().find_map(|(_, q)| lacking(&client, q)) {
        return Err(ErrorData::missing_required_client_capability(missing));
    }
    let questions: InputRequests = questions
        .into_iter()
        .map(|(key, q)| (key.to_owned(), q))
        .collect();
    Ok(InputRequiredResult::new(Some(questions), state))
}

/// The client's answer to `key`, when it is a result object. Anything else (missing, a bare
/// value) counts as unanswered, so the question is asked again.
pub(crate) fn answer<'a>(
    answers: Option<&'a Answers>,
    key: &str,
) -> Option<&'a Map<String, Value>> {
    answers?.get(key)?.as_object()
}

/// The accepted form field `field` of an elicitation answer.
pub(crate) fn form_field<'a>(answer: &'a Map<String, Value>, field: &str) -> Option<&'a str> {
    if answer.get("action").and_then(Value::as_str) != Some("accept") {
        return None;
    }
    answer.get("content")?.get(field)?.as_str()
}

pub(crate) fn done(text: impl Into<String>) -> CallToolResponse {
    CallToolResult::success(vec![ContentBlock::text(text)]).into()
}

#[tool_router(router = input_required_tools, vis = "pub(crate)")]
impl Conformance {
    #[tool(description = "Asks for the user's name (elicitation), then greets them.")]
    async fn test_input_required_result_elicitation(
        &self,
        context: RequestContext<RoleServer>,
        InputResponses(answers): InputResponses,
    ) -> Result<CallToolResponse, ErrorData> {
        match answer(answers.as_ref(), "user_name").and_then(|a| form_field(a, "name")) {
            Some(name) => Ok(done(format!("Hello, {name}!"))),
            None => {
                let question = elicit("What is your name?", text_field("name"));
                Ok(ask(&context, vec![("user_name", question)], None)?.into())
            }
        }
    }

    #[tool(description = "Asks the client's model a question (sampling) and returns its answer.")]
    async fn test_input_required_result_sampling(
        &self,
        context: RequestContext<RoleServer>,
        InputResponses(answers): InputResponses,
    ) -> Result<CallToolResponse, ErrorData> {
        let reply = answer(answers.as_ref(), "capital")
            .and_then(|a| a.get("content")?.get("text")?.as_str());
        match reply {
            Some(text) => Ok(done(format!("The model said: {text}"))),
            None => {
                let question = sample("What is the capital of France?");
                Ok(ask(&context, vec![("capital", question)], None)?.into())
            }
        }
    }

    #[tool(description = "Asks for the client's roots and lists them.")]
    async fn test_input_required_result_list_roots(
        &self,
        context: RequestContext<RoleServer>,
        InputResponses(answers): InputResponses,
    ) -> Result<CallToolResponse, ErrorData> {
        let roots = answer(answers.as_ref(), "roots").and_then(|a| a.get("roots")?.as_array());
        match roots {
            Some(roots) => {
                let uris: Vec<&str> = roots
                    .iter()
                    .filter_map(|r| r.get("uri")?.as_str())
                    .collect();
                Ok(done(format!("Roots: {}", uris.join(", "))))
            }
            None => Ok(ask(&context, vec![("roots", list_roots())], None)?.into()),
        }
    }

    #[tool(description = "Asks for a confirmation and carries sealed state to the retry.")]
    async fn test_input_required_result_request_state(
        &self,
        context: RequestContext<RoleServer>,
        InputResponses(answers): InputResponses,
        RequestState(state): RequestState,
    ) -> Result<CallToolResponse, ErrorData> {
        self.confirm(
            "test_input_required_result_request_state",
            context,
            answers,
            state,
        )
    }

    #[tool(
        description = "Like the request-state tool; the suite alters the state to see it refused."
    )]
    async fn test_input_required_result_tampered_state(
        &self,
        context: RequestContext<RoleServer>,
        InputResponses(answers): InputResponses,
        RequestState(state): RequestState,
    ) -> Result<CallToolResponse, ErrorData> {
        self.confirm(
            "test_input_required_result_tampered_state",
            context,
            answers,
            state,
        )
    }

    #[tool(description = "Asks three questions at once: elicitation, sampling and roots.")]
    async fn test_input_required_result_multiple_inputs(
        &self,
        context: RequestContext<RoleServer>,
        InputResponses(answers): InputResponses,
        RequestState(state): RequestState,
    ) -> Result<CallToolResponse, ErrorData> {
        const TOOL: &str = "test_input_required_result_multiple_inputs";
        let round = self.seal.round(TOOL, state.as_deref())?;
        let all_answered = ["user_name", "greeting", "roots"]
            .iter()
            .all(|key| answer(answers.as_ref(), key).is_some());
        if round == 1 && all_answered {
            return Ok(done("All three inputs received"));
        }
        let questions = vec![
            (
                "user_name",
                elicit("What is your name?", text_field("name")),
            ),
            ("greeting", sample("Write a one-line greeting")),
            ("roots", list_roots()),
        ];
        Ok(ask(&context, questions, Some(self.seal.seal(TOOL, 1)?))?.into())
    }

    #[tool(description = "Asks two questions one after the other, state sealed between rounds.")]
    async fn test_input_required_result_multi_round(
        &self,
        context: RequestContext<RoleServer>,
        InputResponses(answers): InputResponses,
        RequestState(state): RequestState,
    ) -> Result<CallToolResponse, ErrorData> {
        const TOOL: &str = "test_input_required_result_multi_round";
        let steps = [
            ("step1", "Step 1: What is your name?", "name"),
            ("step2", "Step 2: What is your favorite color?", "color"),
        ];
        // The sealed round is the step last asked. Its answer moves the flow on; a retry
        // without it gets the same question again.
        let asked = usize::from(self.seal.round(TOOL, state.as_deref())?);
        let answered =
            asked
                .checked_sub(1)
                .and_then(|i| steps.get(i))
                .is_some_and(|(key, _, field)| {
                    answer(answers.as_ref(), key)
                        .and_then(|a| form_field(a, field))
                        .is_some()
                });
        let next = if asked == 0 || answered {
            asked + 1
        } else {
            asked
        };
        match steps.get(next - 1) {
            Some((key, message, field)) => {
                let sealed = self.seal.seal(TOOL, next as u8)?;
                let question = elicit(message, text_field(field));
                Ok(ask(&context, vec![(key, question)], Some(sealed))?.into())
            }
            None => Ok(done("Both steps answered")),
        }
    }

    #[tool(description = "Asks only for the inputs the client declared it can provide.")]
    async fn test_input_required_result_capabilities(
        &self,
        context: RequestContext<RoleServer>,
        InputResponses(answers): InputResponses,
    ) -> Result<CallToolResponse, ErrorData> {
        if answers.as_ref().is_some_and(|a| !a.is_empty()) {
            return Ok(done("Answers received"));
        }
        let client = context.meta.client_capabilities().unwrap_or_default();
        let questions: Vec<_> = [
            (
                "user_name",
                elicit("What is your name?", text_field("name")),
            ),
            ("greeting", sample("Write a one-line greeting")),
            ("roots", list_roots()),
        ]
        .into_iter()
        .filter(|(_, q)| lacking(&client, q).is_none())
        .collect();
        if questions.is_empty() {
            return Ok(done("The client declared nothing to ask for"));
        }
        Ok(ask(&context, questions, None)?.into())
    }

    #[tool(description = "Answers with a question (input_required) rather than a result.")]
    async fn test_streaming_elicitation(
        &self,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let question = elicit("Provide a value", text_field("value"));
        Ok(ask(&context, vec![("value", question)], None)?.into())
    }
}

impl Conformance {
    /// Round 0 asks for a confirmation with sealed state; round 1 (valid state) completes.
    fn confirm(
        &self,
        tool: &str,
        context: RequestContext<RoleServer>,
        answers: Option<Answers>,
        state: Option<String>,
    ) -> Result<CallToolResponse, ErrorData> {
        let round = self.seal.round(tool, state.as_deref())?;
        if round == 1 && answer(answers.as_ref(), "confirm").is_some() {
            return Ok(done("Confirmed; requestState verified (state-ok)"));
        }
        let schema = ElicitationSchema::builder()
            .required_bool("ok")
            .build()
            .expect("a one-field schema is valid");
        let question = elicit("Please confirm", schema);
        Ok(ask(
            &context,
            vec![("confirm", question)],
            Some(self.seal.seal(tool, 1)?),
        )?
        .into())
    }
}

/// How [`PROMPT`] is listed.
pub fn prompt() -> Prompt {
    Prompt::new(
        PROMPT,
        Some("A prompt that first asks the user for context (input_required)."),
        None,
    )
}

/// `prompts/get` of [`PROMPT`]: ask for context, then build the prompt from the answer.
pub fn get_prompt(
    request: &GetPromptRequestParams,
    context: &RequestContext<RoleServer>,
) -> Result<GetPromptResponse, ErrorData> {
    let given = answer(request.input_responses.as_ref(), "user_context")
        .and_then(|a| form_field(a, "context"));
    match given {
        Some(text) => Ok(GetPromptResult::new(vec![PromptMessage::new_text(
            Role::User,
            format!("Use this context: {text}"),
        )])
        .into()),
        None => {
            let question = elicit("What context should the prompt use?", text_field("context"));
            Ok(ask(context, vec![("user_context", question)], None)?.into())
        }
    }
}
