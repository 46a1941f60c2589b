//! [`Tasks`]: the store, the settings every task is made with, and the runners of the tasks this
//! replica accepted. A runner drives the tool's future and, at the poll interval it tells
//! clients, reads the task's record: a cancel, an expiry or an input answer written by any
//! replica reaches the work that way. At shutdown, what has not finished by the drain deadline
//! is marked failed with a reason the client reads; those last writes get one store timeout.

use std::{
    future::Future,
    panic::AssertUnwindSafe,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use futures::FutureExt as _;
use rmcp::{
    ErrorData,
    model::{CallToolResponse, ErrorCode, TaskStatus},
};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use super::{
    dynamo::{DynamoOptions, DynamoStore},
    memory::MemoryStore,
    store::{Change, StoreError, TaskRecord, TaskStore, now_ms, status_name},
    work::{Running, Work},
};
use crate::{
    config::{ConfigError, TaskStoreKind, TasksSettings},
    telemetry::metrics::{labels, names},
};

/// Attempts at writing a task's final state before giving up (it then expires).
const FINAL_WRITE_ATTEMPTS: u32 = 4;

pub struct Tasks {
    store: Arc<dyn TaskStore>,
    ttl_ms: u64,
    poll: Duration,
    /// How long one store call may take: the final writes' budget past the drain deadline.
    store_timeout: Duration,
    /// Cancelled at the drain deadline: every runner still going marks its task failed.
    shutdown: CancellationToken,
    /// How many runners are going.
    runners: watch::Sender<usize>,
    /// When the drain deadline is, once shutdown began.
    deadline: Mutex<Option<tokio::time::Instant>>,
}

/// A task not stored yet: see [`Tasks::prepare`].
pub struct Prepared {
    record: TaskRecord,
    running: Arc<Running>,
    latest: watch::Sender<Option<TaskRecord>>,
}

impl Prepared {
    pub fn record(&self) -> &TaskRecord {
        &self.record
    }

    /// The tool's handle on the task.
    pub fn work(&self) -> Work {
        Work::task(self.running.clone())
    }
}

/// How a runner ended.
enum End {
    Done(Result<CallToolResponse, ErrorData>),
    /// Another writer made it terminal (a cancel, from any replica).
    Terminal(TaskStatus),
    Expired,
    Shutdown,
    Gone,
}

fn error_json(code: ErrorCode, message: &str) -> Value {
    json!({ "code": code.0, "message": message })
}

impl Tasks {
    pub fn new(
        store: Arc<dyn TaskStore>,
        ttl_ms: u64,
        poll_interval_ms: u64,
        store_timeout: Duration,
    ) -> Self {
        Self {
            store,
            ttl_ms,
            poll: Duration::from_millis(poll_interval_ms),
            store_timeout,
            shutdown: CancellationToken::new(),
            runners: watch::Sender::new(0),
            deadline: Mutex::new(None),
        }
    }

    /// The tasks `settings` ask for; `Ok(None)` when they are off. An error is a configuration
    /// problem (no region for DynamoDB), for start-up to report.
    pub async fn from_settings(settings: &TasksSettings) -> Result<Option<Arc<Self>>, ConfigError> {
        let store_timeout = Duration::from_millis(settings.store_timeout_ms);
        let store: Arc<dyn TaskStore> = match settings.store {
            TaskStoreKind::Off => return Ok(None),
            TaskStoreKind::Memory => {
                tracing::warn!(
                    "tasks: embedded in-process store: task state is lost at exit and not shared \
                     with other replicas (set APP__TASKS__STORE=dynamodb to share it)"
                );
                Arc::new(MemoryStore::new())
            }
            TaskStoreKind::Dynamodb => {
                let options = DynamoOptions {
                    table: settings.table.clone().unwrap_or_default(),
                    endpoint_url: settings.endpoint_url.clone(),
                    region: settings.region.clone(),
                    timeout: store_timeout,
                };
                let store = DynamoStore::connect(&options).await.map_err(|_| {
                    ConfigError::new(
                        "tasks.region",
                        None,
                        "an AWS region (or AWS_REGION in the environment) for the DynamoDB store",
                    )
                })?;
                tracing::info!(
                    table = options.table,
                    endpoint = options.endpoint_url.as_deref().unwrap_or("aws"),
                    "tasks: DynamoDB store"
                );
                Arc::new(store)
            }
        };
        Ok(Some(Arc::new(Self::new(
            store,
            settings.ttl_ms,
            settings.poll_interval_ms,
            store_timeout,
        ))))
    }

    pub fn store(&self) -> &Arc<dyn TaskStore> {
        &self.store
    }

    pub fn poll_interval_ms(&self) -> u64 {
        self.poll.as_millis() as u64
    }

    /// A task about to be made for `tool`: working, unguessable id, this replica's TTL and poll
    /// interval, not stored yet. Its [`Work`] goes to the tool; [`Tasks::start`] runs it.
    pub fn prepare(&self, tool: &str, owner: &str) -> Prepared {
        let now = now_ms();
        let record = TaskRecord {
            id: uuid::Uuid::new_v4().to_string(),
            owner: owner.to_owned(),
            tool: tool.to_owned(),
            status: TaskStatus::Working,
            status_message: None,
            created_at_ms: now,
            updated_at_ms: now,
            ttl_ms: self.ttl_ms,
            poll_interval_ms: self.poll_interval_ms(),
            input_requests: Default::default(),
            input_responses: Default::default(),
            result: None,
            error: None,
        };
        let (latest, latest_rx) = watch::channel(Some(record.clone()));
        let running = Arc::new(Running::new(
            record.id.clone(),
            self.store.clone(),
            latest_rx,
        ));
        Prepared {
            record,
            running,
            latest,
        }
    }

    /// Runs `future`, the tool's call with the [`Work`] of `prepared` (whose record the store now
    /// holds), in the background, in `span`.
    pub fn start<F>(self: &Arc<Self>, prepared: Prepared, span: tracing::Span, future: F)
    where
        F: Future<Output = Result<CallToolResponse, ErrorData>> + Send + 'static,
    {
        let Prepared {
            record,
            running,
            latest,
        } = prepared;
        running.mark_stored();
        self.runners.send_modify(|n| *n += 1);
        let tasks = self.clone();
        tokio::spawn(
            async move {
                tasks.run(running, latest, &record.tool, future).await;
                tasks.runners.send_modify(|n| *n -= 1);
            }
            .instrument(span),
        );
    }

    async fn run<F>(
        &self,
        running: Arc<Running>,
        latest: watch::Sender<Option<TaskRecord>>,
        tool: &str,
        work: F,
    ) where
        F: Future<Output = Result<CallToolResponse, ErrorData>> + Send,
    {
        let started = Instant::now();
        let gauge = Gauge::new(tool);
        let watch = async {
            let mut tick = tokio::time::interval(self.poll);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                gauge.set(running.waiting_for_input());
                match self.store.get(&running.id).await {
                    Ok(Some(record)) if record.status.is_terminal() => {
                        return End::Terminal(record.status);
                    }
                    Ok(Some(record)) if record.expired(now_ms()) => return End::Expired,
                    Ok(Some(record)) => {
                        let _ = latest.send(Some(record));
                    }
                    Ok(None) => return End::Gone,
                    // The work goes on; cancels and answers arrive once the store answers again.
                    Err(err) => tracing::warn!(error = %err, "task record not readable"),
                }
            }
        };
        // A tool that panics (the hook logs it) fails its task, as a panicking request gets a 500.
        let mut work = Box::pin(AssertUnwindSafe(work).catch_unwind());
        let end = tokio::select! {
            outcome = &mut work => End::Done(outcome.unwrap_or_else(|_| {
                Err(ErrorData::internal_error("the tool failed unexpectedly", None))
            })),
            end = watch => end,
            () = self.shutdown.cancelled() => End::Shutdown,
        };
        // The tool's future is dropped here (as a cancelled request's is), once told.
        running.stop.cancel();
        drop(work);
        let internal = ErrorCode::INTERNAL_ERROR;
        let ended_by_other = match &end {
            End::Terminal(status) => Some(*status),
            End::Gone => Some(TaskStatus::Failed),
            _ => None,
        };
        let change = match end {
            End::Done(Ok(CallToolResponse::Complete(result))) => {
                let mut change = Change::status(TaskStatus::Completed);
                change.result = Some(serde_json::to_value(&result).unwrap_or(Value::Null));
                change.status_message = Some(None);
                Some(change)
            }
            End::Done(Ok(response)) => {
                let message = if matches!(response, CallToolResponse::InputRequired(_)) {
                    // The tool waited first, so the call was a task by then.
                    "the tool asked for input (input_required) after the call became a task; \
                     in a task, input is asked with Work::request_input"
                } else {
                    "the tool answered neither a result nor an error"
                };
                let mut change = Change::status(TaskStatus::Failed).message(message);
                change.error = Some(error_json(internal, message));
                Some(change)
            }
            End::Done(Err(error)) => {
                let mut change =
                    Change::status(TaskStatus::Failed).message(error.message.to_string());
                change.error = Some(serde_json::to_value(&error).unwrap_or(Value::Null));
                Some(change)
            }
            End::Expired => {
                let message = "the task expired (ttlMs) before it finished";
                let mut change = Change::status(TaskStatus::Failed).message(message);
                change.error = Some(error_json(internal, message));
                Some(change)
            }
            End::Shutdown => {
                let message = "the server instance running this task shut down before it \
                               finished; call the tool again";
                let mut change = Change::status(TaskStatus::Failed).message(message);
                change.error = Some(error_json(internal, message));
                Some(change)
            }
            End::Terminal(_) | End::Gone => None,
        };
        let status = match (ended_by_other, change) {
            (Some(status), _) => status,
            (None, Some(change)) => self.finish(&running.id, &change).await,
            (None, None) => TaskStatus::Failed,
        };
        gauge.end();
        let seconds = started.elapsed().as_secs_f64();
        metrics::histogram!(
            names::TASK_DURATION,
            labels::GEN_AI_TOOL_NAME => tool.to_owned(),
            labels::MCP_TASK_STATUS => status_name(status),
        )
        .record(seconds);
        tracing::info!(
            status = status_name(status),
            duration_ms = seconds * 1000.0,
            "task ended"
        );
    }

    /// Writes the final state, retrying a store that fails, for at most one store timeout past
    /// the drain deadline; returns the status the task ended with (a cancel that got there
    /// first wins).
    async fn finish(&self, id: &str, change: &Change) -> TaskStatus {
        let past_deadline = async {
            self.shutdown.cancelled().await;
            tokio::time::sleep(self.store_timeout).await;
        };
        tokio::select! {
            status = self.write_final(id, change) => status,
            () = past_deadline => {
                log_lost(&StoreError::Unavailable("no answer by the drain deadline".into()));
                change.status.unwrap_or(TaskStatus::Failed)
            }
        }
    }

    async fn write_final(&self, id: &str, change: &Change) -> TaskStatus {
        let wanted = change.status.unwrap_or(TaskStatus::Failed);
        let mut backoff = Duration::from_millis(200);
        for attempt in 1..=FINAL_WRITE_ATTEMPTS {
            match self.store.update(id, change, now_ms()).await {
                Ok(true) => return wanted,
                Ok(false) => {
                    return match self.store.get(id).await {
                        Ok(Some(record)) => record.status,
                        _ => TaskStatus::Cancelled,
                    };
                }
                Err(err) if attempt < FINAL_WRITE_ATTEMPTS => {
                    tracing::warn!(error = %err, attempt, "task state not written; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
                Err(err) => log_lost(&err),
            }
        }
        wanted
    }

    /// Shutdown began: what still runs at `deadline` is marked failed.
    pub fn shut_down_at(&self, deadline: tokio::time::Instant) {
        *self.deadline.lock().unwrap_or_else(PoisonError::into_inner) = Some(deadline);
        let running = *self.runners.borrow();
        tracing::info!(
            running,
            "tasks: shutdown; running tasks may finish until the drain deadline"
        );
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(deadline).await;
            shutdown.cancel();
        });
    }

    /// Waits for every runner to end: by the deadline given to [`Tasks::shut_down_at`] they are
    /// told to, then each writes its task's state, for at most one store timeout more (what
    /// ECS's stopTimeout counts, infra/ecs.tf).
    pub async fn drained(&self) {
        let deadline = *self.deadline.lock().unwrap_or_else(PoisonError::into_inner);
        if deadline.is_none() {
            self.shutdown.cancel();
        }
        let mut runners = self.runners.subscribe();
        let _ = runners.wait_for(|n| *n == 0).await;
    }
}

