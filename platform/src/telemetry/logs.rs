//! Logs: one JSON object per line on stdout (`timestamp`, `level`, `message`, `target`, the
//! event's fields, and flattened the fields of every span the line is in: from the request's span
//! `request_id`, `enduser.id`, `trace_id`, `span_id`; from a tool's `#[instrument]` span its own),
//! or a compact human format for local use, which shows the same spans.
//!
//! Lines are written (see [`super::json`]) by a background writer thread: a request never waits on
//! stdout (a pipe to the container runtime can stall), and under load many lines leave in one
//! write. The queue is bounded: while stdout takes nothing (a stuck log driver) and the queue is
//! full, new lines are dropped rather than stopping the service. They are counted
//! (`log.lines_dropped`, see [`dropped_lines`]) and, once stdout takes lines again, one line
//! reports how many were lost.
//!
//! Which spans exist is decided once for both outputs (logs and traces) by [`SpanFilter`]: the
//! request's span always, spans at the log level, and while spans are exported those the export
//! directive picks (`APP__TRACES__LEVEL`, `EnvFilter` syntax) and the platform's server span.

use std::{
    io,
    sync::{Arc, Mutex, OnceLock},
};

use opentelemetry_sdk::trace::SdkTracer;
use tracing::{Metadata, Subscriber, span, subscriber::Interest};
use tracing_appender::non_blocking::{ErrorCounter, NonBlocking, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::{
    EnvFilter, Layer,
    filter::LevelFilter,
    layer::{Context, Filter},
    registry::LookupSpan,
};

use super::json::{JsonLines, Line, json_string, serialized};
use crate::{config::LogFormat, context::is_request_span};

/// The target of the platform's MCP server span (see `mcp::observe`), exported whatever the
/// export directive says: it is the request's one server span.
pub const SERVER_SPAN_TARGET: &str = "mcp_platform::server";
/// Lines waiting for the writer thread; beyond them, lines are dropped (and counted).
const QUEUED_LINES: usize = 64 * 1024;
/// The longest the exit waits for queued lines to reach stdout.
const FLUSH_LIMIT: std::time::Duration = std::time::Duration::from_millis(1500);
/// Lines gathered into one write to stdout.
const WRITE_BUFFER_BYTES: usize = 64 * 1024;

/// The log writer thread's handle; dropping it writes out what is still queued.
static WRITER: Mutex<Option<WorkerGuard>> = Mutex::new(None);
/// The lines the JSON writer dropped because its queue was full (the latest writer's).
static DROPPED: Mutex<Option<ErrorCounter>> = Mutex::new(None);

/// How many log lines were dropped so far because stdout took nothing and the queue was full.
pub fn dropped_lines() -> u64 {
    DROPPED
        .lock()
        .ok()
        .and_then(|counter| counter.as_ref().map(|c| c.dropped_lines() as u64))
        .unwrap_or(0)
}

/// Keeps logging on; dropping it writes out the queued lines and stops the writer.
#[must_use = "logging stops when the guard is dropped"]
pub struct LogGuard(());

impl Drop for LogGuard {
    fn drop(&mut self) {
        flush();
    }
}

/// Writes out the queued lines (waiting at most about a second) and stops the writer; later
/// lines are lost. For the way out of the process.
pub fn flush() {
    let writer = WRITER.lock().map(|mut w| w.take()).unwrap_or_default();
    // The guard's drop waits about a second, then prints to stdout that it gave up: with stdout
    // stuck that print would never return, so the wait is bounded here.
    let (done, stopped) = std::sync::mpsc::channel();
    let stopping = std::thread::Builder::new()
        .name("log-flush".into())
        .spawn(move || {
            drop(writer);
            let _ = done.send(());
        });
    if stopping.is_ok() {
        let _ = stopped.recv_timeout(FLUSH_LIMIT);
    }
}

/// The log layers: [`SpanFilter`] (the level for events; which spans exist), then JSON lines
/// through a background writer to `output` (stdout in production, a buffer in tests), or the
/// pretty format. `exported`: while spans are exported, the export directive.
pub fn layer<S>(
    format: LogFormat,
    level: &str,
    exported: Option<&str>,
    output: impl std::io::Write + Send + 'static,
) -> (Box<dyn Layer<S> + Send + Sync>, LogGuard)
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let filter = SpanFilter::new(level, exported);
    match format {
        LogFormat::Json => {
            let (writer, guard) = json_writer(output);
            if let Ok(mut slot) = DROPPED.lock() {
                *slot = Some(writer.error_counter());
            }
            if let Ok(mut slot) = WRITER.lock() {
                *slot = Some(guard);
            }
            (
                filter.and_then(JsonLines::new(writer)).boxed(),
                LogGuard(()),
            )
        }
        LogFormat::Pretty => (
            filter
                .and_then(
                    tracing_subscriber::fmt::layer()
                        .compact()
                        .with_writer(Mutex::new(output)),
                )
                .boxed(),
            LogGuard(()),
        ),
    }
}

