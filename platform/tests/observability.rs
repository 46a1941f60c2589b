//! What a tool author gets by the ecosystem's own idioms, observed in-process: the JSON log lines
//! (through the platform's log layers, captured) and the exported spans (through the platform's
//! span export, into an in-memory exporter) of real requests to the stack on loopback. Its own test
//! binary with one process-wide subscriber, as in production: a task on another thread
//! (`spawn_blocking`, rmcp's tasks) logs through it like everywhere else.

#[path = "it/captured.rs"]
mod captured;
#[path = "it/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use std::{
    sync::{Arc, OnceLock},
    time::{Duration, Instant},
};

use mcp_platform::{
    ClientOptions, HttpClient, McpServer,
    config::LogFormat,
    http_client,
    telemetry::{ServerSpans, logs, traces},
};
use opentelemetry::{
    Value as OtelValue,
    trace::{SpanId, SpanKind, TracerProvider as _},
};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use rmcp::{
    ErrorData, RoleServer, ServerHandler,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ServerCapabilities,
        ServerConfig,
    },
    service::RequestContext,
    tool, tool_router,
};
use serde_json::{Value, json};
use tracing::{Instrument as _, Span};
use tracing_subscriber::{layer::SubscriberExt as _, util::SubscriberInitExt as _};

use crate::{
    captured::Captured,
    helpers::{LEGACY, META_PARENT, SERVICE, TestServer, post, request, settings, traffic},
};

/// The process's telemetry: JSON lines captured, spans in memory.
struct Observed {
    lines: Captured,
    spans: InMemorySpanExporter,
    provider: SdkTracerProvider,
}

fn observed() -> &'static Observed {
    static OBSERVED: OnceLock<Observed> = OnceLock::new();
    OBSERVED.get_or_init(|| {
        let spans = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(spans.clone())
            .build();
        let lines = Captured::default();
        // The embedded defaults' levels, as the binary runs them.
        let defaults = settings(&[]);
        let (spans_level, log_level) = (defaults.traces.level, defaults.log.level);
        let (layer, guard) = logs::layer(
            LogFormat::Json,
            &log_level,
            Some(&spans_level),
            lines.clone(),
        );
        // Lines are read while the process lives.
        std::mem::forget(guard);
        let tracer = provider.tracer("observability");
        tracing_subscriber::registry()
            .with(layer)
            .with(logs::span_export(&tracer, &spans_level))
            .init();
        opentelemetry::global::set_text_map_propagator(
            traces::propagator_from_env(&|_| None).unwrap(),
        );
        Observed {
            lines,
            spans,
            provider,
        }
    })
}

/// The JSON lines of request `id`, once `done` says they are all there (the writer is a thread).
fn lines_of(id: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let text = observed().lines.text();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .filter(|l: &Value| l["request_id"] == id)
            .collect();
        if done(&lines) || started.elapsed() > Duration::from_secs(10) {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The line whose message is `message`, among request `id`'s.
fn line(id: &str, message: &str) -> Value {
    let lines = lines_of(id, |lines| lines.iter().any(|l| l["message"] == message));
    lines
        .into_iter()
        .find(|l| l["message"] == message)
        .unwrap_or_else(|| {
            let all = observed().lines.text();
            let mentions: Vec<&str> = all.lines().filter(|l| l.contains(message)).collect();
            panic!("no line {message:?} for request {id}; lines with it: {mentions:?}")
        })
}

fn attribute<'a>(span: &'a SpanData, key: &str) -> Option<&'a opentelemetry::Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| &kv.value)
}

fn spans() -> Vec<SpanData> {
    observed().spans.get_finished_spans().unwrap()
}

fn span_named(spans: &[SpanData], name: &str) -> SpanData {
    spans
        .iter()
        .find(|s| s.name == name)
        .cloned()
        .unwrap_or_else(|| {
            let names: Vec<_> = spans.iter().map(|s| s.name.to_string()).collect();
            panic!("no span {name:?} among {names:?}")
        })
}

