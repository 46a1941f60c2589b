//! Metrics: the `metrics` facade, rendered by the Prometheus exporter on the admin listener with
//! OpenTelemetry names (`http.server.request.duration` becomes
//! `http_server_request_duration_seconds`) and explicit histogram buckets (never summaries,
//! which cannot be aggregated across tasks).

use std::{
    collections::HashMap,
    sync::{PoisonError, RwLock},
    time::Duration,
};

use axum::{Router, extract::State, http::header, response::IntoResponse, routing::get};
use metrics::{Histogram, Label, Unit, describe_counter, describe_gauge, describe_histogram};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

use crate::identity::Service;

pub mod names {
    pub const HTTP_REQUEST_DURATION: &str = "http.server.request.duration";
    pub const HTTP_ACTIVE_REQUESTS: &str = "http.server.active_requests";
    pub const SHED_REQUESTS: &str = "http.server.shed_requests";
    pub const RATE_LIMITED_REQUESTS: &str = "http.server.rate_limited_requests";
    pub const REQUEST_TIMEOUTS: &str = "http.server.request_timeouts";
    pub const OPEN_CONNECTIONS: &str = "http.server.open_connections";
    pub const REFUSED_CONNECTIONS: &str = "http.server.refused_connections";
    pub const MCP_OPERATION_DURATION: &str = "mcp.server.operation.duration";
    /// A tool's downstream HTTP requests, through the platform's client (`crate::client`).
    pub const HTTP_CLIENT_REQUEST_DURATION: &str = "http.client.request.duration";
    /// Tasks this replica runs, by status (`working`, `input_required`) and tool.
    pub const TASKS: &str = "mcp.server.tasks";
    /// From a task's creation to its end, by final status and tool.
    pub const TASK_DURATION: &str = "mcp.server.task.duration";
    pub const SPANS_DROPPED: &str = "otel.spans_dropped";
    pub const LOG_LINES_DROPPED: &str = "log.lines_dropped";
    /// Ours (not a convention); one name whatever the service is called, so dashboards work
    /// for every service. The service is its `service_name` label.
    pub const BUILD_INFO: &str = "mcp_server.build_info";
}

/// Prometheus label names (the exporter does not rewrite label keys, so they are spelled here
/// the way OpenTelemetry-to-Prometheus translation spells them).
pub mod labels {
    pub const HTTP_REQUEST_METHOD: &str = "http_request_method";
    pub const HTTP_ROUTE: &str = "http_route";
    pub const HTTP_RESPONSE_STATUS_CODE: &str = "http_response_status_code";
    pub const ERROR_TYPE: &str = "error_type";
    pub const MCP_METHOD_NAME: &str = "mcp_method_name";
    pub const MCP_PROTOCOL_VERSION: &str = "mcp_protocol_version";
    pub const GEN_AI_TOOL_NAME: &str = "gen_ai_tool_name";
    pub const REASON: &str = "reason";
    pub const SERVER_ADDRESS: &str = "server_address";
    pub const MCP_TASK_STATUS: &str = "mcp_task_status";
}

/// Why a connection was closed before any request (`reason` of `http.server.refused_connections`).
pub mod refused {
    /// Over `http.max_connections`.
    pub const CONNECTION_LIMIT: &str = "connection_limit";
    /// Nothing sent within `http.first_byte_timeout_ms`.
    pub const FIRST_BYTE_TIMEOUT: &str = "first_byte_timeout";
}

/// Why a request was shed with 503 (`reason` of `http.server.shed_requests`).
pub mod shed {
    /// Over `http.max_in_flight`.
    pub const IN_FLIGHT: &str = "in_flight";
    /// Its body (or what parsing it takes) did not fit in the memory budget.
    pub const MEMORY: &str = "memory";
    /// 413: parsing its JSON would take more than the whole memory budget.
    pub const JSON_EXPANSION: &str = "json_expansion";
}

