//! This service's tools, served by its own binary (started as ECS would, on loopback port 0) and
//! called with rmcp's client and the smoke check. The platform's behaviour is the platform's
//! tests' business; these cover what this crate adds.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
};

use mcp_smoke::{self as smoke, Era};
use rmcp::model::{CallToolRequestParams, ProtocolVersion};
use serde_json::json;

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The service's binary, serving until dropped.
struct Service {
    child: Child,
    url: String,
}

impl Service {
    fn start(env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mcp-server"))
            .env_clear()
            .env("APP__HTTP__ADDR", "127.0.0.1:0")
            .env("APP__ADMIN__ADDR", "127.0.0.1:0")
            .env("APP__LOG__FORMAT", "json")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the service");
        // The "listening" line names the bound address.
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut url = None;
        for line in stdout.lines() {
            let line: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
            if line["message"] == "listening" {
                url = line["mcp"].as_str().map(str::to_owned);
                break;
            }
        }
        Self {
            child,
            url: url.expect("the service said where it listens"),
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn ping_and_echo(era: Era, expected: ProtocolVersion) {
    let service = Service::start(&[]);
    let client = smoke::connect(&service.url, era, None)
        .await
        .expect("connect");
    let info = client.peer_info().expect("server info");
    assert_eq!(info.protocol_version, expected);
    let server = info.server_info.as_ref().expect("serverInfo");
    assert_eq!(
        (server.name.as_str(), server.version.as_str()),
        (env!("CARGO_PKG_NAME"), VERSION)
    );

    let tools = client.list_all_tools().await.expect("tools/list");
    let names: Vec<_> = tools.iter().map(|t| t.name.to_string()).collect();
    assert!(
        names.iter().any(|n| n == "ping"),
        "ping is always there: {names:?}"
    );
    let ping = tools.iter().find(|t| t.name == "ping").unwrap();
    assert!(
        ping.output_schema.is_some(),
        "ping declares its structured output"
    );

    let pong = client
        .call_tool(CallToolRequestParams::new("ping"))
        .await
        .expect("ping");
    let text = &pong.content[0].as_text().expect("text content").text;
    assert!(
        text.starts_with(&format!("pong! taskId=local v={VERSION} d=")),
        "{text}"
    );
    let structured = pong.structured_content.expect("structured content");
    assert_eq!(structured["taskId"], "local");
    assert_eq!(structured["version"], VERSION);
    assert!(structured["durationMs"].is_u64());

    if names.iter().any(|n| n == "echo") {
        let echo = client
            .call_tool(
                CallToolRequestParams::new("echo").with_arguments(
                    json!({"text": "ab", "repeat": 2, "uppercase": true})
                        .as_object()
                        .unwrap()
                        .clone(),
                ),
            )
            .await
            .expect("echo");
        assert_eq!(echo.content[0].as_text().unwrap().text, "AB AB");
        let bad = client
            .call_tool(
                CallToolRequestParams::new("echo")
                    .with_arguments(json!({"text": ""}).as_object().unwrap().clone()),
            )
            .await
            .expect("a tool error is a result, not a protocol error");
        assert_eq!(bad.is_error, Some(true));
        assert!(
            bad.content[0]
                .as_text()
                .unwrap()
                .text
                .contains("`text` must be 1 to 4096")
        );
    }
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn legacy_client_pings_and_echoes() {
    ping_and_echo(Era::Legacy, ProtocolVersion::V_2025_11_25).await;
}

#[tokio::test]
async fn modern_client_pings_and_echoes() {
    ping_and_echo(Era::Modern, ProtocolVersion::V_2026_07_28).await;
}

#[tokio::test]
async fn smoke_check_passes_and_the_ping_delay_setting_shows() {
    let service = Service::start(&[("APP__TOOLS__PING__DELAY_MS", "20")]);
    for era in [Era::Legacy, Era::Modern] {
        let mut out = Vec::new();
        smoke::run(&service.url, era, None, &mut out)
            .await
            .expect("smoke");
        let out = String::from_utf8(out).unwrap();
        assert_eq!(out.matches("pong! taskId=local").count(), 2, "{out}");
        // The configured simulated work shows in the reported duration.
        assert!(!out.contains(" d=0\n") && !out.contains(" d=1\n"), "{out}");
    }
}

#[test]
fn a_wrong_tool_setting_stops_start_up_naming_the_key() {
    let out = Command::new(env!("CARGO_BIN_EXE_mcp-server"))
        .env_clear()
        .env("APP__TOOLS__PING__DELAY_MS", "soon")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("APP__TOOLS__PING__DELAY_MS"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[tokio::test]
async fn echo_enforces_the_ranges_its_schema_states() {
    let service = Service::start(&[]);
    let client = smoke::connect(&service.url, Era::Legacy, None)
        .await
        .expect("connect");
    let names: Vec<_> = client
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    if names.iter().any(|n| n == "echo") {
        let out = client
            .call_tool(
                CallToolRequestParams::new("echo").with_arguments(
                    json!({"text": "hi", "repeat": 11})
                        .as_object()
                        .unwrap()
                        .clone(),
                ),
            )
            .await
            .expect("a tool error is a result");
        assert_eq!(out.is_error, Some(true));
        assert!(
            out.content[0]
                .as_text()
                .unwrap()
                .text
                .contains("between 1 and 10")
        );
    }
    client.cancel().await.expect("close");
}
