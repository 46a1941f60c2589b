//! The platform's telemetry observed in-process: spans through an in-memory exporter, metrics
//! through a recorder local to the test's thread (log lines: `tests/logs.rs`). What crosses
//! processes, the real collector, Prometheus and the binary's stdout, is in e2e/.

use mcp_platform::telemetry::{Tracing, metrics::Metrics};
use opentelemetry::{Value, trace::SpanKind};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use serde_json::json;

use crate::helpers::{LEGACY, SERVICE, TestServer, client, post, request};

const META_PARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
const HTTP_PARENT: &str = "00-11111111111111111111111111111111-2222222222222222-01";

fn attribute<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| &kv.value)
}

/// A tools/call, two health probes and an unknown route.
async fn traffic(server: &TestServer) {
    let body = request(
        7,
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "hi"}, "_meta": {"traceparent": META_PARENT}}),
    );
    let (status, _, _) = post(
        server,
        body,
        &[
            ("mcp-protocol-version", LEGACY),
            ("traceparent", HTTP_PARENT),
        ],
    )
    .await;
    assert_eq!(status, 200);
    for probe in ["/livez", "/readyz"] {
        let resp = client()
            .get(format!("{}{probe}", server.base()))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    let resp = client()
        .post(format!("{}/nowhere", server.base()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn one_server_span_per_request_with_mcp_and_http_attributes_and_none_for_probes() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let server = TestServer::start_traced(&[], Tracing::new(&SERVICE, &provider)).await;
    traffic(&server).await;
    server.stop().await;
    let spans = exporter.get_finished_spans().unwrap();
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_ref()).collect();
    assert_eq!(
        names.len(),
        2,
        "one span per request, none for probes: {names:?}"
    );

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
        Some(&Value::I64(200))
    );

    let unknown = spans.iter().find(|s| s.name == "POST").expect("HTTP span");
    assert_eq!(unknown.span_kind, SpanKind::Server);
    assert_eq!(
        attribute(unknown, "http.response.status_code"),
        Some(&Value::I64(404))
    );
}

#[tokio::test]
async fn metrics_carry_the_semantic_convention_names_and_labels() {
    let (metrics, recorder) = Metrics::new();
    let _local = ::metrics::set_default_local_recorder(&recorder);
    metrics.describe(&SERVICE);
    let server = TestServer::start(&[]).await;
    traffic(&server).await;
    server.stop().await;
    let text = metrics.render();
    let has = |series: &str, labels: &[&str]| {
        text.lines()
            .any(|line| line.starts_with(series) && labels.iter().all(|label| line.contains(label)))
    };
    assert!(
        has(
            "mcp_server_operation_duration_seconds_count",
            &[
                r#"mcp_method_name="tools/call""#,
                r#"gen_ai_tool_name="echo""#
            ]
        ),
        "{text}"
    );
    assert!(
        has(
            "http_server_request_duration_seconds_count",
            &[r#"http_route="/mcp""#, r#"http_response_status_code="200""#]
        ),
        "{text}"
    );
    assert!(
        has(
            "http_server_request_duration_seconds_count",
            &[r#"http_route="/livez""#]
        ),
        "probes are counted: {text}"
    );
    assert!(
        has(
            "mcp_server_build_info",
            &[r#"service_name="platform-test""#, r#"version="0.0.0-test""#]
        ),
        "{text}"
    );
}