/// The background writer of JSON lines to `output`: lossy, with drops reported (see the module).
fn json_writer(output: impl io::Write + Send + 'static) -> (NonBlocking, WorkerGuard) {
    let dropped = Arc::new(OnceLock::new());
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(QUEUED_LINES)
        .thread_name("log-writer")
        .finish(ReportDrops {
            out: io::BufWriter::with_capacity(WRITE_BUFFER_BYTES, output),
            dropped: dropped.clone(),
            reported: 0,
        });
    let _ = dropped.set(writer.error_counter());
    (writer, guard)
}

/// Sends spans to OpenTelemetry: the platform's server span, and the spans of every crate that
/// `directive` (`EnvFilter` syntax) picks, as children of the span they start in. Events stay log
/// lines (not span events).
pub fn span_export<S>(tracer: &SdkTracer, directive: &str) -> impl Layer<S> + use<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    tracing_opentelemetry::layer()
        .with_tracer(tracer.clone())
        // Per-span extras that cost time on every span and say little: source location, thread,
        // busy/idle timings, the tracing target.
        .with_location(false)
        .with_threads(false)
        .with_tracked_inactivity(false)
        .with_target(false)
        // While a span is entered its OpenTelemetry context is the current one, so a client that
        // propagates `Context::current()` sends the innermost span as the parent.
        .with_context_activation(true)
        .with_filter(ExportFilter(EnvFilter::new(directive)))
}

/// Which spans go to OpenTelemetry (see [`span_export`]).
struct ExportFilter(EnvFilter);

impl ExportFilter {
    /// Never the request's context span (the server span is the request's one server span);
    /// always the server span; else the directive decides.
    fn fixed(meta: &Metadata<'_>) -> Option<bool> {
        if !meta.is_span() || is_request_span(meta) {
            Some(false)
        } else if meta.target() == SERVER_SPAN_TARGET {
            Some(true)
        } else {
            None
        }
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Filter<S> for ExportFilter {
    fn enabled(&self, meta: &Metadata<'_>, cx: &Context<'_, S>) -> bool {
        Self::fixed(meta).unwrap_or_else(|| Filter::enabled(&self.0, meta, cx))
    }

    fn callsite_enabled(&self, meta: &'static Metadata<'static>) -> Interest {
        match Self::fixed(meta) {
            Some(true) => Interest::always(),
            Some(false) => Interest::never(),
            None => Filter::<S>::callsite_enabled(&self.0, meta),
        }
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        None
    }

    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        Filter::on_new_span(&self.0, attrs, id, ctx);
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, ctx: Context<'_, S>) {
        Filter::on_record(&self.0, id, values, ctx);
    }

    fn on_enter(&self, id: &span::Id, ctx: Context<'_, S>) {
        Filter::on_enter(&self.0, id, ctx);
    }

    fn on_exit(&self, id: &span::Id, ctx: Context<'_, S>) {
        Filter::on_exit(&self.0, id, ctx);
    }

    fn on_close(&self, id: span::Id, ctx: Context<'_, S>) {
        Filter::on_close(&self.0, id, ctx);
    }
}

/// Makes a panic an error log line like any other (JSON, with the request's fields), not raw
/// stderr. For `main`, once logging is on.
pub fn log_panics() {
    std::panic::set_hook(Box::new(|info| tracing::error!(panic = %info, "panic")));
}

/// What exists, for every layer (a global filter: per-layer filters on the log output would run
/// their checks on every span entry and exit): events at the log level; the request's span always
/// (it carries the request's fields); spans at the log level; while spans are exported, the
/// spans the export directive picks and the server span.
pub struct SpanFilter {
    level: EnvFilter,
    /// `level` has span directives: its span hooks must run.
    dynamic: bool,
    exported: Option<EnvFilter>,
}

impl SpanFilter {
    pub fn new(level: &str, exported: Option<&str>) -> Self {
        Self {
            level: EnvFilter::new(level),
            // Only span directives (`target[span{field=value}]=level`) make the level depend on
            // the spans a line is in.
            dynamic: level.contains('['),
            exported: exported.map(EnvFilter::new),
        }
    }

