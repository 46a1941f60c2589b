//! Both protocol eras through rmcp's own client, as a real MCP client would use the server.

use mcp_smoke::{self as smoke, Era};
use rmcp::model::{CallToolRequestParams, ProtocolVersion};
use serde_json::json;

use crate::helpers::{SERVICE, TestServer};

async fn list_and_call(era: Era, expected_version: ProtocolVersion) {
    let server = TestServer::start(&[]).await;
    let client = smoke::connect(&server.url(), era, None)
        .await
        .expect("connect");
    let info = client.peer_info().expect("server info");
    assert_eq!(info.protocol_version, expected_version);
    let server_info = info.server_info.as_ref().expect("serverInfo");
    assert_eq!(
        server_info.name, SERVICE.name,
        "serverInfo names the service"
    );
    assert_eq!(server_info.version, SERVICE.version);

    let tools = client.list_all_tools().await.expect("tools/list");
    let names: Vec<_> = tools.iter().map(|t| t.name.to_string()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "sorted, deterministic");
    assert!(names.contains(&"echo".to_owned()), "{names:?}");

    let echo = client
        .call_tool(
            CallToolRequestParams::new("echo")
                .with_arguments(json!({"text": "ab"}).as_object().unwrap().clone()),
        )
        .await
        .expect("echo");
    assert_eq!(echo.content[0].as_text().unwrap().text, "ab");

    let bad = client
        .call_tool(
            CallToolRequestParams::new("echo")
                .with_arguments(json!({"text": ""}).as_object().unwrap().clone()),
        )
        .await
        .expect("a tool error is a result, not a protocol error");
    assert_eq!(bad.is_error, Some(true));

    client.cancel().await.expect("close");
    server.stop().await;
}

#[tokio::test]
async fn legacy_client_with_initialize_handshake() {
    list_and_call(Era::Legacy, ProtocolVersion::V_2025_11_25).await;
}

#[tokio::test]
async fn modern_client_without_handshake() {
    list_and_call(Era::Modern, ProtocolVersion::V_2026_07_28).await;
}

#[tokio::test]
async fn smoke_run_prints_tools_and_two_pongs() {
    let server = TestServer::start(&[]).await;
    for era in [Era::Legacy, Era::Modern] {
        let mut out = Vec::new();
        smoke::run(&server.url(), era, None, &mut out)
            .await
            .expect("smoke");
        let out = String::from_utf8(out).unwrap();
        assert!(out.contains("  - ping: "), "{out}");
        assert_eq!(out.matches("pong! probe").count(), 2, "{out}");
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
