//! The pretty log format through a subscriber local to the test's thread. Its own test binary:
//! `tracing` caches which callsites the subscribers want process-wide, and tests on other threads
//! without this subscriber would make it miss lines.

#[path = "it/captured.rs"]
mod captured;
#[path = "it/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use mcp_platform::{config::LogFormat, telemetry::logs};
use serde_json::json;
use tracing_subscriber::layer::SubscriberExt as _;

use crate::{
    captured::Captured,
    helpers::{LEGACY, TestServer, post, request},
};

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
