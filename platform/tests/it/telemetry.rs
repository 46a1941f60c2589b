//! The platform's metrics observed in-process, through a recorder local to the test's thread (log
//! lines and spans: `tests/observability.rs` and `tests/pretty.rs`). What crosses processes, the real collector,
//! Prometheus and the binary's stdout, is in e2e/.

use mcp_platform::telemetry::metrics::Metrics;

use crate::helpers::{SERVICE, TestServer, traffic};

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