    /// Spans that exist whatever the level.
    fn always(&self, meta: &Metadata<'_>) -> bool {
        meta.is_span()
            && (is_request_span(meta)
                || (self.exported.is_some() && meta.target() == SERVER_SPAN_TARGET))
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for SpanFilter {
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        if self.always(meta) {
            return Interest::always();
        }
        let logged = Layer::<S>::register_callsite(&self.level, meta);
        match &self.exported {
            Some(exported) if meta.is_span() => {
                let picked = Layer::<S>::register_callsite(exported, meta);
                if logged.is_always() || picked.is_always() {
                    Interest::always()
                } else if logged.is_never() && picked.is_never() {
                    Interest::never()
                } else {
                    Interest::sometimes()
                }
            }
            _ => logged,
        }
    }

    fn enabled(&self, meta: &Metadata<'_>, ctx: Context<'_, S>) -> bool {
        self.always(meta)
            || Layer::enabled(&self.level, meta, ctx.clone())
            || (meta.is_span()
                && self
                    .exported
                    .as_ref()
                    .is_some_and(|exported| Layer::enabled(exported, meta, ctx)))
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        // The request's span is at INFO whatever the level.
        let hints = [
            self.level.max_level_hint(),
            self.exported.as_ref().and_then(|e| e.max_level_hint()),
            Some(LevelFilter::INFO),
        ];
        if self.exported.is_some() && hints[1].is_none() {
            return None;
        }
        hints.into_iter().flatten().max()
    }

    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        if self.dynamic {
            self.level.on_new_span(attrs, id, ctx);
        }
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, ctx: Context<'_, S>) {
        if self.dynamic {
            self.level.on_record(id, values, ctx);
        }
    }

    fn on_enter(&self, id: &span::Id, ctx: Context<'_, S>) {
        if self.dynamic {
            self.level.on_enter(id, ctx);
        }
    }

    fn on_exit(&self, id: &span::Id, ctx: Context<'_, S>) {
        if self.dynamic {
            self.level.on_exit(id, ctx);
        }
    }