/// Why a request was refused with 429 (`reason` of `http.server.rate_limited_requests`).
pub mod rate_limited {
    /// Over its caller's rate.
    pub const CALLER: &str = "caller";
    /// Over its caller's rate for one tool (`http.tool_rate_limits`).
    pub const TOOL: &str = "tool";
}

/// Semantic-convention advisory buckets for `http.server.request.duration` and
/// `http.client.request.duration`.
const HTTP_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];
/// Semantic-convention advisory buckets for `mcp.server.operation.duration`.
const MCP_BUCKETS: &[f64] = &[
    0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];
/// Buckets for `mcp.server.task.duration`: tasks run for seconds to an hour.
const TASK_BUCKETS: &[f64] = &[
    1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
];
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// The installed exporter; renders `/metrics`.
#[derive(Clone)]
pub struct Metrics {
    handle: PrometheusHandle,
    process: std::sync::Arc<metrics_process::Collector>,
}

impl Metrics {
    /// Installs the process's recorder and describes the metrics. Call once, inside the runtime.
    pub fn install(service: &Service) -> Self {
        let (metrics, recorder) = Self::new();
        metrics::set_global_recorder(recorder).expect("metrics recorder installed once");
        metrics.describe(service);
        metrics
    }

    /// A Prometheus recorder and what renders it; install the recorder globally
    /// ([`Metrics::install`]) or, in tests, as the thread's (`metrics::set_default_local_recorder`),
    /// then call [`Metrics::describe`]. Call inside the runtime (the upkeep task starts here).
    pub fn new() -> (Self, PrometheusRecorder) {
        let recorder = PrometheusBuilder::new()
            .with_recommended_naming(true)
            .set_buckets_for_metric(
                Matcher::Full(names::HTTP_REQUEST_DURATION.into()),
                HTTP_BUCKETS,
            )
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full(names::MCP_OPERATION_DURATION.into()),
                    MCP_BUCKETS,
                )
            })
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full(names::HTTP_CLIENT_REQUEST_DURATION.into()),
                    HTTP_BUCKETS,
                )
            })
            .and_then(|b| {
                b.set_buckets_for_metric(Matcher::Full(names::TASK_DURATION.into()), TASK_BUCKETS)
            })
            .expect("non-empty bucket lists")
            .build_recorder();
        let handle = recorder.handle();
        let upkeep = handle.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(UPKEEP_INTERVAL);
            loop {
                tick.tick().await;
                upkeep.run_upkeep();
            }
        });
        let metrics = Self {
            handle,
            process: std::sync::Arc::new(metrics_process::Collector::default()),
        };
        (metrics, recorder)
    }

    /// Describes the metrics, and makes the series that must exist from the start (zero-valued,
    /// so rates and alerts work before the first event), in the current recorder.
    pub fn describe(&self, service: &Service) {
        describe_histogram!(
            names::HTTP_REQUEST_DURATION,
            Unit::Seconds,
            "Duration of HTTP server requests."
        );
        describe_histogram!(
            names::MCP_OPERATION_DURATION,
            Unit::Seconds,
            "Duration of MCP requests as observed by the server, from receipt to the last byte of the answer."
        );
        describe_histogram!(
            names::HTTP_CLIENT_REQUEST_DURATION,
            Unit::Seconds,
            "Duration of the tools' downstream HTTP requests (each attempt), to the response head."
        );
        describe_histogram!(
            names::TASK_DURATION,
            Unit::Seconds,
            "Duration of tasks (long-running tool calls) run here, from creation to their final status."
        );
        describe_gauge!(
            names::TASKS,
            "Tasks running on this instance, by status (working, input_required) and tool."
        );
        describe_gauge!(
            names::HTTP_ACTIVE_REQUESTS,
            "Number of HTTP requests in flight."
        );
        describe_counter!(
            names::SHED_REQUESTS,
            "Requests refused for load by reason: 503 for too many in flight or the memory budget spent, 413 for JSON that would take more than the whole budget to parse."
        );
        describe_counter!(
            names::RATE_LIMITED_REQUESTS,
            "Requests refused with 429 by reason: over their caller's rate, or their caller's rate for one tool."
        );
        describe_counter!(
            names::REQUEST_TIMEOUTS,
            "Requests ended by the request deadline."
        );
        describe_gauge!(
            names::OPEN_CONNECTIONS,
            "Connections open on the public listener."
        );
        describe_counter!(
            names::REFUSED_CONNECTIONS,
            "Connections closed before any request: over the connection limit, or no first byte in time."
        );
        describe_counter!(
            names::SPANS_DROPPED,
            "Spans not exported (queue full or export failed)."
        );
        describe_counter!(
            names::LOG_LINES_DROPPED,
            "Log lines dropped because stdout took nothing and the log queue was full."
        );
        describe_gauge!(
            names::BUILD_INFO,
            "Build information: always 1, labelled with version and git_sha."
        );
        metrics::gauge!(
            names::BUILD_INFO,
            "service_name" => service.name,
            "version" => service.version,
            "git_sha" => env!("MCP_PLATFORM_GIT_SHA")
        )
        .set(1.0);
        // Zero-valued series exist from the start, so rates and alerts work before the first event.
        for reason in [shed::IN_FLIGHT, shed::MEMORY, shed::JSON_EXPANSION] {
            metrics::counter!(names::SHED_REQUESTS, labels::REASON => reason).absolute(0);
        }
        for reason in [rate_limited::CALLER, rate_limited::TOOL] {
            metrics::counter!(names::RATE_LIMITED_REQUESTS, labels::REASON => reason).absolute(0);
        }
        metrics::counter!(names::REQUEST_TIMEOUTS).absolute(0);
        for reason in [refused::CONNECTION_LIMIT, refused::FIRST_BYTE_TIMEOUT] {
            metrics::counter!(names::REFUSED_CONNECTIONS, labels::REASON => reason).absolute(0);
        }
        metrics::gauge!(names::OPEN_CONNECTIONS).set(0.0);
        for reason in ["queue_full", "export_failed"] {
            metrics::counter!(names::SPANS_DROPPED, labels::REASON => reason).absolute(0);
        }
        metrics::counter!(names::LOG_LINES_DROPPED).absolute(0);
        metrics::gauge!(names::HTTP_ACTIVE_REQUESTS).set(0.0);
        self.process.describe();
    }

    /// The Prometheus text of everything recorded so far (what `/metrics` serves).
    pub fn render(&self) -> String {
        self.process.collect();
        // Counted by the log writer (which cannot reach the recorder); read when scraped.
        metrics::counter!(names::LOG_LINES_DROPPED).absolute(super::logs::dropped_lines());
        self.handle.render()
    }

    /// The admin listener's routes: `GET /metrics`.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/metrics", get(render))
            .with_state(self.clone())
    }
}

/// The series of one histogram, by their labels: the `metrics` macros register a series on
/// every record, hashing and looking up its whole key in the exporter, which costs more (see the
/// README's performance section). Kept by the stack (not global), so a test's thread-local
/// recorder gets its own series. Label values must be bounded.
pub struct HistogramSeries {
    name: &'static str,
    /// foldhash: SipHash made each lookup cost more than the rest of the record.
    series: RwLock<HashMap<SeriesLabels, Histogram, foldhash::fast::RandomState>>,
}

/// A series' labels, in order; `None` for one it does not carry.
pub type SeriesLabels = [Option<Label>; 4];

impl HistogramSeries {
    pub fn new(name: &'static str) -> Self {
        Self {
            name,
            series: RwLock::default(),
        }
    }

    /// Records `value` in the series with these labels.
    pub fn record(&self, labels: SeriesLabels, value: f64) {
        if let Some(histogram) = self
            .series
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&labels)
        {
            histogram.record(value);
            return;
        }
        let key: Vec<Label> = labels.iter().flatten().cloned().collect();
        let histogram = metrics::histogram!(self.name, key);
        histogram.record(value);
        self.series
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(labels, histogram);
    }
}

async fn render(State(metrics): State<Metrics>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        metrics.render(),
    )
}
