//! Log lines observed in-process through a captured writer. Its own test binary: `tracing` caches
//! which callsites a subscriber wants process-wide, and tests on other threads without this
//! test's subscriber would make it miss spans.

#[path = "it/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use std::{
    io,
    sync::{Arc, Mutex},
};

use mcp_platform::{config::LogFormat, telemetry::logs};
use serde_json::json;
use tracing_subscriber::layer::SubscriberExt as _;

use crate::helpers::{LEGACY, TestServer, post, request};

/// Collects what the log writer writes.
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

#[tokio::test]
async fn log_lines_carry_the_request_id_and_one_access_line_per_request() {
    let captured = Captured::default();
    let (layer, guard) = logs::layer(LogFormat::Json, "info", None, captured.clone());
    let _local = tracing::subscriber::set_default(tracing_subscriber::registry().with(layer));
    let server = TestServer::start(&[]).await;
    let body = request(3, "tools/call", json!({"name": "ping", "arguments": {}}));
    let (status, headers, _) = post(
        &server,
        body,
        &[
            ("mcp-protocol-version", LEGACY),
            ("x-request-id", "in-process-1"),
        ],
    )
    .await;
    assert_eq!(
        (status, &headers["x-request-id"]),
        (200, &"in-process-1".parse().unwrap())
    );
    server.stop().await;
    drop(guard);
    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let ours: Vec<_> = lines
        .iter()
        .filter(|l| l["request_id"] == "in-process-1")
        .collect();
    let tool_line = ours
        .iter()
        .find(|l| l["message"] == "probe pinged")
        .unwrap_or_else(|| panic!("the tool's own line carries the request id: {text}"));
    assert_eq!(tool_line["level"], "INFO");
    let access: Vec<_> = ours.iter().filter(|l| l["message"] == "request").collect();
    assert_eq!(access.len(), 1, "one access line: {text}");
    assert_eq!(access[0]["http.status"], 200);
    assert_eq!(access[0]["mcp.method"], "tools/call");
    assert_eq!(access[0]["mcp.target"], "ping");
}
