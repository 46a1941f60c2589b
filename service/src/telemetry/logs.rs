//! Logs: one JSON object per line on stdout (`timestamp`, `level`, `message`, `target`, the
//! event's fields, and from the enclosing spans `request_id`, `trace_id`, `span_id`), or a
//! compact human format for local use.

use std::{collections::BTreeMap, fmt};

use opentelemetry::trace::TraceContextExt as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use serde_json::Value;
use tracing::{
    Event, Subscriber,
    field::{Field, Visit},
    span,
};
use tracing_subscriber::{
    EnvFilter, Layer,
    filter::FilterExt as _,
    filter::filter_fn,
    fmt::{
        FmtContext, FormatEvent, FormatFields,
        format::Writer,
        time::{FormatTime, SystemTime},
    },
    layer::{Context, SubscriberExt},
    registry::LookupSpan,
    util::SubscriberInitExt,
};

use crate::config::LogFormat;

/// Span fields copied onto every log line written inside the span...
const CONTEXT_FIELDS: &[&str] = &["request_id", "enduser.id"];
/// ...from the spans that carry them (other spans exist only when traces are exported).
const CONTEXT_SPANS: &[&str] = &["http.server"];
const TRACER_NAME: &str = "mcp-server";

/// Installs the global subscriber: logs filtered by `level`, and (when tracing is on) spans of
/// this crate sent to OpenTelemetry whatever the log level is.
pub fn install(format: LogFormat, level: &str, tracer: Option<&SdkTracerProvider>) {
    let logs = match format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .event_format(JsonLines)
            .boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer().compact().boxed(),
    }
    .with_filter(EnvFilter::new(level));
    let spans = tracer.map(|provider| {
        use opentelemetry::trace::TracerProvider as _;
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer(TRACER_NAME))
            // Per-span extras that cost time on every poll and say little: source location,
            // thread, busy/idle timings, the tracing target, and attaching the OpenTelemetry
            // context on each enter (nothing here reads `Context::current()`).
            .with_location(false)
            .with_threads(false)
            .with_tracked_inactivity(false)
            .with_target(false)
            .with_context_activation(false)
            .with_filter(filter_fn(|meta| {
                meta.is_span() && meta.target().starts_with("mcp_server")
            }))
    });
    // Only the spans that carry context fields, and only when the log level shows them: a layer
    // without a filter would enable every callsite of every dependency.
    let ours = filter_fn(|meta| {
        meta.is_span()
            && meta.target().starts_with("mcp_server")
            && CONTEXT_SPANS.contains(&meta.name())
    });
    let context = ContextFieldsLayer.with_filter(EnvFilter::new(level).and(ours));
    tracing_subscriber::registry()
        .with(context)
        .with(spans)
        .with(logs)
        .init();
    // A panic is an error log line like any other (JSON, with the request's ids), not raw stderr.
    std::panic::set_hook(Box::new(|info| tracing::error!(panic = %info, "panic")));
}

/// The [`CONTEXT_FIELDS`] of a span, kept in its extensions.
#[derive(Default)]
struct ContextFields(BTreeMap<&'static str, Value>);

struct ContextFieldsLayer;

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for ContextFieldsLayer {
    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        let mut fields = ContextFields::default();
        attrs.record(&mut ContextVisitor(&mut fields));
        if !fields.0.is_empty()
            && let Some(span) = ctx.span(id)
        {
            span.extensions_mut().insert(fields);
        }
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        match extensions.get_mut::<ContextFields>() {
            Some(fields) => values.record(&mut ContextVisitor(fields)),
            None => {
                let mut fields = ContextFields::default();
                values.record(&mut ContextVisitor(&mut fields));
                if !fields.0.is_empty() {
                    extensions.insert(fields);
                }
            }
        }
    }
}

struct ContextVisitor<'a>(&'a mut ContextFields);

impl ContextVisitor<'_> {
    fn keep(&mut self, field: &Field, value: Value) {
        if let Some(name) = CONTEXT_FIELDS.iter().find(|n| **n == field.name()) {
            self.0.0.insert(name, value);
        }
    }
}

impl Visit for ContextVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.keep(field, Value::from(value));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.keep(field, Value::from(format!("{value:?}")));
    }
}

/// One log line, written as JSON while the event's fields are visited (no intermediate map).
/// The first value of a key wins, so event fields shadow span context fields.
struct Line {
    buf: Vec<u8>,
    keys: Vec<&'static str>,
}

impl Line {
    fn new() -> Self {
        Self {
            buf: Vec::with_capacity(384),
            keys: Vec::with_capacity(16),
        }
    }

    fn key(&mut self, key: &'static str) -> bool {
        if self.keys.contains(&key) {
            return false;
        }
        self.keys.push(key);
        self.buf
            .push(if self.keys.len() == 1 { b'{' } else { b',' });
        let _ = serde_json::to_writer(&mut self.buf, key);
        self.buf.push(b':');
        true
    }

    fn value(&mut self, key: &'static str, value: &(impl serde::Serialize + ?Sized)) {
        if self.key(key) && serde_json::to_writer(&mut self.buf, value).is_err() {
            self.buf.extend_from_slice(b"null");
        }
    }

    fn finish(mut self) -> Vec<u8> {
        self.buf.extend_from_slice(if self.keys.is_empty() {
            b"{}\n"
        } else {
            b"}\n"
        });
        self.buf
    }
}

impl Visit for Line {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.value(field.name(), value);
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.value(field.name(), &value);
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.value(field.name(), &value);
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        // Non-finite numbers are not JSON; serde writes them as null.
        self.value(field.name(), &value);
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.value(field.name(), &value);
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.value(field.name(), &value.to_string());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.value(field.name(), &format!("{value:?}"));
    }
}

struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut line = Line::new();
        let mut timestamp = String::with_capacity(32);
        SystemTime.format_time(&mut Writer::new(&mut timestamp))?;
        line.value("timestamp", &timestamp);
        line.value("level", event.metadata().level().as_str());
        event.record(&mut line);
        line.value("target", event.metadata().target());
        if let Some(scope) = ctx.event_scope() {
            let mut innermost = None;
            for span in scope {
                innermost.get_or_insert_with(|| span.id());
                if let Some(fields) = span.extensions().get::<ContextFields>() {
                    for (name, value) in &fields.0 {
                        line.value(name, value);
                    }
                }
            }
            let cx = innermost.and_then(|id| {
                tracing::dispatcher::get_default(|d| {
                    tracing_opentelemetry::get_otel_context(&id, d)
                })
            });
            if let Some(cx) = cx {
                let span = cx.span();
                let sc = span.span_context();
                if sc.is_valid() {
                    line.value("trace_id", &sc.trace_id().to_string());
                    line.value("span_id", &sc.span_id().to_string());
                }
            }
        }
        let bytes = line.finish();
        // serde_json writes valid UTF-8.
        writer.write_str(std::str::from_utf8(&bytes).map_err(|_| fmt::Error)?)
    }
}