    fn on_close(&self, id: span::Id, ctx: Context<'_, S>) {
        if self.dynamic {
            self.level.on_close(id, ctx);
        }
    }
}

/// The writer thread's output: after a line is through (stdout took it, or the buffer did),
/// reports the lines dropped since the last report in a line of its own. The writer thread is
/// the one place that knows stdout flows again; tracing-appender counts drops but never says so
/// in the log.
struct ReportDrops<W: io::Write> {
    out: io::BufWriter<W>,
    /// Set once the writer exists (it makes the counter).
    dropped: Arc<OnceLock<ErrorCounter>>,
    reported: usize,
}

impl<W: io::Write> io::Write for ReportDrops<W> {
    /// Called with one whole line at a time.
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        self.out.write_all(line)?;
        let dropped = self.dropped.get().map_or(0, ErrorCounter::dropped_lines);
        if dropped > self.reported {
            let mut report = Line::new();
            report.head(&tracing::Level::WARN);
            report.field("message", |buf| {
                json_string(
                    buf,
                    "log lines dropped: stdout took nothing and the queue was full",
                )
            });
            report.field("dropped", |buf| serialized(buf, &(dropped - self.reported)));
            report.field("dropped_total", |buf| serialized(buf, &dropped));
            report.field("target", |buf| json_string(buf, module_path!()));
            self.out.write_all(report.finish())?;
            self.reported = dropped;
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use std::{
        fmt,
        io::{self, Write as _},
        sync::{Arc, Mutex},
    };
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    /// What the writer thread wrote.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// Takes nothing until opened, as a pipe nobody reads.
    struct Stuck {
        open: Arc<(Mutex<bool>, std::sync::Condvar)>,
        out: Captured,
    }

    impl io::Write for Stuck {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            let (open, opened) = &*self.open;
            let _open = opened.wait_while(open.lock().unwrap(), |open| !*open);
            self.out.write(bytes)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_stuck_output_drops_lines_without_waiting_then_reports_them() {
        let open = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
        let out = Captured::default();
        let (writer, guard) = json_writer(Stuck {
            open: open.clone(),
            out: out.clone(),
        });
        let lines = 4 * QUEUED_LINES;
        let started = std::time::Instant::now();
        for n in 0..lines {
            writer
                .clone()
                .write_all(format!("{n}\n").as_bytes())
                .unwrap();
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        let dropped = writer.error_counter().dropped_lines();
        assert!(dropped > 0);
        *open.0.lock().unwrap() = true;
        open.1.notify_all();
        drop(guard);
        let out = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let written = out.lines().filter(|l| !l.starts_with('{')).count();
        let reports: Vec<serde_json::Value> = out
            .lines()
            .filter(|l| l.starts_with('{'))
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(reports.len(), 1, "{reports:?}");
        assert_eq!(reports[0]["dropped"], dropped);
        assert_eq!(reports[0]["dropped_total"], dropped);
        assert_eq!(reports[0]["level"], "WARN");
        // Every line is either written or counted.
        assert_eq!(written + dropped, lines);
    }

    /// The JSON lines `log` writes through the layers `layer` builds for `level` and `exported`.
    fn lines_of(level: &str, exported: Option<&str>, log: impl FnOnce()) -> Vec<serde_json::Value> {
        let captured = Captured::default();
        let (writer, guard) = tracing_appender::non_blocking(captured.clone());
        let subscriber = tracing_subscriber::registry()
            .with(SpanFilter::new(level, exported).and_then(JsonLines::new(writer)));
        tracing::subscriber::with_default(subscriber, log);
        drop(guard);
        let out = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        out.lines()
            .map(|l| serde_json::from_str(l).expect(l))
            .collect()
    }

    #[test]
    fn lines_carry_the_fields_of_the_spans_they_are_in() {
        let lines = lines_of("info", None, || {
            let request = crate::context::request_span("r-1");
            request.record("enduser.id", "alice");
            let _request = request.enter();
            let lookup = tracing::info_span!(target: "tools::weather", "lookup", city = "Paris");
            lookup.in_scope(|| tracing::info!(attempt = 2, "calling the API"));
            tracing::info!("after the lookup");
        });
        assert_eq!(lines.len(), 2, "{lines:?}");
        let first = &lines[0];
        for (key, value) in [
            ("message", "calling the API"),
            ("level", "INFO"),
            ("target", "mcp_platform::telemetry::logs::tests"),
            ("request_id", "r-1"),
            ("enduser.id", "alice"),
            ("city", "Paris"),
        ] {
            assert_eq!(first[key], value, "{key}: {first}");
        }
        assert_eq!(first["attempt"], 2);
        assert!(
            humantime::parse_rfc3339(first["timestamp"].as_str().unwrap()).is_ok(),
            "{first}"
        );
        assert_eq!(lines[1]["request_id"], "r-1");
        assert!(
            lines[1].get("city").is_none(),
            "left the span: {}",
            lines[1]
        );
    }

    #[test]
    fn the_level_picks_lines_and_spans_but_the_request_span_always_exists() {
        let lines = lines_of("warn", Some("debug"), || {
            let request = crate::context::request_span("r-2");
            assert!(
                !request.is_disabled(),
                "the request span exists at any level"
            );
            let exported = tracing::debug_span!(target: "aws_sdk_dynamodb", "GetItem");
            assert!(!exported.is_disabled(), "the export directive picks spans");
            request.in_scope(|| {
                tracing::info!("below the level");
                tracing::warn!("at the level");
            });
        });
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert_eq!(lines[0]["message"], "at the level");
        assert_eq!(lines[0]["request_id"], "r-2");
        lines_of("warn", None, || {
            let span = tracing::info_span!(target: "aws_sdk_dynamodb", "GetItem");
            assert!(span.is_disabled(), "not logged, not exported: never made");
        });
    }

    /// Writes a little, then fails, as a buggy impl in a tool's types might.
    struct Failing;

    impl fmt::Debug for Failing {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("half")?;
            Err(fmt::Error)
        }
    }

    #[test]
    fn a_failing_debug_still_gives_a_line_and_fields_of_spans_too() {
        let lines = lines_of("info", None, || {
            let span = tracing::info_span!("work", state = ?Failing, quote = "say \"hi\"");
            span.in_scope(|| tracing::info!(debug = ?Failing, "still logged"));
        });
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert_eq!(lines[0]["message"], "still logged");
        assert_eq!(lines[0]["debug"], "half");
        assert_eq!(lines[0]["state"], "half");
        assert_eq!(lines[0]["quote"], "say \"hi\"");
    }

    #[test]
    fn span_directives_still_pick_lines() {
        let lines = lines_of("warn,[lookup]=debug", None, || {
            let lookup = tracing::info_span!("lookup");
            lookup.in_scope(|| tracing::debug!("inside the span"));
            tracing::debug!("outside it");
        });
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert_eq!(lines[0]["message"], "inside the span");
    }
}
