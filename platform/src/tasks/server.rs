//! [`TaskServer`]: an rmcp handler around the service's, adding the Tasks extension
//! (`io.modelcontextprotocol/tasks`, 2026-07-28). A `tools/call` of a tool marked
//! [`runs_as_task`](super::runs_as_task) from a client that declares the extension becomes a task
//! the first time the tool waits: it is stored, answered with, and run on here in the background;
//! `tasks/get`, `tasks/update` and `tasks/cancel` are answered from the store, so any replica
//! answers them. With auth on, a task is its creator's: to anyone else it does not exist.

use std::{borrow::Cow, sync::Arc, task::Poll};

use opentelemetry::trace::TraceContextExt as _;
use rmcp::{
    ErrorData, RoleServer, ServerHandler,
    model::{
        CallToolRequestParams, CallToolResponse, CancelTaskParams, ClientCapabilities,
        CompleteRequestParams, CompleteResult, CreateTaskResult, CustomRequest, CustomResult,
        DetailedTask, GetPromptRequestParams, GetPromptResponse, GetTaskParams, GetTaskResult,
        InputRequests, ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult,
        ListToolsResult, PaginatedRequestParams, ProtocolVersion, ReadResourceRequestParams,
        ReadResourceResponse, ServerConfig, TASKS_EXTENSION_ID, Task, TaskPayload, TaskStatus,
        Tool, UpdateTaskParams,
    },
    service::{NotificationContext, RequestContext, SubscriptionContext},
};
// The rest of the handler's methods, only passed on to the service's handler.
#[allow(deprecated)]
use rmcp::model::{
    CancelledNotificationParam, CustomNotification, GetSkillRequestParams, GetSkillResult,
    ListSkillsResult, ProgressNotificationParam, ReadResourceDirectoryRequestParams,
    ReadResourceDirectoryResult, SetLevelRequestParams, SubscribeRequestParams, SubscriptionFilter,
    UnsubscribeRequestParams,
};
use serde_json::{Map, Value, json};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::mcp::request_facts;

use super::{
    runtime::Tasks,
    store::{StoreError, TaskRecord, iso8601, now_ms},
};

/// The `_meta` key of a tool that runs as a task (see [`super::runs_as_task`]); its value is a
/// [`TaskSupport`] name.
pub const RUNS_AS_TASK: &str = "mcp-platform/runsAsTask";

/// Whether a tool may also run as a plain call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskSupport {
    /// A task for clients that speak tasks, a plain call for the others.
    Optional,
    /// Only a task: other clients are told the capability they lack (`-32021`).
    Required,
}

impl TaskSupport {
    pub fn name(self) -> &'static str {
        match self {
            Self::Optional => "optional",
            Self::Required => "required",
        }
    }

    fn of(tool: &Tool) -> Option<Self> {
        let name = tool.meta.as_ref()?.0.get(RUNS_AS_TASK)?.as_str()?;
        [Self::Optional, Self::Required]
            .into_iter()
            .find(|support| support.name() == name)
    }
}
/// The target of the task spans.
pub const TASK_SPAN_TARGET: &str = "mcp_platform::tasks";

pub struct TaskServer<H> {
    inner: Arc<H>,
    tasks: Option<Arc<Tasks>>,
    info: ServerConfig,
}

impl<H: ServerHandler + Send + Sync + 'static> TaskServer<H> {
    /// `tasks`: `None` serves `inner` as it is (no extension advertised).
    pub fn new(inner: H, tasks: Option<Arc<Tasks>>) -> Self {
        let mut info = inner.get_info();
        if tasks.is_some() {
            info.capabilities
                .extensions
                .get_or_insert_with(Default::default)
                .insert(TASKS_EXTENSION_ID.to_owned(), Map::new());
        }
        Self {
            inner: Arc::new(inner),
            tasks,
            info,
        }
    }

    fn task_support(&self, tool: &str) -> Option<TaskSupport> {
        TaskSupport::of(&self.inner.get_tool(tool)?)
    }

    /// The store, for the `tasks/*` methods (rmcp answers -32601 before this when the
    /// extension is not advertised).
    fn tasks(&self) -> Result<&Arc<Tasks>, ErrorData> {
        self.tasks
            .as_ref()
            .ok_or_else(|| ErrorData::internal_error("tasks are not configured", None))
    }

    /// The caller's task, or "not found" (also for another principal's task).
    async fn owned(
        &self,
        id: &str,
        context: &RequestContext<RoleServer>,
    ) -> Result<TaskRecord, ErrorData> {
        let tasks = self.tasks()?;
        let record = tasks.store().get(id).await.map_err(|e| store_error(&e))?;
        match record {
            Some(record) if record.owner == owner(context) => {
                if record.expired(now_ms()) {
                    Err(ErrorData::invalid_params(
                        "Failed to retrieve task: Task has expired",
                        Some(json!({ "taskId": id })),
                    ))
                } else {
                    Ok(record)
                }
            }
            _ => Err(ErrorData::invalid_params(
                "Failed to retrieve task: Task not found",
                Some(json!({ "taskId": id })),
            )),
        }
    }
}

