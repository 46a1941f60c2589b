//! The protection stack: a request deadline, panics, slow clients. Each gets its status and a
//! JSON-RPC body, and the server keeps serving.

use std::{sync::Arc, time::Duration};

use mcp_platform::McpServer;
use rmcp::{
    Peer, RoleServer,
    model::{CallToolResult, NumberOrString, ProgressNotificationParam, ProgressToken},
    tool, tool_router,
};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{LEGACY, TestServer, assert_jsonrpc_error, post, request, settings};

/// A handler with tools that misbehave on purpose (not part of the product).
#[derive(Clone)]
struct Misbehaving;

#[tool_router]
impl Misbehaving {
    #[tool(description = "Panics.")]
    async fn panic(&self) -> CallToolResult {
        panic!("deliberate test panic")
    }

    #[tool(description = "Takes ten seconds.")]
    async fn slow(&self) -> CallToolResult {
        tokio::time::sleep(Duration::from_secs(10)).await;
        CallToolResult::success(vec![])
    }

    #[tool(
        description = "Reports progress (the answer becomes an event stream), then takes ten seconds."
    )]
    async fn slow_stream(&self, peer: Peer<RoleServer>) -> CallToolResult {
        let token = ProgressToken(NumberOrString::String("p1".into()));
        let _ = peer
            .notify_progress(ProgressNotificationParam::new(token, 1.0).with_message("started"))
            .await;
        tokio::time::sleep(Duration::from_secs(10)).await;
        CallToolResult::success(vec![])
    }
}

async fn start_misbehaving(env: &[(&str, &str)]) -> TestServer {
    let handler = McpServer::new(
        &crate::helpers::SERVICE,
        Misbehaving,
        Misbehaving::tool_router(),
    );
    TestServer::start_handler(&settings(env), Arc::new(handler)).await
}

async fn call(url: &str, tool: &str) -> (u16, serde_json::Value) {
    let resp = crate::helpers::client()
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", LEGACY)
        .header("x-request-id", "limits-1")
        .body(request(
            9,
            "tools/call",
            json!({"name": tool, "arguments": {}}),
        ))
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

#[tokio::test]
async fn the_deadline_answers_with_a_jsonrpc_error_and_drops_the_tool() {
    let server = start_misbehaving(&[("APP__HTTP__REQUEST_TIMEOUT_MS", "300")]).await;
    let url = server.url();
    let started = std::time::Instant::now();
    let (status, body) = call(&url, "slow").await;
    assert_eq!(status, 504, "{body}");
    assert_jsonrpc_error(&body, -32001, "timed out after 300 ms");
    assert_eq!(body["id"], 9, "the JSON-RPC id of the request");
    assert_eq!(body["error"]["data"]["requestId"], "limits-1");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "not the tool's 10 s"
    );
    let (status, _) = call(&url, "panic").await;
    assert_eq!(status, 500, "still serving");
}

