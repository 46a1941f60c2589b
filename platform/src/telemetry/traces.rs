//! Traces: an OTLP exporter configured by the standard `OTEL_*` variables, behind a batch
//! processor whose queue is bounded by us so that every span that is not exported is counted
//! (`otel_spans_dropped_total`) and no request ever waits for the collector.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use opentelemetry::{
    Context,
    propagation::{TextMapCompositePropagator, TextMapPropagator},
};
use opentelemetry_aws::trace::XrayPropagator;
use opentelemetry_otlp::{SpanExporter as OtlpExporter, WithExportConfig as _};
use opentelemetry_sdk::{
    Resource,
    error::OTelSdkResult,
    propagation::{BaggagePropagator, TraceContextPropagator},
    trace::{
        BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider, Span, SpanData, SpanExporter,
        SpanProcessor,
    },
};

use super::metrics::{labels, names};
use crate::config::ConfigError;

const DEFAULT_QUEUE: usize = 2048;

/// What the `OTEL_*` variables ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TraceExport {
    /// `OTEL_SDK_DISABLED=true`: no tracing SDK at all.
    Disabled,
    /// No endpoint configured (or `OTEL_TRACES_EXPORTER=none`): no tracing SDK either, since
    /// spans that go nowhere would only cost time.
    Local,
    Otlp {
        grpc: bool,
    },
}

