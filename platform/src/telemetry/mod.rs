//! Logs, metrics and traces. [`Telemetry::init`] builds them from the settings and the standard
//! `OTEL_*` variables and installs them as the process's (`main` does this once); the stack is
//! handed the tracer ([`ServerSpans`]) rather than reaching for a global, so tests can pass an
//! in-memory exporter, a local metrics recorder and their own log writer.

pub mod ecs;
mod json;
pub mod logs;
pub mod metrics;
pub mod semconv;
pub mod traces;

use std::{io::IsTerminal, time::Duration};

use http::HeaderMap;
use opentelemetry::{
    Context, KeyValue,
    propagation::{Extractor, Injector, TextMapPropagator},
    trace::{SpanBuilder, SpanKind, TraceContextExt as _, TracerProvider as _},
};
use opentelemetry_sdk::{
    Resource,
    propagation::TraceContextPropagator,
    trace::{SdkTracer, SdkTracerProvider},
};
use tracing_subscriber::{layer::SubscriberExt as _, util::SubscriberInitExt as _};

use self::{ecs::EcsTask, metrics::Metrics, traces::TraceExport};
use crate::{
    config::{ConfigError, LogFormat, Settings},
    identity::Service,
};

const DEFAULT_ENVIRONMENT: &str = "local";

/// What makes the requests' server spans: a tracer while spans are exported, else `None` (then
/// no span is made at all).
#[derive(Debug, Clone, Default)]
pub struct ServerSpans(pub Option<SdkTracer>);

impl ServerSpans {
    /// A tracer of `provider`, named for the service.
    pub fn new(service: &Service, provider: &SdkTracerProvider) -> Self {
        Self(Some(provider.tracer(service.name)))
    }

    /// Starts a server span when spans are exported (else `None`, and `span` is not called):
    /// `span` gives its parent context and its name and attributes. Returns the context that
    /// holds it; its owner sets the outcome attributes and ends it. For the HTTP server span of a
    /// request refused before the MCP layer, made once the answer is known: nothing runs inside
    /// it, so the OpenTelemetry API serves (the MCP span is a `tracing` span, see `mcp::observe`).
    pub fn start(&self, span: impl FnOnce() -> (Context, SpanBuilder)) -> Option<Context> {
        let tracer = self.0.as_ref()?;
        let (parent, span) = span();
        let span = span
            .with_kind(SpanKind::Server)
            .start_with_context(tracer, &parent);
        Some(parent.with_span(span))
    }
}

/// The installed telemetry; [`Telemetry::shutdown`] flushes what is still buffered.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
    logs: logs::LogGuard,
    pub spans: ServerSpans,
    pub metrics: Metrics,
    pub export: TraceExport,
}

impl Telemetry {
    /// Installs logs (stdout), traces (per `OTEL_*`) and metrics (Prometheus) as the process's.
    /// Must run inside the Tokio runtime (the metrics upkeep and the gRPC exporter use it), once.
    /// Wrong `OTEL_*` values are configuration errors.
    pub fn init<T>(
        service: &Service,
        settings: &Settings<T>,
        task: Option<&EcsTask>,
    ) -> Result<Self, ConfigError> {
        let env = |name: &str| std::env::var(name).ok();
        let export = traces::export_from_env(&env)?;
        opentelemetry::global::set_text_map_propagator(traces::propagator_from_env(&env)?);
        let provider = traces::provider(&export, resource(service, task));
        let spans = match &provider {
            Some(provider) => ServerSpans::new(service, provider),
            None => ServerSpans::default(),
        };
        let format = settings
            .log
            .format
            .unwrap_or(if std::io::stdout().is_terminal() {
                LogFormat::Pretty
            } else {
                LogFormat::Json
            });
        let exported = settings.traces.level.as_str();
        let (log_layer, logs) = logs::layer(
            format,
            &settings.log.level,
            spans.0.is_some().then_some(exported),
            std::io::stdout(),
        );
        let registry = tracing_subscriber::registry().with(log_layer);
        // No `Option` layer: a `None` layer claims interest in every callsite, which would create
        // every span of every dependency.
        match &spans.0 {
            Some(tracer) => registry.with(logs::span_export(tracer, exported)).init(),
            None => registry.init(),
        }
        let metrics = Metrics::install(service);
        Ok(Self {
            provider,
            logs,
            spans,
            metrics,
            export,
        })
    }

    /// Flushes and stops the span exporter within `deadline` (a dead collector cannot hold the
    /// process past it). Logging goes on until the returned guard is dropped.
    pub async fn shutdown(self, deadline: Duration) -> logs::LogGuard {
        let Some(tracer) = self.provider else {
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
pub fn resource(service: &Service, task: Option<&EcsTask>) -> Resource {
    use semconv::*;
    let mut defaults = vec![
        KeyValue::new(SERVICE_NAME, service.name),
        KeyValue::new(DEPLOYMENT_ENVIRONMENT_NAME, DEFAULT_ENVIRONMENT),
    ];
    let mut ours = vec![KeyValue::new(SERVICE_VERSION, service.version)];
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
            // X-Ray links a trace to its log lines through these.
            if let Some(logs) = &task.logs {
                ours.extend([
                    KeyValue::new(AWS_LOG_GROUP_NAMES, string_array(&logs.group)),
                    KeyValue::new(AWS_LOG_STREAM_NAMES, string_array(&logs.stream)),
                ]);
            }
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

fn string_array(value: &str) -> opentelemetry::Value {
    opentelemetry::Value::Array(vec![opentelemetry::StringValue::from(value.to_owned())].into())
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

/// The caller's trace context from HTTP headers, by the global propagator (`OTEL_PROPAGATORS`:
/// W3C `traceparent`/`tracestate` and `baggage` by default).
pub fn context_from_headers(headers: &HeaderMap) -> Context {
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&HeaderCarrier(headers))
    })
}

struct HeaderInjector<'a>(&'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// Writes the current OpenTelemetry context (the innermost exported span entered) into outbound
/// HTTP headers, by the global propagator.
pub fn inject_current_context(headers: &mut HeaderMap) {
    let context = Context::current();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut HeaderInjector(headers))
    });
}

/// W3C trace context from an MCP request's `params._meta` (the MCP convention).
pub fn context_from_meta(traceparent: &str, tracestate: Option<&str>) -> Context {
    TraceContextPropagator::new().extract(&MetaCarrier {
        traceparent,
        tracestate,
    })
}