/// The caller's identity the task is bound to: the token's subject, empty with auth off.
fn owner(context: &RequestContext<RoleServer>) -> String {
    request_facts(context)
        .and_then(|r| r.principal().map(|p| p.subject.clone()))
        .unwrap_or_default()
}

/// A store failure as the client reads it: an internal error that says what happened and
/// that nothing was lost or made (`data.retryable`).
fn store_error(err: &StoreError) -> ErrorData {
    let reason = match err {
        StoreError::Throttled(_) => "throttled",
        StoreError::Unavailable(_) => "unavailable",
        StoreError::Failed(_) => "failed",
    };
    tracing::warn!(error = %err, "task store call failed");
    ErrorData::internal_error(
        format!("the task store is {reason}; try again later"),
        Some(json!({ "taskStore": reason, "retryable": reason != "failed" })),
    )
}

/// The record as the protocol's task (`tasks/get`, `CreateTaskResult`).
fn task_of(record: &TaskRecord) -> Task {
    let mut task = Task::new(
        record.id.clone(),
        record.status,
        iso8601(record.created_at_ms),
        iso8601(record.updated_at_ms),
    )
    .with_ttl_ms(record.ttl_ms)
    .with_poll_interval_ms(record.poll_interval_ms);
    task.status_message.clone_from(&record.status_message);
    task
}

fn detailed(record: &TaskRecord) -> DetailedTask {
    let object = |v: &Option<Value>| match v {
        Some(Value::Object(map)) => map.clone(),
        _ => Map::new(),
    };
    let payload = match record.status {
        TaskStatus::Completed => TaskPayload::Completed {
            result: object(&record.result),
        },
        TaskStatus::Failed => TaskPayload::Failed {
            error: object(&record.error),
        },
        TaskStatus::Cancelled => TaskPayload::Cancelled,
        TaskStatus::InputRequired => {
            // An answer the runner has not taken yet already settles its request for the client.
            let pending: InputRequests = record
                .input_requests
                .iter()
                .filter(|(k, _)| !record.input_responses.contains_key(*k))
                .filter_map(|(k, v)| Some((k.clone(), serde_json::from_value(v.clone()).ok()?)))
                .collect();
            if pending.is_empty() {
                TaskPayload::Working
            } else {
                TaskPayload::InputRequired {
                    input_requests: pending,
                }
            }
        }
        _ => TaskPayload::Working,
    };
    DetailedTask::new(task_of(record), payload)
}

