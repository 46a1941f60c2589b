//! Logs: one JSON object per line on stdout (`timestamp`, `level`, `message`, `target`, the
//! event's fields, and from the enclosing spans `request_id`, `trace_id`, `span_id`), or a
//! compact human format for local use.
//!
//! JSON lines are written by a background thread: a request never waits on stdout (a pipe to
//! the container runtime can stall), and under load many lines leave in one write. The queue is
//! bounded: while stdout takes nothing (a stuck log driver) and the queue is full, new lines are
//! dropped rather than stopping the service. They are counted (`log.lines_dropped`, see
//! [`dropped_lines`]) and, once stdout takes lines again, one line reports how many were lost.

use std::{
    cell::RefCell,
    fmt,
    io::{self, Write as _},
    sync::{Arc, Mutex, OnceLock},
};

use opentelemetry_sdk::trace::SdkTracer;
use tracing::{
    Event, Metadata, Subscriber,
    field::{Field, Visit},
    span,
    subscriber::Interest,
};
use tracing_appender::non_blocking::{ErrorCounter, NonBlocking, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::{
    EnvFilter, Layer,
    field::{MakeVisitor, VisitFmt, VisitOutput},
    filter::{LevelFilter, filter_fn},
    fmt::format::{DefaultVisitor, Writer},
    layer::Context,
    registry::LookupSpan,
};

use crate::{
    config::LogFormat,
    identity::{PLATFORM_CRATE, Service},
};

/// Span fields copied onto every log line written inside the span (the innermost span's value
/// wins)...
const CONTEXT_FIELDS: &[&str] = &["request_id", "enduser.id", "trace_id", "span_id"];
/// ...from the spans that carry them: the request's...
const CONTEXT_SPAN: &str = "http.server";
/// ...and, while spans are exported, the MCP operation's (its span id). rmcp runs the handler in
/// a task that enters only this span, which leads to the HTTP span above it.
const MCP_SPAN: &str = "mcp.server";
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

/// The log layer: lines filtered by `level`, JSON through a background writer to `output`
/// (stdout in production, a buffer in tests), or the pretty format on a terminal. `exported`:
/// while spans are exported, the crate whose `tracing` spans go to OpenTelemetry (the service's);
/// the MCP span's ids are then worth carrying into log lines too.
pub fn layer<S>(
    format: LogFormat,
    level: &str,
    exported: Option<&'static str>,
    output: impl std::io::Write + Send + 'static,
) -> (Box<dyn Layer<S> + Send + Sync>, LogGuard)
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    match format {
        LogFormat::Json => {
            let (writer, guard) = json_writer(output);
            if let Ok(mut slot) = DROPPED.lock() {
                *slot = Some(writer.error_counter());
            }
            let filter = LogFilter::new(level, exported);
            let layer = JsonLogLayer { writer, filter }.boxed();
            if let Ok(mut slot) = WRITER.lock() {
                *slot = Some(guard);
            }
            (layer, LogGuard(()))
        }
        LogFormat::Pretty => (
            tracing_subscriber::fmt::layer()
                .compact()
                .fmt_fields(PrettyFields)
                .with_filter(EnvFilter::new(level))
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

/// Sends the `tracing` spans the service's tools open to OpenTelemetry, whatever the log level.
pub fn span_export<S>(service: &Service, tracer: &SdkTracer) -> impl Layer<S> + use<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let tools = service.crate_name;
    tracing_opentelemetry::layer()
        .with_tracer(tracer.clone())
        // Per-span extras that cost time on every poll and say little: source location,
        // thread, busy/idle timings, the tracing target, and attaching the OpenTelemetry
        // context on each enter (nothing here reads `Context::current()`).
        .with_location(false)
        .with_threads(false)
        .with_tracked_inactivity(false)
        .with_target(false)
        .with_context_activation(false)
        // The platform's own spans are made with the OpenTelemetry API (see
        // `telemetry::Tracing`); its `tracing` spans only carry log context.
        .with_filter(filter_fn(move |meta| is_exported(meta, tools)))
}

/// Whether `meta` is one of the spans of `tools` (the service's crate), which go to
/// OpenTelemetry while spans are exported.
fn is_exported(meta: &Metadata<'_>, tools: &str) -> bool {
    meta.is_span() && meta.target().starts_with(tools)
}

/// Makes a panic an error log line like any other (JSON, with the request's ids), not raw
/// stderr. For `main`, once logging is on.
pub fn log_panics() {
    std::panic::set_hook(Box::new(|info| tracing::error!(panic = %info, "panic")));
}

/// The [`CONTEXT_FIELDS`] of a span, kept in its extensions (first value of each wins).
#[derive(Default)]
struct ContextFields(Vec<(&'static str, ContextValue)>);

/// Ids are kept as numbers and written as hex straight into the line: no string per span.
enum ContextValue {
    Text(String),
    /// A trace id (written as 32 hex digits).
    Id128(u128),
    /// A span id (written as 16 hex digits).
    Id64(u64),
}

impl ContextFields {
    fn keep(&mut self, field: &Field, value: impl FnOnce() -> ContextValue) {
        if let Some(name) = CONTEXT_FIELDS.iter().find(|n| **n == field.name())
            && !self.0.iter().any(|(n, _)| n == name)
        {
            self.0.push((name, value()));
        }
    }
}

impl Visit for ContextFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.keep(field, || ContextValue::Text(value.to_owned()));
    }
    fn record_u128(&mut self, field: &Field, value: u128) {
        self.keep(field, || ContextValue::Id128(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.keep(field, || ContextValue::Id64(value));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.keep(field, || {
            ContextValue::Text(text(format_args!("{value:?}")))
        });
    }
}

/// The pretty format's fields: tracing's defaults, with the log ids (numbers, see
/// [`ContextValue`]) in hex like everywhere else.
struct PrettyFields;

impl<'a> MakeVisitor<Writer<'a>> for PrettyFields {
    type Visitor = HexIds<'a>;

    fn make_visitor(&self, target: Writer<'a>) -> HexIds<'a> {
        HexIds(DefaultVisitor::new(target, true))
    }
}

struct HexIds<'a>(DefaultVisitor<'a>);

impl Visit for HexIds<'_> {
    fn record_u128(&mut self, field: &Field, value: u128) {
        match field.name() {
            "trace_id" => self.0.record_debug(field, &format_args!("{value:032x}")),
            _ => self.0.record_u128(field, value),
        }
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        match field.name() {
            "span_id" => self.0.record_debug(field, &format_args!("{value:016x}")),
            _ => self.0.record_u64(field, value),
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.record_str(field, value);
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.record_error(field, value);
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.record_debug(field, value);
    }
}

impl VisitOutput<fmt::Result> for HexIds<'_> {
    fn finish(self) -> fmt::Result {
        self.0.finish()
    }
}

impl VisitFmt for HexIds<'_> {
    fn writer(&mut self) -> &mut dyn fmt::Write {
        self.0.writer()
    }
}

/// What the JSON log layer lets through. It filters for every layer (a global filter): as a
/// per-layer filter, its checks on every entry to and exit from a span cost ~4,700 instructions
/// a request (callgrind, 200 calls in flight). So it also lets through the spans exported to
/// OpenTelemetry, which that layer's own filter picks.
struct LogFilter {
    level: EnvFilter,
    /// `level` has span directives: its span hooks must run.
    dynamic: bool,
    /// While spans are exported: the crate whose spans go to OpenTelemetry, whatever the level.
    exported: Option<&'static str>,
}

impl LogFilter {
    fn new(level: &str, exported: Option<&'static str>) -> Self {
        Self {
            level: EnvFilter::new(level),
            // Only span directives (`target[span{field=value}]=level`) make the level depend on
            // the spans a line is in.
            dynamic: level.contains('['),
            exported,
        }
    }

    /// Events, and only the platform's spans that carry the context fields: a span nobody wants
    /// is never created (without a collector, not even the MCP span).
    fn logged(&self, meta: &Metadata<'_>) -> bool {
        meta.is_event()
            || (meta.target().starts_with(PLATFORM_CRATE)
                && (meta.name() == CONTEXT_SPAN
                    || (self.exported.is_some() && meta.name() == MCP_SPAN)))
    }

    fn exported(&self, meta: &Metadata<'_>) -> bool {
        self.exported.is_some_and(|tools| is_exported(meta, tools))
    }
}

/// Writes each event as one JSON line, with the context fields of its spans.
struct JsonLogLayer {
    writer: NonBlocking,
    filter: LogFilter,
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for JsonLogLayer {
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        if self.filter.exported(meta) {
            Interest::always()
        } else if self.filter.logged(meta) {
            Layer::<S>::register_callsite(&self.filter.level, meta)
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, meta: &Metadata<'_>, ctx: Context<'_, S>) -> bool {
        self.filter.exported(meta)
            || (self.filter.logged(meta) && self.filter.level.enabled(meta, ctx))
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        match self.filter.exported {
            Some(_) => None,
            None => self.filter.level.max_level_hint(),
        }
    }

    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        if self.filter.dynamic {
            self.filter.level.on_new_span(attrs, id, ctx.clone());
        }
        if !self.filter.logged(attrs.metadata()) {
            return;
        }
        let mut fields = ContextFields::default();
        attrs.record(&mut fields);
        if !fields.0.is_empty()
            && let Some(span) = ctx.span(id)
        {
            span.extensions_mut().insert(fields);
        }
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, ctx: Context<'_, S>) {
        if self.filter.dynamic {
            self.filter.level.on_record(id, values, ctx.clone());
        }
        let Some(span) = ctx
            .span(id)
            .filter(|span| self.filter.logged(span.metadata()))
        else {
            return;
        };
        let mut extensions = span.extensions_mut();
        match extensions.get_mut::<ContextFields>() {
            Some(fields) => values.record(fields),
            None => {
                let mut fields = ContextFields::default();
                values.record(&mut fields);
                if !fields.0.is_empty() {
                    extensions.insert(fields);
                }
            }
        }
    }

    fn on_enter(&self, id: &span::Id, ctx: Context<'_, S>) {
        if self.filter.dynamic {
            self.filter.level.on_enter(id, ctx);
        }
    }

    fn on_exit(&self, id: &span::Id, ctx: Context<'_, S>) {
        if self.filter.dynamic {
            self.filter.level.on_exit(id, ctx);
        }
    }

    fn on_close(&self, id: span::Id, ctx: Context<'_, S>) {
        if self.filter.dynamic {
            self.filter.level.on_close(id, ctx);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        thread_local! {
            static LINE: RefCell<Line> = RefCell::new(Line::new());
        }
        LINE.with(|cell| match cell.try_borrow_mut() {
            Ok(mut line) => self.write(&mut line, event, &ctx),
            // A value's Debug that logs while its own line is being written.
            Err(_) => self.write(&mut Line::new(), event, &ctx),
        });
    }
}

impl JsonLogLayer {
    fn write<S: Subscriber + for<'a> LookupSpan<'a>>(
        &self,
        line: &mut Line,
        event: &Event<'_>,
        ctx: &Context<'_, S>,
    ) {
        line.clear();
        line.timestamp();
        line.value("level", event.metadata().level().as_str());
        event.record(line);
        line.value("target", event.metadata().target());
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope {
                if let Some(fields) = span.extensions().get::<ContextFields>() {
                    for (name, value) in &fields.0 {
                        match value {
                            ContextValue::Text(text) => line.value(name, text),
                            ContextValue::Id128(id) => {
                                line.unescaped(name, format_args!("{id:032x}"))
                            }
                            ContextValue::Id64(id) => {
                                line.unescaped(name, format_args!("{id:016x}"))
                            }
                        }
                    }
                }
            }
        }
        // Only fails once the writer thread is gone, at exit.
        let _ = self.writer.clone().write_all(line.finish());
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
            report.timestamp();
            report.value("level", "WARN");
            report.value(
                "message",
                "log lines dropped: stdout took nothing and the queue was full",
            );
            report.value("dropped", &(dropped - self.reported));
            report.value("dropped_total", &dropped);
            report.value("target", module_path!());
            self.out.write_all(report.finish())?;
            self.reported = dropped;
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
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
        // Field names are identifiers: written as they are unless one needs escaping.
        if key
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
        {
            self.buf.push(b'"');
            self.buf.extend_from_slice(key.as_bytes());
            self.buf.extend_from_slice(b"\":");
        } else {
            let _ = serde_json::to_writer(&mut self.buf, key);
            self.buf.push(b':');
        }
        true
    }

    /// The current time as RFC 3339 in UTC (humantime's formatter: callgrind measured
    /// tracing-subscriber's, through serde, at ~2,900 instructions a line).
    fn timestamp(&mut self) {
        let now = humantime::format_rfc3339_micros(std::time::SystemTime::now());
        self.unescaped("timestamp", format_args!("{now}"));
    }

    /// A string value that needs no JSON escaping (a timestamp, hex digits), written as is.
    fn unescaped(&mut self, key: &'static str, value: fmt::Arguments<'_>) {
        if self.key(key) {
            self.buf.push(b'"');
            let _ = self.buf.write_fmt(value);
            self.buf.push(b'"');
        }
    }

    fn value(&mut self, key: &'static str, value: &(impl serde::Serialize + ?Sized)) {
        if self.key(key) && serde_json::to_writer(&mut self.buf, value).is_err() {
            self.buf.extend_from_slice(b"null");
        }
    }

    fn clear(&mut self) {
        self.buf.clear();
        self.keys.clear();
    }

    fn finish(&mut self) -> &[u8] {
        self.buf.extend_from_slice(if self.keys.is_empty() {
            b"{}\n"
        } else {
            b"}\n"
        });
        &self.buf
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
        self.value(field.name(), &text(format_args!("{value}")));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.value(field.name(), &text(format_args!("{value:?}")));
    }
}

/// The text of `args` (a value's `Debug` or `Display`). An impl that fails keeps what it wrote:
/// `format!` would panic, and a log line must never take its request down.
fn text(args: fmt::Arguments<'_>) -> String {
    let mut text = String::new();
    let _ = fmt::write(&mut text, args);
    text
}

#[cfg(test)]
mod tests {
    use std::{
        io,
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

    /// Writes a little, then fails, as a buggy impl in a tool's types might.
    struct Failing;

    impl fmt::Debug for Failing {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("half")?;
            Err(fmt::Error)
        }
    }

    impl fmt::Display for Failing {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            fmt::Debug::fmt(self, f)
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

    /// The JSON lines `log` writes through the layer with `filter`.
    fn lines_of(filter: LogFilter, log: impl FnOnce()) -> Vec<serde_json::Value> {
        let captured = Captured::default();
        let (writer, guard) = tracing_appender::non_blocking(captured.clone());
        let subscriber = tracing_subscriber::registry().with(JsonLogLayer { writer, filter });
        tracing::subscriber::with_default(subscriber, log);
        drop(guard);
        let out = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        out.lines()
            .map(|l| serde_json::from_str(l).expect(l))
            .collect()
    }

    #[test]
    fn the_level_picks_lines_and_exported_spans_pass_whatever_the_level() {
        let lines = lines_of(LogFilter::new("warn", Some("tools")), || {
            let exported = tracing::debug_span!(target: "tools::search", "lookup");
            assert!(
                !exported.is_disabled(),
                "a tool's span is exported at any level"
            );
            let other = tracing::warn_span!(target: "rmcp::service", "serve");
            assert!(
                other.is_disabled(),
                "a span nobody exports or logs is not made"
            );
            let context = tracing::warn_span!(CONTEXT_SPAN, request_id = "r-1");
            assert!(!context.is_disabled());
            tracing::info!(parent: &context, "below the level");
            tracing::warn!(parent: &context, "at the level");
        });
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert_eq!(lines[0]["message"], "at the level");
        assert_eq!(lines[0]["request_id"], "r-1");
    }

    #[test]
    fn a_failing_debug_or_display_still_gives_a_line() {
        let lines = lines_of(LogFilter::new("info", None), || {
            let span = tracing::info_span!(CONTEXT_SPAN, request_id = ?Failing);
            tracing::info!(parent: &span, debug = ?Failing, display = %Failing, "still logged");
        });
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert_eq!(lines[0]["message"], "still logged");
        assert_eq!(lines[0]["debug"], "half");
        assert_eq!(lines[0]["display"], "half");
        assert_eq!(lines[0]["request_id"], "half");
    }
}
