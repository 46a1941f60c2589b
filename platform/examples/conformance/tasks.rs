//! Fixtures of the Tasks extension scenarios (`io.modelcontextprotocol/tasks`, SEP-2663): tools
//! marked to run as tasks the way a service's tools are (`runs_as_task`, `requires_task`, `Work`),
//! served through the platform's `TaskServer` and its in-process store.

use std::time::Duration;

use mcp_platform::tasks::{Work, requires_task, runs_as_task};
use rmcp::{
    ErrorData, RoleServer,
    handler::server::{tool::InputResponses, wrapper::Parameters},
    model::{CallToolResponse, CallToolResult, ContentBlock, ElicitationSchema, InputRequest},
    service::RequestContext,
    tool, tool_router,
};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use crate::{
    input_required::{answer, ask, done, elicit, form_field, text_field},
    server::Conformance,
};

/// How long the jobs that always end the same way work before they do.
const JOB_TIME: Duration = Duration::from_secs(1);

#[derive(Debug, Deserialize, JsonSchema)]
struct GreetArgs {
    name: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
struct ComputeArgs {
    /// How long the computation takes; 0 answers at once.
    seconds: u64,
    /// A name for the run, echoed in the result.
    #[serde(default)]
    label: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
struct DeleteArgs {
    filename: String,
}

/// A yes/no question as an elicitation.
fn confirm(message: String) -> InputRequest {
    let schema = ElicitationSchema::builder()
        .required_bool("confirm")
        .build()
        .expect("a one-field schema is valid");
    elicit(&message, schema)
}

/// Whether an elicitation answer accepted with `confirm: true`.
fn confirmed(answer: &Value) -> bool {
    answer.get("action").and_then(Value::as_str) == Some("accept")
        && answer.pointer("/content/confirm").and_then(Value::as_bool) == Some(true)
}

fn text(text: impl Into<String>) -> CallToolResult {
    CallToolResult::success(vec![ContentBlock::text(text)])
}

#[tool_router(router = task_tools, vis = "pub(crate)")]
impl Conformance {
    #[tool(description = "Greets someone at once (a plain tool).")]
    async fn greet(&self, Parameters(args): Parameters<GreetArgs>) -> CallToolResult {
        text(format!("Hello, {}!", args.name))
    }

    #[tool(
        description = "Computes for `seconds` seconds, as a task for clients that speak tasks.",
        meta = runs_as_task()
    )]
    async fn slow_compute(
        &self,
        Parameters(args): Parameters<ComputeArgs>,
        work: Work,
    ) -> CallToolResult {
        // A cancelled task's work is dropped by the platform; this only sees the end.
        if args.seconds > 0 && !work.sleep(Duration::from_secs(args.seconds)).await {
            return CallToolResult::error(vec![ContentBlock::text("computation stopped")]);
        }
        let label = args.label.unwrap_or_default();
        text(format!("computed {label:?} in {} s", args.seconds))
    }

    #[tool(
        description = "Works a second, then reports a tool error; only runs as a task.",
        meta = requires_task()
    )]
    async fn failing_job(&self, work: Work) -> CallToolResult {
        work.sleep(JOB_TIME).await;
        CallToolResult::error(vec![ContentBlock::text("the job failed")])
    }

    #[tool(
        description = "Works a second, then fails unexpectedly (a panic): a protocol error.",
        meta = runs_as_task()
    )]
    async fn protocol_error_job(&self, work: Work) -> CallToolResult {
        if work.sleep(JOB_TIME).await {
            panic!("protocol_error_job fails by design");
        }
        CallToolResult::error(vec![ContentBlock::text("job stopped")])
    }

    #[tool(
        description = "Asks the user to confirm deleting a file, then answers.",
        meta = runs_as_task()
    )]
    async fn confirm_delete(
        &self,
        Parameters(args): Parameters<DeleteArgs>,
        work: Work,
    ) -> Result<CallToolResult, ErrorData> {
        let question = confirm(format!("Delete {}?", args.filename));
        let answer = work.request_input("confirm", question).await?;
        Ok(if confirmed(&answer) {
            text(format!("deleted {}", args.filename))
        } else {
            text(format!("kept {}", args.filename))
        })
    }

    #[tool(
        description = "Asks two questions at once and answers with both names.",
        meta = runs_as_task()
    )]
    async fn multi_input(&self, work: Work) -> Result<CallToolResult, ErrorData> {
        let (first, second) = tokio::join!(
            work.request_input("first", elicit("First name?", text_field("name"))),
            work.request_input("second", elicit("Second name?", text_field("name"))),
        );
        let name = |answer: &Value| {
            answer
                .as_object()
                .and_then(|a| form_field(a, "name"))
                .unwrap_or("nobody")
                .to_owned()
        };
        Ok(text(format!(
            "Got {} and {}",
            name(&first?),
            name(&second?)
        )))
    }

    #[tool(
        description = "Asks the user's name (input_required), then greets them as a task.",
        meta = requires_task()
    )]
    async fn test_tool_with_task(
        &self,
        context: RequestContext<RoleServer>,
        InputResponses(answers): InputResponses,
        work: Work,
    ) -> Result<CallToolResponse, ErrorData> {
        let Some(name) = answer(answers.as_ref(), "user_name").and_then(|a| form_field(a, "name"))
        else {
            let question = elicit("What is your name?", text_field("name"));
            return Ok(ask(&context, vec![("user_name", question)], None)?.into());
        };
        // The first wait: from here on the call is a task.
        work.progress(0.0, None, format!("greeting {name}")).await;
        Ok(done(format!("Hello, {name}!")))
    }
}
