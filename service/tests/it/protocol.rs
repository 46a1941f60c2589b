//! Both protocol eras through rmcp's own client, as a real MCP client would use the server.

use mcp_server::smoke::{self, Era};
use rmcp::model::{CallToolRequestParams, ProtocolVersion};
use serde_json::json;

use crate::helpers::TestServer;

async fn tools_and_ping(era: Era, expected_version: ProtocolVersion) {
    let server = TestServer::start(&[]).await;
    let client = smoke::connect(&server.url(), era, None)
        .await
        .expect("connect");
    let info = client.peer_info().expect("server info");
    assert_eq!(info.protocol_version, expected_version);

    let tools = client.list_all_tools().await.expect("tools/list");
    let names: Vec<_> = tools.iter().map(|t| t.name.to_string()).collect();
    assert_eq!(names, ["echo", "ping", "whoami"], "sorted, deterministic");
    let ping = tools.iter().find(|t| t.name == "ping").unwrap();
    assert!(
        ping.output_schema.is_some(),
        "ping declares its structured output"
    );

    let pong = client
        .call_tool(CallToolRequestParams::new("ping"))
        .await
        .expect("ping");
    let text = pong.content[0]
        .as_text()
        .expect("text content")
        .text
        .clone();
    assert!(
        text.starts_with("pong! taskId=test-task v=0.1.0 d="),
        "{text}"
    );
    let structured = pong.structured_content.expect("structured content");
    assert_eq!(structured["taskId"], "test-task");
    assert_eq!(structured["version"], "0.1.0");
    assert!(structured["durationMs"].is_u64());

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

    client.cancel().await.expect("close");
    server.stop().await;
}

#[tokio::test]
async fn legacy_client_with_initialize_handshake() {
    tools_and_ping(Era::Legacy, ProtocolVersion::V_2025_11_25).await;
}

#[tokio::test]
async fn modern_client_without_handshake() {
    tools_and_ping(Era::Modern, ProtocolVersion::V_2026_07_28).await;
}

#[tokio::test]
async fn smoke_run_prints_tools_and_two_pongs() {
    let server = TestServer::start(&[("APP__TOOLS__PING__DELAY_MS", "20")]).await;
    for era in [Era::Legacy, Era::Modern] {
        let mut out = Vec::new();
        smoke::run(&server.url(), era, None, &mut out)
            .await
            .expect("smoke");
        let out = String::from_utf8(out).unwrap();
        assert!(out.contains("  - ping: "), "{out}");
        assert_eq!(out.matches("pong! taskId=test-task").count(), 2, "{out}");
        // The configured simulated work shows in the reported duration.
        assert!(!out.contains(" d=0\n") && !out.contains(" d=1\n"), "{out}");
    }
    server.stop().await;
}

#[tokio::test]
async fn smoke_fails_against_a_dead_endpoint() {
    let mut out = Vec::new();
    let err = smoke::run("http://127.0.0.1:1/mcp", Era::Legacy, None, &mut out)
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("127.0.0.1:1"), "{err:#}");
}