impl<H: ServerHandler + Send + Sync + 'static> ServerHandler for TaskServer<H> {
    fn get_info(&self) -> ServerConfig {
        self.info.clone()
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        self.inner.supported_protocol_versions()
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        // Cheapest first: a plain call of a plain tool pays one lookup of the tool.
        let Some((tasks, support)) = self
            .tasks
            .as_ref()
            .and_then(|tasks| Some((tasks, self.task_support(&request.name)?)))
        else {
            return self.inner.call_tool(request, context).await;
        };
        let declared = context
            .client_capabilities()
            .is_some_and(|caps| caps.supports_tasks());
        match (declared, support) {
            (true, _) => {}
            (false, TaskSupport::Optional) => return self.inner.call_tool(request, context).await,
            (false, TaskSupport::Required) => {
                return Err(ErrorData::missing_required_client_capability(
                    ClientCapabilities::builder().enable_tasks().build(),
                ));
            }
        }
        let tool = request.name.to_string();
        let prepared = tasks.prepare(&tool, &owner(&context));
        let server_span = request_facts(&context).and_then(|r| r.server_span().cloned());
        // The work outlives the request: its own cancellation, the task's handle.
        let mut context = context;
        context.ct = tokio_util::sync::CancellationToken::new();
        context.extensions.insert(prepared.work());
        let inner = self.inner.clone();
        let mut call = Box::pin(async move { inner.call_tool(request, context).await });
        // A tool that answers without waiting (an input_required round, a refusal, an instant
        // result) answers the call itself; the first time it waits, the call becomes a task.
        if let Poll::Ready(answer) = futures::poll!(&mut call) {
            return answer;
        }
        // The task exists once this returns (a consistent write), or the caller learns why not.
        tasks
            .store()
            .create(prepared.record())
            .await
            .map_err(|e| store_error(&e))?;
        let record = prepared.record().clone();
        let span = tracing::info_span!(
            target: TASK_SPAN_TARGET,
            parent: None,
            "task",
            otel.name = format!("task {tool}"),
            gen_ai.tool.name = tool.as_str(),
            mcp.task.id = record.id.as_str(),
        );
        if let Some(trace) = server_span {
            span.add_link(trace.span().span_context().clone());
        }
        tracing::info!(task_id = record.id.as_str(), "task created");
        tasks.start(prepared, span, call);
        Ok(CallToolResponse::Task(CreateTaskResult::new(task_of(
            &record,
        ))))
    }

    async fn get_task(
        &self,
        request: GetTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, ErrorData> {
        let record = self.owned(&request.task_id, &context).await?;
        Ok(GetTaskResult::new(detailed(&record)))
    }

    async fn update_task(
        &self,
        request: UpdateTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let record = self.owned(&request.task_id, &context).await?;
        // Answers to keys not outstanding, or answered already, are ignored (the extension says).
        let answers: Map<String, Value> = request
            .input_responses
            .into_iter()
            .filter(|(key, _)| {
                record.input_requests.contains_key(key) && !record.input_responses.contains_key(key)
            })
            .collect();
        if answers.is_empty() || record.status.is_terminal() {
            return Ok(());
        }
        self.tasks()?
            .store()
            .answer(&record.id, &answers, now_ms())
            .await
            .map(|_| ())
            .map_err(|e| store_error(&e))
    }

    async fn cancel_task(
        &self,
        request: CancelTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let record = self.owned(&request.task_id, &context).await?;
        if record.status.is_terminal() {
            return Ok(());
        }
        let change =
            super::store::Change::status(TaskStatus::Cancelled).message("cancelled by the client");
        // Terminal now for every replica; the runner stops the work at its next poll.
        self.tasks()?
            .store()
            .update(&record.id, &change, now_ms())
            .await
            .map(|_| ())
            .map_err(|e| store_error(&e))
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        self.inner.list_tools(request, context).await
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.inner.get_tool(name)
    }

    async fn list_prompts(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        self.inner.list_prompts(request, context).await
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        self.inner.get_prompt(request, context).await
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        self.inner.complete(request, context).await
    }

    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        self.inner.list_resources(request, context).await
    }

    async fn list_resource_templates(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        self.inner.list_resource_templates(request, context).await
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        self.inner.read_resource(request, context).await
    }

    async fn on_custom_request(
        &self,
        request: CustomRequest,
        context: RequestContext<RoleServer>,
    ) -> Result<CustomResult, ErrorData> {
        self.inner.on_custom_request(request, context).await
    }

    #[allow(deprecated)]
    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.inner.set_level(request, context).await
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        self.inner.accepted_subscription_filter(requested)
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), ErrorData> {
        self.inner.listen(context).await
    }

    #[allow(deprecated)]
    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.inner.subscribe(request, context).await
    }

    #[allow(deprecated)]
    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.inner.unsubscribe(request, context).await
    }

    async fn on_cancelled(
        &self,
        notification: CancelledNotificationParam,
        context: NotificationContext<RoleServer>,
    ) {
        self.inner.on_cancelled(notification, context).await;
    }

    async fn on_progress(
        &self,
        notification: ProgressNotificationParam,
        context: NotificationContext<RoleServer>,
    ) {
        self.inner.on_progress(notification, context).await;
    }

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        self.inner.on_initialized(context).await;
    }

    async fn on_roots_list_changed(&self, context: NotificationContext<RoleServer>) {
        self.inner.on_roots_list_changed(context).await;
    }

    async fn on_custom_notification(
        &self,
        notification: CustomNotification,
        context: NotificationContext<RoleServer>,
    ) {
        self.inner
            .on_custom_notification(notification, context)
            .await;
    }

    async fn list_skills(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListSkillsResult, ErrorData> {
        self.inner.list_skills(request, context).await
    }

    async fn get_skill(
        &self,
        request: GetSkillRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetSkillResult, ErrorData> {
        self.inner.get_skill(request, context).await
    }

    async fn read_resource_directory(
        &self,
        request: ReadResourceDirectoryRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceDirectoryResult, ErrorData> {
        self.inner.read_resource_directory(request, context).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiting_for(requests: &[&str], answered: &[&str]) -> TaskRecord {
        let question = json!({"method": "roots/list"});
        TaskRecord {
            id: "t".into(),
            owner: String::new(),
            tool: "tool".into(),
            status: TaskStatus::InputRequired,
            status_message: None,
            created_at_ms: 0,
            updated_at_ms: 0,
            ttl_ms: 60_000,
            poll_interval_ms: 1000,
            input_requests: requests
                .iter()
                .map(|k| ((*k).to_owned(), question.clone()))
                .collect(),
            input_responses: answered
                .iter()
                .map(|k| ((*k).to_owned(), json!({})))
                .collect(),
            result: None,
            error: None,
        }
    }

    #[test]
    fn an_answer_not_taken_yet_settles_its_request_for_the_client() {
        let partly = detailed(&waiting_for(&["first", "second"], &["first"]));
        assert_eq!(partly.status(), TaskStatus::InputRequired);
        let TaskPayload::InputRequired { input_requests } = partly.payload else {
            panic!("{partly:?}");
        };
        assert_eq!(input_requests.keys().collect::<Vec<_>>(), ["second"]);
        let answered = detailed(&waiting_for(&["first"], &["first"]));
        assert_eq!(answered.status(), TaskStatus::Working);
    }
}
