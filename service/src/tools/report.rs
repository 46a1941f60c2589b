//! `report`: an example of a long-running tool. It "builds" a report for a configurable number
//! of seconds, reporting progress every second, and, when asked to, asks the user whether to
//! publish it before finishing. Marked with `runs_as_task()`, it runs as an MCP task when the
//! client speaks the Tasks extension: the call returns a task at once, the work goes on in the
//! background, and any replica answers `tasks/get`, `tasks/update` and `tasks/cancel`. Other
//! clients get a plain call (progress as `notifications/progress`, when asked for).

use std::time::Duration;

use mcp_platform::tasks::{Work, runs_as_task};
use rmcp::{
    handler::server::{tool::schema_for_output, wrapper::Parameters},
    model::{
        CallToolResult, ContentBlock, ElicitRequest, ElicitRequestParams, ElicitResult,
        ElicitationAction, ElicitationSchema, InputRequest,
    },
    tool, tool_router,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Toolbox;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportArgs {
    /// What the report is about, e.g. "Q3 sales".
    #[schemars(length(min = 1, max = 200))]
    pub title: String,
    /// How long building it takes, in seconds.
    #[schemars(range(min = 0, max = 3600))]
    #[serde(default = "default_seconds")]
    pub seconds: u64,
    /// Ask the user whether to publish it before finishing (needs a client that speaks tasks).
    #[serde(default)]
    pub confirm: bool,
}

fn default_seconds() -> u64 {
    5
}

/// The report built.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct Report {
    pub title: String,
    /// Seconds spent building it.
    pub seconds: u64,
    /// Whether the user agreed to publish it (`false` without `confirm`).
    pub published: bool,
    /// The task that built it, when it ran as one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    /// The ECS task (replica) that built it.
    pub built_by: String,
}

#[tool_router(router = report_router, vis = "pub(super)")]
impl Toolbox {
    #[tool(
        description = "Builds a report on a title, taking `seconds` seconds (default 5) and reporting progress; with `confirm`, asks whether to publish it. Runs as a task for clients that support tasks.",
        output_schema = schema_for_output::<Report>(),
        annotations(title = "Report", read_only_hint = true, open_world_hint = false),
        meta = runs_as_task()
    )]
    async fn report(&self, Parameters(args): Parameters<ReportArgs>, work: Work) -> CallToolResult {
        let total = args.seconds;
        for done in 0..total {
            work.progress(
                done as f64,
                Some(total as f64),
                format!("building {:?}: {done} of {total} s", args.title),
            )
            .await;
            // Stops early when the task is cancelled (from any replica) or the replica drains.
            if !work.sleep(Duration::from_secs(1)).await {
                return CallToolResult::error(vec![ContentBlock::text("report cancelled")]);
            }
        }
        let mut published = false;
        if args.confirm {
            work.progress(total as f64, Some(total as f64), "waiting for the user")
                .await;
            let question = ElicitRequest::new(ElicitRequestParams::FormElicitationParams {
                meta: None,
                message: format!("Publish the report {:?}?", args.title),
                requested_schema: ElicitationSchema::builder()
                    .required_bool("publish")
                    .build()
                    .expect("a one-property schema builds"),
            });
            match work
                .request_input("publish", InputRequest::Elicitation(question))
                .await
            {
                Ok(answer) => {
                    let answer: Option<ElicitResult> = serde_json::from_value(answer).ok();
                    published = answer.is_some_and(|a| {
                        a.action == ElicitationAction::Accept
                            && a.content
                                .as_ref()
                                .and_then(|c| c.get("publish"))
                                .and_then(serde_json::Value::as_bool)
                                == Some(true)
                    });
                }
                Err(err) => {
                    return CallToolResult::error(vec![ContentBlock::text(err.message)]);
                }
            }
        }
        let report = Report {
            title: args.title,
            seconds: total,
            published,
            task_id: work.task_id().map(str::to_owned),
            built_by: self.task_id.clone(),
        };
        let text = format!(
            "report {:?} built in {} s by {}{}",
            report.title,
            report.seconds,
            report.built_by,
            if published { ", published" } else { "" }
        );
        let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
        result.structured_content = serde_json::to_value(&report).ok();
        result
    }
}
