//! Logs, metrics and traces, set up once by `main` before anything else runs. The other layers
//! only use the helpers here (names, context extraction, [`start_server_span`]); a request
//! carries a [`RequestTrace`] only while spans are exported.

pub mod ecs;
pub mod logs;
pub mod metrics;
pub mod semconv;
pub mod traces;

use std::{io::IsTerminal, sync::OnceLock, time::Duration};

use http::HeaderMap;
use opentelemetry::{
    Context, KeyValue,
    propagation::{Extractor, TextMapPropagator},
    trace::{SpanBuilder, SpanKind, TraceContextExt as _, TracerProvider as _},
};
use opentelemetry_sdk::{
    Resource,
    propagation::TraceContextPropagator,
    trace::{SdkTracer, SdkTracerProvider},
};

use self::{ecs::EcsTask, metrics::Metrics, traces::TraceExport};
use crate::config::{ConfigError, LogFormat, Settings};

const DEFAULT_SERVICE_NAME: &str = "mcp-server";
const DEFAULT_ENVIRONMENT: &str = "local";
const TRACER_NAME: &str = "mcp-server";

/// Set once when spans are exported.
static TRACER: OnceLock<SdkTracer> = OnceLock::new();

/// The trace context of a request's innermost server span so far (the HTTP span, then the MCP
/// span), kept in the request's extensions while spans are exported: the layers below read it
/// to parent their span or to add attributes to it.
#[derive(Debug, Clone)]
pub struct RequestTrace(pub Context);

/// A span's trace and span ids as the numbers log lines carry (see `logs`), recorded on the
/// `tracing` span that gives a request's log lines their context.
pub fn log_ids(trace: &Context) -> (u128, u64) {
    let span = trace.span();
    let ids = span.span_context();
    (
        u128::from_be_bytes(ids.trace_id().to_bytes()),
        u64::from_be_bytes(ids.span_id().to_bytes()),
    )
}

/// Starts a server span when spans are exported (else `None`, and `span` is not called): `span`
/// gives its parent context and its name and attributes. Returns the context that holds it; its
/// owner sets the outcome attributes and ends it. The server's own spans are made here with the
/// OpenTelemetry API rather than through `tracing`: a request's two spans then cost a fraction as
/// much.
pub fn start_server_span(span: impl FnOnce() -> (Context, SpanBuilder)) -> Option<Context> {
    let tracer = TRACER.get()?;
    let (parent, span) = span();
    let span = span
        .with_kind(SpanKind::Server)
        .start_with_context(tracer, &parent);
    Some(parent.with_span(span))
}

/// The installed telemetry; [`Telemetry::shutdown`] flushes what is still buffered.
pub struct Telemetry {
    tracer: Option<SdkTracerProvider>,
    logs: logs::LogGuard,
    pub metrics: Metrics,
    pub export: TraceExport,
}

/// Installs logs, traces and metrics. Must run inside the Tokio runtime (the metrics upkeep and
/// the gRPC exporter use it). Wrong `OTEL_*` values are configuration errors.
pub fn init(settings: &Settings, task: Option<&EcsTask>) -> Result<Telemetry, ConfigError> {
    let export = traces::export_from_env(&|name| std::env::var(name).ok())?;
    let tracer = traces::provider(&export, resource(task));
    if let Some(provider) = &tracer {
        let _ = TRACER.set(provider.tracer(TRACER_NAME));
    }
    let format = settings
        .log
        .format
        .unwrap_or(if std::io::stdout().is_terminal() {
            LogFormat::Pretty
        } else {
            LogFormat::Json
        });
    let logs = logs::install(format, &settings.log.level, TRACER.get());
    let metrics = Metrics::install();
    Ok(Telemetry {
        tracer,
        logs,
        metrics,
        export,
    })
}