fn env(vars: &dyn Fn(&str) -> Option<String>, name: &str) -> Option<String> {
    vars(name)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

fn env_error(name: &str, value: &str, allowed: &str) -> ConfigError {
    let mut err = ConfigError::new(name, Some(value.to_owned()), allowed);
    err.env = Some(name.to_owned());
    err
}

/// Reads and checks the standard variables; a wrong value stops start-up like any other setting.
pub fn export_from_env(vars: &dyn Fn(&str) -> Option<String>) -> Result<TraceExport, ConfigError> {
    match env(vars, "OTEL_SDK_DISABLED").map(|v| v.to_ascii_lowercase()) {
        Some(v) if v == "true" => return Ok(TraceExport::Disabled),
        Some(v) if v != "false" => return Err(env_error("OTEL_SDK_DISABLED", &v, "true or false")),
        _ => {}
    }
    if let Some(sampler) = env(vars, "OTEL_TRACES_SAMPLER") {
        const SAMPLERS: &[&str] = &[
            "always_on",
            "always_off",
            "traceidratio",
            "parentbased_always_on",
            "parentbased_always_off",
            "parentbased_traceidratio",
        ];
        if !SAMPLERS.contains(&sampler.as_str()) {
            return Err(env_error(
                "OTEL_TRACES_SAMPLER",
                &sampler,
                &format!("one of {}", SAMPLERS.join(", ")),
            ));
        }
        if sampler.ends_with("traceidratio") {
            let arg = env(vars, "OTEL_TRACES_SAMPLER_ARG").unwrap_or_else(|| "1.0".into());
            if !arg.parse::<f64>().is_ok_and(|r| (0.0..=1.0).contains(&r)) {
                return Err(env_error(
                    "OTEL_TRACES_SAMPLER_ARG",
                    &arg,
                    "a ratio between 0 and 1",
                ));
            }
        }
    }
    match env(vars, "OTEL_TRACES_EXPORTER").as_deref() {
        None | Some("otlp") => {}
        Some("none") => return Ok(TraceExport::Local),
        Some(other) => return Err(env_error("OTEL_TRACES_EXPORTER", other, "otlp or none")),
    }
    if env(vars, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_none()
        && env(vars, "OTEL_EXPORTER_OTLP_ENDPOINT").is_none()
    {
        return Ok(TraceExport::Local);
    }
    let (name, protocol) = match env(vars, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") {
        Some(p) => ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", p),
        None => (
            "OTEL_EXPORTER_OTLP_PROTOCOL",
            env(vars, "OTEL_EXPORTER_OTLP_PROTOCOL").unwrap_or_else(|| "http/protobuf".into()),
        ),
    };
    match protocol.as_str() {
        "http/protobuf" => Ok(TraceExport::Otlp { grpc: false }),
        "grpc" => Ok(TraceExport::Otlp { grpc: true }),
        other => Err(env_error(name, other, "http/protobuf or grpc")),
    }
}

/// The propagators `OTEL_PROPAGATORS` names (comma list; default `tracecontext,baggage`):
/// `tracecontext` (W3C `traceparent`/`tracestate`), `baggage` (W3C), `xray` (`X-Amzn-Trace-Id`),
/// `none`. Any other value is a configuration error.
pub fn propagator_from_env(
    vars: &dyn Fn(&str) -> Option<String>,
) -> Result<TextMapCompositePropagator, ConfigError> {
    const NAME: &str = "OTEL_PROPAGATORS";
    let names = env(vars, NAME).unwrap_or_else(|| "tracecontext,baggage".into());
    let mut propagators: Vec<Box<dyn TextMapPropagator + Send + Sync>> = Vec::new();
    for name in names.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        match name {
            "tracecontext" => propagators.push(Box::new(TraceContextPropagator::new())),
            "baggage" => propagators.push(Box::new(BaggagePropagator::new())),
            "xray" => propagators.push(Box::new(XrayPropagator::new())),
            "none" => {}
            other => {
                return Err(env_error(
                    NAME,
                    other,
                    "a comma list of tracecontext, baggage, xray, none",
                ));
            }
        }
    }
    Ok(TextMapCompositePropagator::new(propagators))
}

/// Builds the tracer provider (the OTLP exporter reads its endpoint, headers and timeout from
/// the standard variables itself). `None` when there is nothing to export.
pub fn provider(export: &TraceExport, resource: Resource) -> Option<SdkTracerProvider> {
    let builder = SdkTracerProvider::builder().with_resource(resource);
    let builder = match export {
        TraceExport::Disabled | TraceExport::Local => return None,
        TraceExport::Otlp { grpc } => {
            let exporter = if *grpc {
                OtlpExporter::builder()
                    .with_tonic()
                    .with_timeout(Duration::from_secs(5))
                    .build()
            } else {
                OtlpExporter::builder()
                    .with_http()
                    .with_timeout(Duration::from_secs(5))
                    .build()
            };
            match exporter {
                Ok(exporter) => builder.with_span_processor(BoundedProcessor::new(exporter)),
                Err(err) => {
                    // The endpoint is unusable; serve anyway, and say so.
                    eprintln!("OTLP trace exporter not started: {err}");
                    builder
                }
            }
        }
    };
    Some(builder.build())
}

/// A batch processor whose queue we bound ourselves: a span that finds `capacity` spans not yet
/// handed to the exporter is dropped and counted, instead of being dropped silently inside the
/// SDK's queue.
#[derive(Debug)]
struct BoundedProcessor {
    inner: BatchSpanProcessor,
    pending: Arc<AtomicUsize>,
    capacity: usize,
}

impl BoundedProcessor {
    fn new(exporter: OtlpExporter) -> Self {
        let capacity = std::env::var("OTEL_BSP_MAX_QUEUE_SIZE")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(DEFAULT_QUEUE);
        let pending = Arc::new(AtomicUsize::new(0));
        let exporter = CountingExporter {
            inner: exporter,
            pending: pending.clone(),
        };
        let inner = BatchSpanProcessor::builder(exporter)
            .with_batch_config(
                BatchConfigBuilder::default()
                    .with_max_queue_size(capacity)
                    .build(),
            )
            .build();
        Self {
            inner,
            pending,
            capacity,
        }
    }
}

fn count_dropped(reason: &'static str, n: usize) {
    metrics::counter!(names::SPANS_DROPPED, labels::REASON => reason).increment(n as u64);
}

impl SpanProcessor for BoundedProcessor {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        if self.pending.fetch_add(1, Ordering::Relaxed) >= self.capacity {
            self.pending.fetch_sub(1, Ordering::Relaxed);
            count_dropped("queue_full", 1);
            return;
        }
        self.inner.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// Counts what leaves the queue, and what the collector never got.
#[derive(Debug)]
struct CountingExporter {
    inner: OtlpExporter,
    pending: Arc<AtomicUsize>,
}

impl SpanExporter for CountingExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let n = batch.len();
        self.pending.fetch_sub(n, Ordering::Relaxed);
        let result = self.inner.export(batch).await;
        if result.is_err() {
            count_dropped("export_failed", n);
        }
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn export(pairs: &[(&str, &str)]) -> Result<TraceExport, ConfigError> {
        let map: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        export_from_env(&|k| map.get(k).cloned())
    }

    #[test]
    fn reads_the_standard_variables() {
        assert_eq!(export(&[]).unwrap(), TraceExport::Local);
        assert_eq!(
            export(&[("OTEL_SDK_DISABLED", "true")]).unwrap(),
            TraceExport::Disabled
        );
        let http = [("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")];
        assert_eq!(export(&http).unwrap(), TraceExport::Otlp { grpc: false });
        let grpc = [
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c:4317"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ];
        assert_eq!(export(&grpc).unwrap(), TraceExport::Otlp { grpc: true });
        let none = [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_TRACES_EXPORTER", "none"),
        ];
        assert_eq!(export(&none).unwrap(), TraceExport::Local);
    }

    #[test]
    fn wrong_values_name_the_variable() {
        let cases = [
            (
                vec![
                    ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c"),
                    ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
                ],
                "OTEL_EXPORTER_OTLP_PROTOCOL",
            ),
            (
                vec![("OTEL_TRACES_SAMPLER", "sometimes")],
                "OTEL_TRACES_SAMPLER",
            ),
            (
                vec![
                    ("OTEL_TRACES_SAMPLER", "traceidratio"),
                    ("OTEL_TRACES_SAMPLER_ARG", "2"),
                ],
                "OTEL_TRACES_SAMPLER_ARG",
            ),
            (vec![("OTEL_SDK_DISABLED", "yes")], "OTEL_SDK_DISABLED"),
        ];
        for (vars, name) in cases {
            let msg = export(&vars).unwrap_err().to_string();
            assert!(
                msg.starts_with(&format!("invalid configuration: {name} ")),
                "{msg}"
            );
        }
    }
}