/// The spans of the trace request `id` made (its line's `trace_id`).
fn trace_of(id: &str, message: &str) -> (Value, Vec<SpanData>) {
    let line = line(id, message);
    let trace_id = line["trace_id"]
        .as_str()
        .expect("trace_id on the line")
        .to_owned();
    let spans = spans()
        .into_iter()
        .filter(|s| s.span_context.trace_id().to_string() == trace_id)
        .collect();
    (line, spans)
}

/// A test-only handler whose tools each use one idiom.
#[derive(Clone)]
struct Idioms {
    client: HttpClient,
    /// A loopback HTTP server answering with the `traceparent` it received.
    downstream: String,
}

#[tracing::instrument(fields(city = %city))]
async fn lookup(city: &str) {
    tracing::info!("inside instrument");
}

/// Logs when dropped: the cleanup of a future the deadline dropped.
struct LogOnDrop;

impl Drop for LogOnDrop {
    fn drop(&mut self) {
        tracing::info!("cleanup after the deadline");
    }
}

fn done() -> CallToolResult {
    CallToolResult::success(vec![ContentBlock::text("done")])
}

#[tool_router]
impl Idioms {
    #[tool(description = "#[instrument] with a field.")]
    async fn instrumented(&self) -> CallToolResult {
        lookup("Paris").await;
        done()
    }

    #[tool(description = "tokio::spawn(fut.in_current_span()).")]
    async fn spawned(&self) -> CallToolResult {
        tokio::spawn(async { tracing::info!("from a spawned task") }.in_current_span())
            .await
            .unwrap();
        done()
    }

    #[tool(description = "spawn_blocking in Span::current().")]
    async fn blocking(&self) -> CallToolResult {
        let span = Span::current();
        tokio::task::spawn_blocking(move || {
            span.in_scope(|| tracing::info!("from spawn_blocking"))
        })
        .await
        .unwrap();
        done()
    }

    #[tool(description = "A library's span (another crate's target).")]
    async fn library(&self) -> CallToolResult {
        let span =
            tracing::info_span!(target: "other_crate::db", "query", db.system.name = "sqlite");
        async { tracing::info!("querying") }.instrument(span).await;
        done()
    }

    #[tool(description = "A downstream call through the platform's client.")]
    async fn downstream(&self) -> CallToolResult {
        let response = self.client.get(&self.downstream).send().await.unwrap();
        let received = response.text().await.unwrap();
        tracing::info!("called downstream");
        CallToolResult::success(vec![ContentBlock::text(received)])
    }

    #[tool(description = "A downstream call to a port nobody listens on.")]
    async fn unreachable(&self) -> CallToolResult {
        let failed = self.client.get("http://127.0.0.1:1/").send().await;
        let err = failed.expect_err("nobody listens on port 1");
        tracing::info!(connect = err.is_connect(), "downstream unreachable");
        CallToolResult::error(vec![ContentBlock::text(err.to_string())])
    }

    #[tool(description = "Outlives the request deadline.")]
    async fn slow(&self) -> CallToolResult {
        let _cleanup = LogOnDrop;
        tokio::time::sleep(Duration::from_secs(30)).await;
        done()
    }
}

