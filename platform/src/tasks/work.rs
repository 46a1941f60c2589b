//! [`Work`]: what a long-running tool holds to report progress, ask the client for input and
//! learn it was cancelled, the same code whether it runs as a task or as a plain call.

use std::{
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use rmcp::{
    ErrorData, Peer, RoleServer,
    handler::server::common::{AsRequestContext, FromContextPart},
    model::{InputRequest, ProgressNotificationParam, ProgressToken, TaskStatus},
};
use serde_json::{Map, Value};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::store::{Change, StoreError, TaskRecord, TaskStore, now_ms};

/// A task running on this replica, shared by its runner and the tool's [`Work`].
pub struct Running {
    pub id: String,
    pub store: Arc<dyn TaskStore>,
    /// The task's record as last read by the runner (every poll interval).
    pub latest: watch::Receiver<Option<TaskRecord>>,
    /// The outstanding input requests: only the runner's side writes them.
    pub(super) outstanding: Mutex<Map<String, Value>>,
    /// Held while the outstanding requests are written, so the store ends with the latest set
    /// when requests run in parallel.
    writing_outstanding: tokio::sync::Mutex<()>,
    /// Whether the store holds the task yet: the tool's first wait makes the call a task.
    stored: watch::Sender<bool>,
    /// Cancelled when the work is to stop (cancelled, expired, shut down).
    pub stop: CancellationToken,
}

impl Running {
    pub fn new(
        id: String,
        store: Arc<dyn TaskStore>,
        latest: watch::Receiver<Option<TaskRecord>>,
    ) -> Self {
        Self {
            id,
            store,
            latest,
            outstanding: Mutex::new(Map::new()),
            writing_outstanding: tokio::sync::Mutex::new(()),
            stored: watch::Sender::new(false),
            stop: CancellationToken::new(),
        }
    }

    /// The store holds the task now: the work may write to it.
    pub fn mark_stored(&self) {
        self.stored.send_replace(true);
    }

    /// Waits until the store holds the task (the call has become one).
    async fn until_stored(&self) {
        let mut stored = self.stored.subscribe();
        let _ = stored.wait_for(|stored| *stored).await;
    }

    /// Changes the outstanding requests with `edit`, then writes the new set and the status it
    /// implies (`input_required` while any is left), dropping the `taken` answers.
    async fn write_outstanding(
        &self,
        edit: impl FnOnce(&mut Map<String, Value>),
        taken: Vec<String>,
    ) -> Result<bool, StoreError> {
        let _writing = self.writing_outstanding.lock().await;
        let outstanding = {
            let mut outstanding = self
                .outstanding
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            edit(&mut outstanding);
            outstanding.clone()
        };
        let status = if outstanding.is_empty() {
            TaskStatus::Working
        } else {
            TaskStatus::InputRequired
        };
        let change = Change {
            status: Some(status),
            input_requests: Some(outstanding),
            taken_responses: taken,
            ..Change::default()
        };
        self.store.update(&self.id, &change, now_ms()).await
    }

    /// Whether input requests are outstanding (for the status gauge).
    pub fn waiting_for_input(&self) -> bool {
        !self
            .outstanding
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty()
    }
}

/// A long-running tool's handle on its call: add it to the tool's parameters
/// (`work: mcp_platform::tasks::Work`). In a task, progress becomes the task's `statusMessage`,
/// input requests become `inputRequests` answered with `tasks/update` on any replica, and
/// [`Work::cancelled`] fires on a `tasks/cancel` made anywhere. In a plain call (the client
/// does not speak tasks, or no store is configured) progress goes out as
/// `notifications/progress` when the client asked for it, and input cannot be requested.
#[derive(Clone)]
pub struct Work(Inner);

#[derive(Clone)]
enum Inner {
    Task(Arc<Running>),
    Call {
        peer: Peer<RoleServer>,
        progress_token: Option<ProgressToken>,
        cancelled: CancellationToken,
    },
}

/// Why input could not be had.
fn no_input(message: &str) -> ErrorData {
    ErrorData::internal_error(message.to_owned(), None)
}

impl Work {
    pub(super) fn task(running: Arc<Running>) -> Self {
        Self(Inner::Task(running))
    }

    /// The task's id, when the call runs as a task (once it waited: before, it may still end
    /// as a plain call).
    pub fn task_id(&self) -> Option<&str> {
        match &self.0 {
            Inner::Task(running) if *running.stored.borrow() => Some(&running.id),
            _ => None,
        }
    }

    /// Reports progress: `done` of `total` (any unit), with a sentence for the user. Never
    /// fails the work: a progress report that cannot be written is logged and dropped.
    pub async fn progress(&self, done: f64, total: Option<f64>, message: impl Into<String>) {
        let message = message.into();
        match &self.0 {
            Inner::Task(running) => {
                running.until_stored().await;
                let change = Change::default().message(message);
                if let Err(err) = running.store.update(&running.id, &change, now_ms()).await {
                    tracing::warn!(error = %err, "task progress not recorded");
                }
            }
            Inner::Call {
                peer,
                progress_token: Some(token),
                ..
            } => {
                let mut param = ProgressNotificationParam::new(token.clone(), done);
                param.total = total;
                param.message = Some(message);
                if let Err(err) = peer.notify_progress(param).await {
                    tracing::debug!(error = %err, "progress notification not sent");
                }
            }
            Inner::Call { .. } => {}
        }
    }

    /// Resolves when the work should stop: the task was cancelled (from any replica), expired,
    /// or the replica is shutting down; for a plain call, the request ended. The platform also
    /// drops the tool's future then: this is for work that must clean up first.
    pub async fn cancelled(&self) {
        match &self.0 {
            Inner::Task(running) => running.stop.cancelled().await,
            Inner::Call { cancelled, .. } => cancelled.cancelled().await,
        }
    }

    /// Asks the client for input (an elicitation, a sampling request, its roots) under `key`,
    /// unique over the task's life, and waits for the answer from `tasks/update`, whichever
    /// replica receives it. Only in a task: a plain call gets an error.
    pub async fn request_input(
        &self,
        key: impl Into<String>,
        request: InputRequest,
    ) -> Result<Value, ErrorData> {
        let Inner::Task(running) = &self.0 else {
            return Err(no_input(
                "this tool needs input from the client: call it as a task (declare the \
                 io.modelcontextprotocol/tasks extension)",
            ));
        };
        let key = key.into();
        let request = serde_json::to_value(&request)
            .map_err(|e| no_input(&format!("input request not serializable: {e}")))?;
        running.until_stored().await;
        let asked = key.clone();
        let written = running
            .write_outstanding(
                |outstanding| {
                    outstanding.insert(asked, request);
                },
                vec![],
            )
            .await
            .map_err(|e| no_input(&e.to_string()))?;
        if !written {
            return Err(no_input("the task is over"));
        }
        let mut latest = running.latest.clone();
        let answer = loop {
            let answer = latest
                .borrow_and_update()
                .as_ref()
                .and_then(|r| r.input_responses.get(&key).cloned());
            if let Some(answer) = answer {
                break answer;
            }
            tokio::select! {
                changed = latest.changed() => {
                    if changed.is_err() {
                        return Err(no_input("the task is over"));
                    }
                }
                () = running.stop.cancelled() => return Err(no_input("the task is over")),
            }
        };
        let answered = key.clone();
        // The answer is ours now; a failure to record that is retried by the next change.
        if let Err(err) = running
            .write_outstanding(
                |outstanding| {
                    outstanding.remove(&answered);
                },
                vec![key],
            )
            .await
        {
            tracing::warn!(error = %err, "task input taken but not recorded");
        }
        Ok(answer)
    }

    /// Sleeps `duration`, or less if the work is to stop (returns `false` then).
    pub async fn sleep(&self, duration: Duration) -> bool {
        tokio::select! {
            () = tokio::time::sleep(duration) => true,
            () = self.cancelled() => false,
        }
    }
}

impl<C: AsRequestContext> FromContextPart<C> for Work {
    fn from_context_part(context: &mut C) -> Result<Self, ErrorData> {
        let context = context.as_request_context();
        if let Some(work) = context.extensions.get::<Work>() {
            return Ok(work.clone());
        }
        Ok(Self(Inner::Call {
            peer: context.peer.clone(),
            progress_token: context.meta.get_progress_token(),
            cancelled: context.ct.clone(),
        }))
    }
}
