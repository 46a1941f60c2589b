//! JSON log lines: `timestamp`, `level`, the event's fields (`message` first), `target`, then,
//! flattened to the top level, the fields of every span the event is in, the nearest span first
//! (a name already on the line keeps its first value). Each span's fields are written as JSON
//! once, when the span is made or records a field, and copied into each of its lines.
//!
//! Hand-written, as a plain `tracing_subscriber::Layer` over the spans' own fields: json-subscriber
//! writes the same lines but builds a `serde_json::Value` tree of the event's and every span's
//! fields for each line, which made an instant tool call cost a fifth more (see the README's
//! performance section).

use std::{cell::RefCell, fmt, io::Write as _, ops::Range};

use tracing::{
    Event, Subscriber,
    field::{Field, Visit},
    span,
};
use tracing_appender::non_blocking::NonBlocking;
use tracing_subscriber::{Layer, layer::Context, registry::LookupSpan};

/// Writes each event as one JSON line to a background writer (see `telemetry::logs`).
pub struct JsonLines {
    writer: NonBlocking,
}

impl JsonLines {
    pub fn new(writer: NonBlocking) -> Self {
        Self { writer }
    }
}

/// A span's fields, written as JSON once: `json` holds the values, `fields` their names and where
/// each value is (a field recorded again points at its new value).
#[derive(Default)]
struct SpanFields {
    json: Vec<u8>,
    fields: Vec<(&'static str, Range<usize>)>,
}

impl SpanFields {
    fn put(&mut self, name: &'static str, value: impl FnOnce(&mut Vec<u8>)) {
        let start = self.json.len();
        value(&mut self.json);
        let range = start..self.json.len();
        match self.fields.iter_mut().find(|(key, _)| *key == name) {
            Some((_, old)) => *old = range,
            None => self.fields.push((name, range)),
        }
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for JsonLines {
    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = SpanFields::default();
        attrs.record(&mut Fields(&mut fields));
        span.extensions_mut().insert(fields);
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        if let Some(fields) = span.extensions_mut().get_mut::<SpanFields>() {
            values.record(&mut Fields(fields));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        with_line(|line| {
            line.head(event.metadata().level());
            event.record(&mut Fields(line));
            line.field("target", |buf| json_string(buf, event.metadata().target()));
            for span in ctx.event_scope(event).into_iter().flatten() {
                if let Some(fields) = span.extensions().get::<SpanFields>() {
                    for (name, value) in &fields.fields {
                        line.field(name, |buf| {
                            buf.extend_from_slice(&fields.json[value.clone()])
                        });
                    }
                }
            }
            // Only fails once the writer thread is gone, at exit.
            let _ = self.writer.clone().write_all(line.finish());
        });
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

/// One log line, written while the event's fields are visited (no intermediate map). The first
/// value of a key wins: event fields shadow span fields, a nearer span's a farther one's.
pub(super) struct Line {
    buf: Vec<u8>,
    keys: Vec<&'static str>,
}

impl Line {
    pub(super) fn new() -> Self {
        Self {
            buf: Vec::with_capacity(512),
            keys: Vec::with_capacity(24),
        }
    }

    /// Starts a line: the current time (RFC 3339 in UTC, humantime's formatter) and the level.
    pub(super) fn head(&mut self, level: &tracing::Level) {
        self.buf.clear();
        self.keys.clear();
        let now = humantime::format_rfc3339_micros(std::time::SystemTime::now());
        self.field("timestamp", |buf| {
            let _ = write!(buf, "\"{now}\"");
        });
        self.field("level", |buf| json_string(buf, level.as_str()));
    }

    /// A field named `key` whose JSON value `value` writes, unless the line has one already.
    pub(super) fn field(&mut self, key: &'static str, value: impl FnOnce(&mut Vec<u8>)) {
        if self.keys.contains(&key) {
            return;
        }
        self.keys.push(key);
        self.buf.push(if self.buf.is_empty() { b'{' } else { b',' });
        json_string(&mut self.buf, key);
        self.buf.push(b':');
        value(&mut self.buf);
    }

    pub(super) fn finish(&mut self) -> &[u8] {
        self.buf
            .extend_from_slice(if self.buf.is_empty() { b"{}\n" } else { b"}\n" });
        &self.buf
    }
}

/// Where a visitor writes each field: as JSON, under its name.
trait JsonFields {
    fn put(&mut self, name: &'static str, value: impl FnOnce(&mut Vec<u8>));
}

impl JsonFields for SpanFields {
    fn put(&mut self, name: &'static str, value: impl FnOnce(&mut Vec<u8>)) {
        SpanFields::put(self, name, value);
    }
}

impl JsonFields for Line {
    fn put(&mut self, name: &'static str, value: impl FnOnce(&mut Vec<u8>)) {
        self.field(name, value);
    }
}

/// Writes the fields it visits (an event's, a span's) as JSON values.
struct Fields<'a, F>(&'a mut F);

impl<F: JsonFields> Visit for Fields<'_, F> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.put(field.name(), |json| json_string(json, value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.put(field.name(), |json| serialized(json, &value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.put(field.name(), |json| serialized(json, &value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.put(field.name(), |json| serialized(json, &value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.put(field.name(), |json| serialized(json, &value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.put(field.name(), |json| {
            json_string(json, &text(format_args!("{value}")))
        });
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.put(field.name(), |json| {
            json_string(json, &text(format_args!("{value:?}")))
        });
    }
}

/// A value through serde; non-finite numbers are not JSON and become null.
pub(super) fn serialized(buf: &mut Vec<u8>, value: &impl serde::Serialize) {
    if serde_json::to_writer(&mut *buf, value).is_err() {
        buf.extend_from_slice(b"null");
    }
}

/// Writes `text` as a JSON string: as it is when nothing in it needs escaping (names, ids, most
/// values), else through serde's escaper.
pub(super) fn json_string(buf: &mut Vec<u8>, text: &str) {
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
