//! Logs: one JSON object per line on stdout (`timestamp`, `level`, `message`, `target`, the
//! event's fields, and from the request being served (see `RequestContext::scope`) `request_id`,
//! `enduser.id`, `trace_id`, `span_id`), or a compact human format for local use, which shows
//! the request's `tracing` spans instead.
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
    context::RequestContext,
    identity::{PLATFORM_CRATE, Service},
};

/// The platform's `tracing` spans of a request (HTTP) and of its MCP operation: the pretty
/// format shows their fields; JSON lines take the request's from its context instead, so they
/// are made for JSON only when a level directive names spans.
const REQUEST_SPANS: &[&str] = &["http.server", "mcp.server"];
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
/// while spans are exported, the crate whose `tracing` spans go to OpenTelemetry (the service's),
/// which the JSON layer's filter must let through whatever the level.
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

/// The pretty format's fields: tracing's defaults, with the log ids (numbers: see
/// `telemetry::log_ids`) in hex like everywhere else.
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

    /// Events, and the request's spans only when the level's directives name spans: a span
    /// nobody wants is never created.
    fn logged(&self, meta: &Metadata<'_>) -> bool {
        meta.is_event()
            || (self.dynamic
                && meta.target().starts_with(PLATFORM_CRATE)
                && REQUEST_SPANS.contains(&meta.name()))
    }

    fn exported(&self, meta: &Metadata<'_>) -> bool {
        self.exported.is_some_and(|tools| is_exported(meta, tools))
    }
}

/// Writes each event as one JSON line, with the fields of the request being served.
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
            self.filter.level.on_new_span(attrs, id, ctx);
        }
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, ctx: Context<'_, S>) {
        if self.filter.dynamic {
            self.filter.level.on_record(id, values, ctx);
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

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        with_line(|line| self.write(line, event));
    }
}

thread_local! {
    /// Each thread's line buffer, reused line after line.
    static LINE: RefCell<Line> = RefCell::new(Line::new());
}

/// Runs `write` with this thread's line buffer.
fn with_line<R>(write: impl FnOnce(&mut Line) -> R) -> R {
    LINE.with(|cell| match cell.try_borrow_mut() {
        Ok(mut line) => write(&mut line),
        // A value's Debug that logs while its own line is being written.
        Err(_) => write(&mut Line::new()),
    })
}

/// A value of a line written by [`write_json`].
#[derive(Clone, Copy)]
pub enum Value<'a> {
    Text(&'a str),
    Uint(u64),
    Float(f64),
    /// A trace id, written as 32 hex digits.
    TraceId(u128),
    /// A span id, written as 16 hex digits.
    SpanId(u64),
}

/// A line's fields: its name and value, or `None` when it has none (the key is left out).
pub type Fields<'a> = [(&'static str, Option<Value<'a>>)];

/// The request's fields on each of its lines: `request_id`, `enduser.id` (auth on), and while
/// spans are exported the `trace_id` and `span_id` of its server span.
fn request_fields(
    request: &RequestContext,
    mut field: impl FnMut(&'static str, Option<Value<'_>>),
) {
    field("request_id", Some(Value::Text(request.request_id())));
    if let Some(principal) = request.principal() {
        field("enduser.id", Some(Value::Text(&principal.subject)));
    }
    if let Some(trace) = request.trace() {
        let (trace_id, span_id) = super::log_ids(trace);
        field("trace_id", Some(Value::TraceId(trace_id)));
        field("span_id", Some(Value::SpanId(span_id)));
    }
}

/// Writes a JSON line of `request` straight to the current subscriber's JSON log layer, as that
/// layer writes an event, but without `tracing`'s event dispatch and field visitors: for the
/// access line, one a request (callgrind: ~2,500 instructions less a request). The caller checks
/// the level first (`tracing::event_enabled!`). Returns false when the subscriber has no JSON log
/// layer (the pretty format): the caller then logs through `tracing`.
pub fn write_json(
    level: tracing::Level,
    target: &str,
    message: &str,
    fields: &Fields<'_>,
    request: &RequestContext,
) -> bool {
    tracing::dispatcher::get_default(|dispatch| {
        let Some(layer) = dispatch.downcast_ref::<JsonLogLayer>() else {
            return false;
        };
        with_line(|line| {
            line.head(&level);
            line.own_field("message", Some(Value::Text(message)));
            for (key, value) in fields {
                line.own_field(key, *value);
            }
            line.own_field("target", Some(Value::Text(target)));
            request_fields(request, |key, value| line.own_field(key, value));
            layer.emit(line);
        });
        true
    })
}