fn log_lost(err: &StoreError) {
    tracing::error!(
        error = %err,
        "task state not written: the task stays as last recorded until it expires"
    );
}

/// This runner's task in the `mcp.server.tasks` gauge, under its current status.
struct Gauge {
    tool: String,
    input: std::sync::atomic::AtomicBool,
}

impl Gauge {
    fn new(tool: &str) -> Self {
        let gauge = Self {
            tool: tool.to_owned(),
            input: false.into(),
        };
        gauge.gauge(false).increment(1.0);
        gauge
    }

    fn gauge(&self, input: bool) -> metrics::Gauge {
        let status = if input {
            TaskStatus::InputRequired
        } else {
            TaskStatus::Working
        };
        metrics::gauge!(
            names::TASKS,
            labels::GEN_AI_TOOL_NAME => self.tool.clone(),
            labels::MCP_TASK_STATUS => status_name(status),
        )
    }

    fn set(&self, input: bool) {
        let was = self.input.swap(input, std::sync::atomic::Ordering::Relaxed);
        if was != input {
            self.gauge(was).decrement(1.0);
            self.gauge(input).increment(1.0);
        }
    }

    fn end(&self) {
        self.gauge(self.input.load(std::sync::atomic::Ordering::Relaxed))
            .decrement(1.0);
    }
}