/// A loopback server answering each request with its `traceparent` header.
async fn echo_traceparent() -> String {
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(|headers: axum::http::HeaderMap| async move {
            headers
                .get("traceparent")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("none")
                .to_owned()
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

async fn idioms_server() -> TestServer {
    let observed = observed();
    let idioms = Idioms {
        client: http_client(&ClientOptions::default()).unwrap(),
        downstream: echo_traceparent().await,
    };
    let handler = McpServer::new(&SERVICE, idioms, Idioms::tool_router());
    TestServer::start_handler_traced(
        &settings(&[("APP__HTTP__REQUEST_TIMEOUT_MS", "500")]),
        Arc::new(handler),
        ServerSpans::new(&SERVICE, &observed.provider),
    )
    .await
}

/// Calls `tool` under request id `id`; returns the status and the result.
async fn call(server: &TestServer, id: &str, tool: &str) -> (u16, Value) {
    let body = request(1, "tools/call", json!({"name": tool, "arguments": {}}));
    let (status, _, body) = post(
        server,
        body,
        &[("mcp-protocol-version", LEGACY), ("x-request-id", id)],
    )
    .await;
    (status, body)
}

fn parent(span: &SpanData) -> SpanId {
    span.parent_span_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instrument_fields_reach_the_line_and_the_span_is_the_mcp_spans_child() {
    let server = idioms_server().await;
    assert_eq!(
        call(&server, "idiom-instrument", "instrumented").await.0,
        200
    );
    let (line, spans) = trace_of("idiom-instrument", "inside instrument");
    assert_eq!(line["city"], "Paris", "{line}");
    let mcp = span_named(&spans, "tools/call instrumented");
    assert_eq!(line["span_id"], mcp.span_context.span_id().to_string());
    let lookup = span_named(&spans, "lookup");
    assert_eq!(parent(&lookup), mcp.span_context.span_id());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawned_tasks_keep_the_request_by_in_current_span_and_span_current() {
    let server = idioms_server().await;
    assert_eq!(call(&server, "idiom-spawn", "spawned").await.0, 200);
    assert_eq!(call(&server, "idiom-blocking", "blocking").await.0, 200);
    let spawned = line("idiom-spawn", "from a spawned task");
    let blocking = line("idiom-blocking", "from spawn_blocking");
    for line in [&spawned, &blocking] {
        assert!(line["trace_id"].is_string(), "{line}");
        assert_eq!(
            line["otel.name"]
                .as_str()
                .map(|n| n.starts_with("tools/call")),
            Some(true)
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_librarys_span_is_exported_as_a_child_of_the_mcp_span() {
    let server = idioms_server().await;
    assert_eq!(call(&server, "idiom-library", "library").await.0, 200);
    let (line, spans) = trace_of("idiom-library", "querying");
    assert_eq!(line["db.system.name"], "sqlite", "{line}");
    let query = span_named(&spans, "query");
    let mcp = span_named(&spans, "tools/call library");
    assert_eq!(parent(&query), mcp.span_context.span_id());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_downstream_call_is_a_client_span_and_carries_it_as_the_parent() {
    let server = idioms_server().await;
    let (status, body) = call(&server, "idiom-downstream", "downstream").await;
    assert_eq!(status, 200, "{body}");
    let (_, spans) = trace_of("idiom-downstream", "called downstream");
    let mcp = span_named(&spans, "tools/call downstream");
    let client = span_named(&spans, "GET");
    assert_eq!(client.span_kind, opentelemetry::trace::SpanKind::Client);
    assert_eq!(parent(&client), mcp.span_context.span_id());
    let attribute = |key: &str| {
        client
            .attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.clone())
    };
    assert_eq!(
        attribute("http.response.status_code"),
        Some(opentelemetry::Value::I64(200))
    );
    assert_eq!(
        attribute("server.address").map(|v| v.to_string()),
        Some("127.0.0.1".to_owned())
    );
    let received = body["result"]["content"][0]["text"].as_str().unwrap();
    assert_eq!(
        received,
        format!(
            "00-{}-{}-01",
            client.span_context.trace_id(),
            client.span_context.span_id()
        ),
        "the downstream got the client span as its parent"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_downstream_call_is_a_typed_error_and_each_attempt_records_its_error_type() {
    let server = idioms_server().await;
    assert_eq!(
        call(&server, "idiom-unreachable", "unreachable").await.0,
        200
    );
    let (line, spans) = trace_of("idiom-unreachable", "downstream unreachable");
    assert_eq!(
        line["connect"], true,
        "the caller sees reqwest's own error: {line}"
    );
    let attempts: Vec<_> = spans.iter().filter(|s| s.name == "GET").collect();
    assert_eq!(attempts.len(), 3, "a GET is tried twice more");
    for attempt in attempts {
        assert_eq!(
            attribute(attempt, "error.type").map(|v| v.as_str().into_owned()),
            Some("connect".to_owned())
        );
        assert!(matches!(
            attempt.status,
            opentelemetry::trace::Status::Error { .. }
        ));
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cleanup_of_a_tool_dropped_by_the_deadline_logs_in_its_request() {
    let server = idioms_server().await;
    assert_eq!(call(&server, "idiom-deadline", "slow").await.0, 504);
    let cleanup = line("idiom-deadline", "cleanup after the deadline");
    assert!(cleanup["trace_id"].is_string(), "{cleanup}");
    server.stop().await;
}

/// A handler written against rmcp directly, not through `McpServer`.
struct Custom;

impl ServerHandler for Custom {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let work = tracing::info_span!("custom.work");
        async { tracing::info!(tool = %request.name, "custom handler called") }
            .instrument(work)
            .await;
        Ok(CallToolResponse::Complete(CallToolResult::success(vec![
            ContentBlock::text("custom"),
        ])))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_server_handler_gets_the_same_context() {
    let server = TestServer::start_handler_traced(
        &settings(&[]),
        Arc::new(Custom),
        ServerSpans::new(&SERVICE, &observed().provider),
    )
    .await;
    assert_eq!(call(&server, "idiom-custom", "anything").await.0, 200);
    let (line, spans) = trace_of("idiom-custom", "custom handler called");
    assert_eq!(line["tool"], "anything");
    let mcp = span_named(&spans, "tools/call anything");
    let work = span_named(&spans, "custom.work");
    assert_eq!(parent(&work), mcp.span_context.span_id());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_access_line_per_request_with_the_request_id() {
    let server = idioms_server().await;
    assert_eq!(call(&server, "idiom-access", "spawned").await.0, 200);
    server.stop().await;
    let lines = lines_of("idiom-access", |lines| {
        lines.iter().any(|l| l["message"] == "request")
    });
    let access: Vec<_> = lines.iter().filter(|l| l["message"] == "request").collect();
    assert_eq!(access.len(), 1, "one access line: {lines:?}");
    assert_eq!(access[0]["http.status"], 200);
    assert_eq!(access[0]["mcp.method"], "tools/call");
    assert_eq!(access[0]["mcp.target"], "spawned");
    assert!(access[0]["trace_id"].is_string(), "{}", access[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_server_span_per_request_with_mcp_and_http_attributes_and_none_for_probes() {
    let server =
        TestServer::start_traced(&[], ServerSpans::new(&SERVICE, &observed().provider)).await;
    traffic(&server).await;
    server.stop().await;
    let spans = spans();
    let probes: Vec<_> = spans
        .iter()
        .filter(|s| {
            attribute(s, "url.path").is_some_and(|p| ["/livez", "/readyz"].contains(&&*p.as_str()))
        })
        .collect();
    assert!(probes.is_empty(), "no span for probes: {probes:?}");
    let call_trace = &META_PARENT[3..35];
    let in_call: Vec<_> = spans
        .iter()
        .filter(|s| s.span_context.trace_id().to_string() == call_trace)
        .map(|s| s.name.to_string())
        .collect();
    assert_eq!(in_call, ["tools/call echo"], "one server span for the call");

    let call = spans
        .iter()
        .find(|s| s.name == "tools/call echo")
        .expect("MCP span");
    assert_eq!(call.span_kind, SpanKind::Server);
    assert_eq!(
        call.parent_span_id.to_string(),
        &META_PARENT[36..52],
        "parent from params._meta.traceparent"
    );
    assert_eq!(call.links.len(), 1, "the HTTP traceparent is a link");
    for (key, value) in [
        ("mcp.method.name", "tools/call"),
        ("gen_ai.tool.name", "echo"),
        ("gen_ai.operation.name", "execute_tool"),
        ("jsonrpc.request.id", "7"),
        ("mcp.protocol.version", LEGACY),
        ("http.request.method", "POST"),
        ("http.route", "/mcp"),
    ] {
        assert_eq!(
            attribute(call, key).map(|v| v.as_str().into_owned()),
            Some(value.to_owned()),
            "{key}"
        );
    }
    assert_eq!(
        attribute(call, "http.response.status_code"),
        Some(&OtelValue::I64(200))
    );

    let unknown = spans
        .iter()
        .find(|s| {
            s.name == "POST" && attribute(s, "url.path").is_some_and(|p| p.as_str() == "/nowhere")
        })
        .expect("HTTP span");
    assert_eq!(unknown.span_kind, SpanKind::Server);
    assert_eq!(
        attribute(unknown, "http.response.status_code"),
        Some(&OtelValue::I64(404))
    );
}
