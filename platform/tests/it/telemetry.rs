//! The platform's metrics observed in-process, through a recorder local to the test's thread, and
//! the pretty log format through a subscriber local to it (JSON lines and spans:
//! `tests/observability.rs`). What crosses processes, the real collector,
//! Prometheus and the binary's stdout, is in e2e/.

use mcp_platform::{
    config::LogFormat,
    telemetry::{logs, metrics::Metrics},
};
use serde_json::json;
use tracing_subscriber::layer::SubscriberExt as _;

use crate::helpers::{Captured, LEGACY, SERVICE, TestServer, post, request, traffic};

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

#[tokio::test]
async fn the_pretty_format_shows_the_request_fields_on_a_tools_line() {
    let captured = Captured::default();
    let (layer, _guard) = logs::layer(LogFormat::Pretty, "info", None, captured.clone());
    let _local = tracing::subscriber::set_default(tracing_subscriber::registry().with(layer));
    let server = TestServer::start(&[]).await;
    let body = request(3, "tools/call", json!({"name": "ping", "arguments": {}}));
    let extra = [
        ("mcp-protocol-version", LEGACY),
        ("x-request-id", "pretty-1"),
    ];
    assert_eq!(post(&server, body, &extra).await.0, 200);
    server.stop().await;
    let text = captured.text();
    let line = text
        .lines()
        .find(|l| l.contains("probe pinged"))
        .unwrap_or_else(|| panic!("no line from the tool: {text}"));
    assert!(line.contains("pretty-1"), "{line}");
}
