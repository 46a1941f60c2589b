//! What every service built from the template keeps: ping, the tool settings, the schemas.

use std::process::Command;

use crate::common::Service;
use mcp_smoke::{self as smoke, Era};
use rmcp::model::{CallToolRequestParams, ProtocolVersion};

const VERSION: &str = env!("CARGO_PKG_VERSION");

async fn pings(era: Era, expected: ProtocolVersion) {
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
    let ping = tools
        .iter()
        .find(|t| t.name == "ping")
        .expect("ping is always there");
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

    client.cancel().await.expect("close");
}

#[tokio::test]
async fn legacy_client_pings() {
    pings(Era::Legacy, ProtocolVersion::V_2025_11_25).await;
}

#[tokio::test]
async fn modern_client_pings() {
    pings(Era::Modern, ProtocolVersion::V_2026_07_28).await;
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
    let out = Command::new(env!(concat!("CARGO_BIN_EXE_", env!("CARGO_PKG_NAME"))))
        .env_clear()
        .env("APP__TOOLS__PING__DELAY_MS", "soon")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("APP__TOOLS__PING__DELAY_MS"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

/// What model providers read: one `type` per schema and only JSON Schema's own `format`s, in
/// every tool's input and output schema, as a client lists them from the running service.
#[tokio::test]
async fn every_tool_schema_has_single_types_and_standard_formats() {
    fn check(tool: &str, path: &str, schema: &serde_json::Value, problems: &mut Vec<String>) {
        match schema {
            serde_json::Value::Object(map) => {
                if let Some(kind) = map.get("type").filter(|t| !t.is_string()) {
                    problems.push(format!("{tool}{path}: type {kind}"));
                }
                if let Some(format) = map.get("format").and_then(|f| f.as_str())
                    && ![
                        "date-time",
                        "date",
                        "time",
                        "duration",
                        "email",
                        "hostname",
                        "ipv4",
                        "ipv6",
                        "uri",
                        "uuid",
                    ]
                    .contains(&format)
                {
                    problems.push(format!("{tool}{path}: format {format}"));
                }
                for (key, value) in map {
                    check(tool, &format!("{path}/{key}"), value, problems);
                }
            }
            serde_json::Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    check(tool, &format!("{path}/{i}"), item, problems);
                }
            }
            _ => {}
        }
    }
    let service = Service::start(&[]);
    let client = smoke::connect(&service.url, Era::Legacy, None)
        .await
        .expect("connect");
    let tools = client.list_all_tools().await.expect("tools/list");
    let mut problems = Vec::new();
    for tool in &tools {
        let input = serde_json::Value::Object((*tool.input_schema).clone());
        check(&tool.name, "/input", &input, &mut problems);
        if let Some(output) = &tool.output_schema {
            check(
                &tool.name,
                "/output",
                &serde_json::Value::Object((**output).clone()),
                &mut problems,
            );
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
    client.cancel().await.expect("close");
}
