//! [`TaskServer`]: an rmcp handler around the service's, adding the Tasks extension
//! (`io.modelcontextprotocol/tasks`, 2026-07-28). A `tools/call` of a tool marked
//! [`runs_as_task`](super::runs_as_task) from a client that declares the extension is stored as a
//! task, answered at once with it, and run here in the background; `tasks/get`, `tasks/update`
//! and `tasks/cancel` are answered from the store, so any replica answers them. With auth on, a
//! task is its creator's: to anyone else it does not exist.

use std::{borrow::Cow, sync::Arc};

use opentelemetry::trace::TraceContextExt as _;
use rmcp::{
    ErrorData, RoleServer, ServerHandler,
    model::{
        CallToolRequestParams, CallToolResponse, CancelTaskParams, CompleteRequestParams,
        CompleteResult, CreateTaskResult, CustomRequest, CustomResult, DetailedTask,
        GetPromptRequestParams, GetPromptResponse, GetTaskParams, GetTaskResult, InputRequests,
        ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult, ListToolsResult,
        PaginatedRequestParams, ProtocolVersion, ReadResourceRequestParams, ReadResourceResponse,
        ServerConfig, TASKS_EXTENSION_ID, Task, TaskPayload, TaskStatus, Tool, UpdateTaskParams,
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

/// The `_meta` key of a tool that runs as a task (see [`super::runs_as_task`]).
pub const RUNS_AS_TASK: &str = "mcp-platform/runsAsTask";
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

    fn runs_as_task(&self, tool: &str) -> bool {
        self.inner
            .get_tool(tool)
            .and_then(|t| t.meta)
            .is_some_and(|meta| meta.0.get(RUNS_AS_TASK) == Some(&Value::Bool(true)))
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
            let requests: InputRequests = record
                .input_requests
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), serde_json::from_value(v.clone()).ok()?)))
                .collect();
            TaskPayload::InputRequired {
                input_requests: requests,
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
        let Some(tasks) = self.tasks.as_ref().filter(|_| {
            self.runs_as_task(&request.name)
                && context
                    .client_capabilities()
                    .is_some_and(|caps| caps.supports_tasks())
        }) else {
            return self.inner.call_tool(request, context).await;
        };
        let tool = request.name.to_string();
        let record = tasks.new_record(&tool, &owner(&context));
        // The task exists once this returns (a consistent write), or the caller learns why not.
        tasks
            .store()
            .create(&record)
            .await
            .map_err(|e| store_error(&e))?;
        let span = tracing::info_span!(
            target: TASK_SPAN_TARGET,
            parent: None,
            "task",
            otel.name = format!("task {tool}"),
            gen_ai.tool.name = tool.as_str(),
            mcp.task.id = record.id.as_str(),
        );
        if let Some(trace) = request_facts(&context).and_then(|r| r.server_span().cloned()) {
            span.add_link(trace.span().span_context().clone());
        }
        tracing::info!(task_id = record.id.as_str(), "task created");
        let inner = self.inner.clone();
        tasks.spawn(&record, span, move |work| {
            // The work outlives the request: its own cancellation, the task's handle.
            let mut context = context;
            context.ct = tokio_util::sync::CancellationToken::new();
            context.extensions.insert(work);
            async move { inner.call_tool(request, context).await }
        });
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
        // Answers to keys not outstanding are ignored, as the extension says.
        let answers: Map<String, Value> = request
            .input_responses
            .into_iter()
            .filter(|(key, _)| record.input_requests.contains_key(key))
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