impl Telemetry {
    /// Flushes and stops the span exporter within `deadline` (a dead collector cannot hold the
    /// process past it). Logging goes on until the returned guard is dropped.
    pub async fn shutdown(self, deadline: Duration) -> logs::LogGuard {
        let Some(tracer) = self.tracer else {
            return self.logs;
        };
        let flush = tokio::task::spawn_blocking(move || tracer.shutdown_with_timeout(deadline));
        match tokio::time::timeout(deadline + Duration::from_millis(500), flush).await {
            Ok(Ok(Ok(()))) => tracing::info!("telemetry flushed"),
            Ok(Ok(Err(err))) => tracing::warn!(error = %err, "telemetry flush incomplete"),
            _ => tracing::warn!(
                deadline_ms = deadline.as_millis() as u64,
                "telemetry flush timed out"
            ),
        }
        self.logs
    }
}

/// `service.*`, `deployment.environment.name` and, on ECS, the task's identity. Values from
/// `OTEL_SERVICE_NAME` / `OTEL_RESOURCE_ATTRIBUTES` win over these defaults.
fn resource(task: Option<&EcsTask>) -> Resource {
    use semconv::*;
    let mut defaults = vec![
        KeyValue::new(SERVICE_NAME, DEFAULT_SERVICE_NAME),
        KeyValue::new(DEPLOYMENT_ENVIRONMENT_NAME, DEFAULT_ENVIRONMENT),
    ];
    let mut ours = vec![KeyValue::new(SERVICE_VERSION, env!("CARGO_PKG_VERSION"))];
    match task {
        Some(task) => {
            ours.extend([
                KeyValue::new(SERVICE_INSTANCE_ID, task.task_arn.clone()),
                KeyValue::new(CLOUD_PROVIDER, "aws"),
                KeyValue::new(CLOUD_PLATFORM, "aws_ecs"),
                KeyValue::new(AWS_ECS_TASK_ARN, task.task_arn.clone()),
                KeyValue::new(AWS_ECS_CLUSTER_ARN, task.cluster.clone()),
                KeyValue::new(AWS_ECS_TASK_FAMILY, task.family.clone()),
                KeyValue::new(AWS_ECS_TASK_REVISION, task.revision.clone()),
                KeyValue::new(AWS_ECS_LAUNCHTYPE, task.launch_type.to_ascii_lowercase()),
                KeyValue::new(CLOUD_AVAILABILITY_ZONE, task.availability_zone.clone()),
            ]);
        }
        None => ours.push(KeyValue::new(
            SERVICE_INSTANCE_ID,
            uuid::Uuid::new_v4().to_string(),
        )),
    }
    // The SDK's own default name means "nobody set one".
    let from_env: Vec<KeyValue> = Resource::builder()
        .build()
        .iter()
        .filter(|(k, v)| !(k.as_str() == SERVICE_NAME && v.as_str().starts_with("unknown_service")))
        .map(|(k, v)| KeyValue::new(k.clone(), v.clone()))
        .collect();
    defaults.append(&mut ours);
    Resource::builder_empty()
        .with_attributes(defaults)
        .with_attributes(from_env)
        .build()
}

struct HeaderCarrier<'a>(&'a HeaderMap);

impl Extractor for HeaderCarrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

struct MetaCarrier<'a> {
    traceparent: &'a str,
    tracestate: Option<&'a str>,
}

impl Extractor for MetaCarrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            "traceparent" => Some(self.traceparent),
            "tracestate" => self.tracestate,
            _ => None,
        }
    }
    fn keys(&self) -> Vec<&str> {
        vec!["traceparent", "tracestate"]
    }
}

/// W3C trace context from HTTP headers (`traceparent`, `tracestate`).
pub fn context_from_headers(headers: &HeaderMap) -> Context {
    TraceContextPropagator::new().extract(&HeaderCarrier(headers))
}

/// W3C trace context from an MCP request's `params._meta` (the MCP convention).
pub fn context_from_meta(traceparent: &str, tracestate: Option<&str>) -> Context {
    TraceContextPropagator::new().extract(&MetaCarrier {
        traceparent,
        tracestate,
    })
}