/// Shows [`Fields`] as `key=value` pairs, for the pretty format.
pub struct ShowFields<'a, 'b>(pub &'a Fields<'b>);

impl fmt::Display for ShowFields<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (key, value) in self.0 {
            match value {
                None => continue,
                Some(Value::Text(text)) => write!(f, " {key}={text:?}")?,
                Some(Value::Uint(n)) => write!(f, " {key}={n}")?,
                Some(Value::Float(x)) => write!(f, " {key}={x}")?,
                Some(Value::TraceId(id)) => write!(f, " {key}={id:032x}")?,
                Some(Value::SpanId(id)) => write!(f, " {key}={id:016x}")?,
            }
        }
        Ok(())
    }
}

impl JsonLogLayer {
    /// An event's line: its fields, then the current request's (see [`request_fields`]).
    fn write(&self, line: &mut Line, event: &Event<'_>) {
        line.head(event.metadata().level());
        event.record(line);
        line.field("target", Some(Value::Text(event.metadata().target())));
        RequestContext::with_current(|request| {
            if let Some(request) = request {
                request_fields(request, |key, value| line.field(key, value));
            }
        });
        self.emit(line);
    }

    /// Hands the line to the writer thread.
    fn emit(&self, line: &mut Line) {
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
            report.head(&tracing::Level::WARN);
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

    /// Starts a field named `key`, unless the line has one already (the first value wins).
    fn key(&mut self, key: &'static str) -> bool {
        if self.keys.contains(&key) {
            return false;
        }
        self.keys.push(key);
        self.separator();
        json_string(&mut self.buf, key);
        self.buf.push(b':');
        true
    }

    /// Starts a field named by the platform, which the line cannot have yet and which needs no
    /// escaping: without the look-up and the escaping, which cost ~200 instructions a field.
    fn own_key(&mut self, key: &'static str) {
        debug_assert!(!self.keys.contains(&key), "{key} twice");
        debug_assert!(
            key.bytes()
                .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
        );
        self.keys.push(key);
        self.separator();
        self.buf.push(b'"');
        self.buf.extend_from_slice(key.as_bytes());
        self.buf.extend_from_slice(b"\":");
    }

    fn separator(&mut self) {
        self.buf.push(if self.buf.is_empty() { b'{' } else { b',' });
    }

    /// Starts a line: the current time as RFC 3339 in UTC (humantime's formatter: callgrind
    /// measured tracing-subscriber's, through serde, at ~2,900 instructions a line), and the level.
    fn head(&mut self, level: &tracing::Level) {
        self.buf.clear();
        self.keys.clear();
        let now = humantime::format_rfc3339_micros(std::time::SystemTime::now());
        self.own_key("timestamp");
        self.put_unescaped(format_args!("{now}"));
        self.own_field("level", Some(Value::Text(level.as_str())));
    }

    /// A field, unless the line has one of that name or `value` is `None`.
    fn field(&mut self, key: &'static str, value: Option<Value<'_>>) {
        if let Some(value) = value
            && self.key(key)
        {
            self.put(value);
        }
    }

    /// A field named by the platform (see [`Line::own_key`]), unless `value` is `None`.
    fn own_field(&mut self, key: &'static str, value: Option<Value<'_>>) {
        if let Some(value) = value {
            self.own_key(key);
            self.put(value);
        }
    }

    /// A field of any serializable value.
    fn value(&mut self, key: &'static str, value: &(impl serde::Serialize + ?Sized)) {
        if self.key(key) {
            self.put_serialized(value);
        }
    }

    fn put(&mut self, value: Value<'_>) {
        match value {
            Value::Text(text) => json_string(&mut self.buf, text),
            Value::Uint(n) => self.put_serialized(&n),
            Value::Float(x) => self.put_serialized(&x),
            Value::TraceId(id) => self.put_unescaped(format_args!("{id:032x}")),
            Value::SpanId(id) => self.put_unescaped(format_args!("{id:016x}")),
        }
    }

    fn put_serialized(&mut self, value: &(impl serde::Serialize + ?Sized)) {
        // Non-finite numbers are not JSON; serde writes them as null.
        if serde_json::to_writer(&mut self.buf, value).is_err() {
            self.buf.extend_from_slice(b"null");
        }
    }

    /// A string that needs no JSON escaping (a timestamp, hex digits), written as is.
    fn put_unescaped(&mut self, value: fmt::Arguments<'_>) {
        self.buf.push(b'"');
        let _ = self.buf.write_fmt(value);
        self.buf.push(b'"');
    }

    fn finish(&mut self) -> &[u8] {
        self.buf
            .extend_from_slice(if self.buf.is_empty() { b"{}\n" } else { b"}\n" });
        &self.buf
    }
}

impl Visit for Line {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.field(field.name(), Some(Value::Text(value)));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.value(field.name(), &value);
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.value(field.name(), &value);
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
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

/// Writes `text` as a JSON string: as it is when nothing in it needs escaping (names, ids, most
/// values), else through serde's escaper.
fn json_string(buf: &mut Vec<u8>, text: &str) {
    if text.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        buf.push(b'"');
        buf.extend_from_slice(text.as_bytes());
        buf.push(b'"');
    } else {
        let _ = serde_json::to_writer(&mut *buf, text);
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
        let request = request("r-1");
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
            let http = tracing::warn_span!("http.server", request_id = "r-1");
            assert!(
                http.is_disabled(),
                "JSON lines take the request's fields from its scope, not from a span"
            );
            request.in_scope(|| {
                tracing::info!("below the level");
                tracing::warn!("at the level");
            });
            tracing::warn!("outside any request");
        });
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert_eq!(lines[0]["message"], "at the level");
        assert_eq!(lines[0]["request_id"], "r-1");
        assert!(lines[1].get("request_id").is_none(), "{lines:?}");
    }

    #[test]
    fn span_directives_still_see_the_request_span() {
        let filter = LogFilter::new("warn,mcp_platform[http.server]=debug", None);
        let lines = lines_of(filter, || {
            let http = tracing::info_span!("http.server", request_id = "r-2");
            assert!(!http.is_disabled());
            http.in_scope(|| tracing::debug!("inside the request span"));
            tracing::debug!("outside it");
        });
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert_eq!(lines[0]["message"], "inside the request span");
    }

    #[test]
    fn a_direct_line_reads_like_an_event_line() {
        let request = request("r-3");
        let fields = [
            ("http.status", Some(Value::Uint(200))),
            ("error.type", None),
            ("mcp.method", Some(Value::Text("say \"hi\""))),
            ("duration_ms", Some(Value::Float(1.5))),
        ];
        let lines = lines_of(LogFilter::new("info", None), || {
            assert!(write_json(
                tracing::Level::INFO,
                module_path!(),
                "request",
                &fields,
                &request
            ));
            request.in_scope(|| {
                tracing::info!(
                    http.status = 200,
                    mcp.method = "say \"hi\"",
                    duration_ms = 1.5,
                    "request"
                )
            });
        });
        assert_eq!(lines.len(), 2, "{lines:?}");
        let keys = |line: &serde_json::Value| -> Vec<String> {
            line.as_object().unwrap().keys().cloned().collect()
        };
        assert_eq!(keys(&lines[0]), keys(&lines[1]));
        for key in [
            "level",
            "message",
            "http.status",
            "mcp.method",
            "duration_ms",
            "target",
            "request_id",
        ] {
            assert_eq!(lines[0][key], lines[1][key], "{key}");
        }
        assert_eq!(lines[0]["mcp.method"], "say \"hi\"");
        // Without a JSON layer (the pretty format), the caller logs through `tracing`.
        tracing::subscriber::with_default(tracing_subscriber::registry(), || {
            assert!(!write_json(
                tracing::Level::INFO,
                "a",
                "m",
                &fields,
                &request
            ));
        });
    }

    #[test]
    fn a_failing_debug_or_display_still_gives_a_line() {
        let lines = lines_of(LogFilter::new("info", None), || {
            tracing::info!(debug = ?Failing, display = %Failing, "still logged");
        });
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert_eq!(lines[0]["message"], "still logged");
        assert_eq!(lines[0]["debug"], "half");
        assert_eq!(lines[0]["display"], "half");
    }

    fn request(id: &'static str) -> RequestContext {
        RequestContext::new(
            axum::http::HeaderValue::from_static(id),
            std::time::Instant::now(),
        )
    }
}