#[tokio::test]
async fn the_deadline_also_ends_an_event_stream_with_a_jsonrpc_error() {
    let server = start_misbehaving(&[("APP__HTTP__REQUEST_TIMEOUT_MS", "500")]).await;
    let response = crate::helpers::client()
        .post(server.url())
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", LEGACY)
        .header("x-request-id", "limits-2")
        .body(request(
            11,
            "tools/call",
            json!({"name": "slow_stream", "arguments": {}}),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    // The stream ends at the deadline, not after the tool's 10 s (this bound only stops a hang).
    let text = tokio::time::timeout(Duration::from_secs(5), response.text())
        .await
        .expect("the stream ended at the deadline")
        .unwrap();
    let events: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .filter(|data| !data.trim().is_empty())
        .map(|data| serde_json::from_str(data.trim()).unwrap())
        .collect();
    assert_eq!(
        events.first().map(|e| &e["method"]),
        Some(&json!("notifications/progress")),
        "{text}"
    );
    let last = events.last().unwrap();
    assert_jsonrpc_error(last, -32001, "timed out after 500 ms");
    assert_eq!(last["id"], 11, "{text}");
    assert_eq!(last["error"]["data"]["requestId"], "limits-2");
    let (status, _) = call(&server.url(), "panic").await;
    assert_eq!(status, 500, "still serving");
}

#[tokio::test]
async fn a_panicking_tool_gets_a_500_and_the_server_keeps_serving() {
    let server = start_misbehaving(&[]).await;
    let url = server.url();
    for _ in 0..3 {
        let (status, body) = call(&url, "panic").await;
        assert!(
            status == 500 || body.get("error").is_some(),
            "{status} {body}"
        );
        assert_jsonrpc_error(&body, -32603, "");
    }
    let health = crate::helpers::client()
        .get(url.replace("/mcp", "/livez"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_cut_off() {
    let server = TestServer::start(&[("APP__HTTP__HEADER_READ_TIMEOUT_MS", "300")]).await;
    let mut slow = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    slow.write_all(b"POST /mcp HTTP/1.1\r\nHost: localhost\r\nContent-Type: appl")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut buf)).await;
    assert!(
        read.is_ok(),
        "the server closed the connection after the header-read timeout"
    );
    let (status, _, body) = post(
        &server,
        request(1, "tools/list", json!({})),
        &[("mcp-protocol-version", LEGACY)],
    )
    .await;
    assert_eq!(status, 200, "still serving: {body}");
    server.stop().await;
}

/// hyper starts the header-read timer as soon as a kept-alive connection waits for its next
/// request, so the timeout is also the idle timeout of kept-alive connections. Behind a load
/// balancer it must outlast the balancer's (Terraform sets it so; see infra/ecs.tf).
#[tokio::test]
async fn the_header_read_timeout_also_closes_idle_kept_alive_connections() {
    let server = TestServer::start(&[("APP__HTTP__HEADER_READ_TIMEOUT_MS", "300")]).await;
    let mut conn = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    conn.write_all(b"GET /livez HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = conn.read(&mut buf).await.unwrap();
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    // Nothing more is sent: the connection is closed once the timeout has passed.
    let closed = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf)).await;
    assert!(matches!(closed, Ok(Ok(0))), "expected EOF, got {closed:?}");
    server.stop().await;
}

/// Reads until the server closes the connection; `None` if it is still open after five seconds.
async fn closed_within_5s(conn: &mut tokio::net::TcpStream) -> Option<Duration> {
    let started = std::time::Instant::now();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), conn.read_to_end(&mut buf)).await;
    read.ok().map(|_| started.elapsed())
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed_at_the_first_byte_deadline() {
    let server = TestServer::start(&[
        ("APP__HTTP__FIRST_BYTE_TIMEOUT_MS", "300"),
        ("APP__HTTP__HEADER_READ_TIMEOUT_MS", "60000"),
    ])
    .await;
    let mut silent = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let held = closed_within_5s(&mut silent).await.expect("closed");
    assert!(held >= Duration::from_millis(250), "{held:?}");
    server.stop().await;
}

/// The first-byte deadline is for new connections only: a kept-alive connection waiting for its
/// next request (a load balancer's) is governed by the header-read timeout alone.
#[tokio::test]
async fn the_first_byte_deadline_spares_kept_alive_connections() {
    let server = TestServer::start(&[
        ("APP__HTTP__FIRST_BYTE_TIMEOUT_MS", "200"),
        ("APP__HTTP__HEADER_READ_TIMEOUT_MS", "60000"),
    ])
    .await;
    let mut conn = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let mut buf = [0u8; 1024];
    for _ in 0..2 {
        conn.write_all(b"GET /livez HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .unwrap();
        let n = conn.read(&mut buf).await.unwrap();
        assert!(
            buf[..n].starts_with(b"HTTP/1.1 200"),
            "{:?}",
            String::from_utf8_lossy(&buf[..n])
        );
        // Idle for longer than the first-byte deadline.
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    server.stop().await;
}

#[tokio::test]
async fn connections_over_the_limit_are_closed_at_once_and_the_held_ones_keep_serving() {
    let server = TestServer::start(&[("APP__HTTP__MAX_CONNECTIONS", "2")]).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(tokio::net::TcpStream::connect(server.addr).await.unwrap());
    }
    // Accepted in order: the first two hold the places before the third is looked at.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut over = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let refused = closed_within_5s(&mut over).await.expect("closed");
    assert!(refused < Duration::from_secs(1), "at once: {refused:?}");
    let mut buf = [0u8; 1024];
    held[0]
        .write_all(b"GET /livez HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let n = held[0].read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    // A place freed is a place for the next connection.
    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (status, _, body) = post(
        &server,
        request(1, "tools/list", json!({})),
        &[("mcp-protocol-version", LEGACY)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    server.stop().await;
}
