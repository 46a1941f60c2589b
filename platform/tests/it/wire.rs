//! Raw HTTP at the edges: every bad request gets the right status and a JSON-RPC error body
//! with a useful message, and the server keeps serving.

use serde_json::{Value, json};

use crate::helpers::{
    LEGACY, MODERN, TestServer, assert_jsonrpc_error, modern_meta, post, request,
};

fn ping_body(id: u64) -> String {
    request(id, "tools/call", json!({"name": "ping", "arguments": {}}))
}

async fn assert_still_serving(server: &TestServer) {
    let (status, _, body) = post(server, ping_body(99), &[("mcp-protocol-version", LEGACY)]).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .starts_with("pong!")
    );
}

#[tokio::test]
async fn legacy_handshake_is_stateless() {
    let server = TestServer::start(&[]).await;
    let init = request(
        1,
        "initialize",
        json!({"protocolVersion": LEGACY, "capabilities": {}, "clientInfo": {"name": "it", "version": "0"}}),
    );
    let (status, headers, body) = post(&server, init, &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["protocolVersion"], LEGACY);
    assert!(
        headers.get("mcp-session-id").is_none(),
        "a stateless server issues no session"
    );
    let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string();
    let (status, _, _) = post(&server, note, &[("mcp-protocol-version", LEGACY)]).await;
    assert_eq!(status, 202);
    // Older revisions are served too; 2024-11-05 is not offered.
    for version in ["2025-03-26", "2025-06-18"] {
        let init = request(
            2,
            "initialize",
            json!({"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "it", "version": "0"}}),
        );
        let (_, _, body) = post(&server, init, &[]).await;
        assert_eq!(body["result"]["protocolVersion"], version);
    }
    server.stop().await;
}

#[tokio::test]
async fn modern_requests_and_discover() {
    let server = TestServer::start(&[]).await;
    let discover = request(1, "server/discover", json!({"_meta": modern_meta()}));
    let headers = [
        ("mcp-protocol-version", MODERN),
        ("mcp-method", "server/discover"),
    ];
    let (status, _, body) = post(&server, discover, &headers).await;
    assert_eq!(status, 200, "{body}");
    let versions: Vec<&str> = body["result"]["supportedVersions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(versions, ["2025-03-26", "2025-06-18", "2025-11-25", MODERN]);

    let call = request(
        2,
        "tools/call",
        json!({"name": "ping", "arguments": {}, "_meta": modern_meta()}),
    );
    let headers = [
        ("mcp-protocol-version", MODERN),
        ("mcp-method", "tools/call"),
        ("mcp-name", "ping"),
    ];
    let (status, _, body) = post(&server, call, &headers).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["resultType"], "complete");

    let list = request(3, "tools/list", json!({"_meta": modern_meta()}));
    let headers = [
        ("mcp-protocol-version", MODERN),
        ("mcp-method", "tools/list"),
    ];
    let (_, _, body) = post(&server, list, &headers).await;
    assert_eq!(body["result"]["cacheScope"], "public");
    assert!(body["result"]["ttlMs"].as_u64().unwrap() > 0);
    server.stop().await;
}

struct Case {
    name: &'static str,
    body: String,
    headers: Vec<(&'static str, &'static str)>,
    status: u16,
    code: i64,
    hint: &'static str,
}

#[tokio::test]
async fn bad_requests_get_status_and_jsonrpc_error() {
    let server = TestServer::start(&[("APP__HTTP__MAX_BODY_BYTES", "2048")]).await;
    let modern_call = |name: &str, method_header: &'static str| {
        (
            request(
                5,
                "tools/call",
                json!({"name": name, "arguments": {}, "_meta": modern_meta()}),
            ),
            vec![
                ("mcp-protocol-version", MODERN),
                ("mcp-method", method_header),
                ("mcp-name", "ping"),
            ],
        )
    };
    let (mismatch_body, mismatch_headers) = modern_call("ping", "tools/list");
    let cases = vec![
        Case {
            name: "malformed JSON",
            body: "{\"jsonrpc\": \"2.0\", ".into(),
            headers: vec![],
            status: 400,
            code: -32700,
            hint: "not valid JSON",
        },
        Case {
            name: "batch array",
            body: format!("[{}]", ping_body(1)),
            headers: vec![("mcp-protocol-version", "2025-06-18")],
            status: 400,
            code: -32600,
            hint: "batch",
        },
        Case {
            name: "not an object",
            body: "42".into(),
            headers: vec![],
            status: 400,
            code: -32600,
            hint: "JSON object",
        },
        Case {
            name: "wrong content type",
            body: ping_body(1),
            headers: vec![("content-type", "text/plain")],
            status: 415,
            code: -32600,
            hint: "application/json",
        },
        Case {
            name: "no Accept for event streams",
            body: ping_body(1),
            headers: vec![("accept", "application/json")],
            status: 406,
            code: -32600,
            hint: "text/event-stream",
        },
        Case {
            name: "oversized body",
            body: request(
                1,
                "tools/call",
                json!({"name": "echo", "arguments": {"text": "x".repeat(4000)}}),
            ),
            headers: vec![],
            status: 413,
            code: -32600,
            hint: "larger than 2048 bytes",
        },
        Case {
            name: "unsupported protocol version",
            body: ping_body(1),
            headers: vec![("mcp-protocol-version", "2099-01-01")],
            status: 400,
            code: -32022,
            hint: "2025-11-25",
        },
        Case {
            name: "Mcp-Method header does not match the body",
            body: mismatch_body,
            headers: mismatch_headers,
            status: 400,
            code: -32020,
            hint: "",
        },
        Case {
            name: "modern request without _meta",
            body: request(1, "tools/list", json!({})),
            headers: vec![
                ("mcp-protocol-version", MODERN),
                ("mcp-method", "tools/list"),
            ],
            status: 400,
            code: -32602,
            hint: "",
        },
        Case {
            name: "unknown method (modern)",
            body: request(1, "no/such", json!({"_meta": modern_meta()})),
            headers: vec![("mcp-protocol-version", MODERN), ("mcp-method", "no/such")],
            status: 404,
            code: -32601,
            hint: "",
        },
        Case {
            name: "unknown method (legacy)",
            body: request(1, "no/such", json!({})),
            headers: vec![("mcp-protocol-version", LEGACY)],
            status: 200,
            code: -32601,
            hint: "",
        },
        Case {
            name: "unknown tool",
            body: request(1, "tools/call", json!({"name": "nope", "arguments": {}})),
            headers: vec![("mcp-protocol-version", LEGACY)],
            status: 200,
            code: -32602,
            hint: "tool not found",
        },
        Case {
            name: "foreign Origin",
            body: ping_body(1),
            headers: vec![("origin", "https://evil.example")],
            status: 403,
            code: -32600,
            hint: "origin",
        },
        Case {
            name: "unknown Host",
            body: ping_body(1),
            headers: vec![("host", "evil.example")],
            status: 403,
            code: -32600,
            hint: "APP__HTTP__ALLOWED_HOSTS",
        },
    ];
    for case in cases {
        let (status, headers, body) = post(&server, case.body, &case.headers).await;
        assert_eq!(status, case.status, "{}: {body}", case.name);
        assert_jsonrpc_error(&body, case.code, case.hint);
        assert!(
            headers.get("x-request-id").is_some(),
            "{}: no x-request-id",
            case.name
        );
        assert_still_serving(&server).await;
    }

    // A body that is JSON but not a valid envelope still gets its id back when it is readable.
    let bad_meta = request(
        7,
        "tools/call",
        json!({"name": "ping", "arguments": {}, "_meta": {"traceparent": 123}}),
    );
    let (status, _, body) = post(&server, bad_meta, &[]).await;
    assert_eq!(status, 400, "{body}");
    assert_jsonrpc_error(&body, -32600, "expected a string");
    assert_eq!(body["id"], 7, "{body}");
    assert_still_serving(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn bad_tool_arguments_are_tool_errors() {
    let server = TestServer::start(&[]).await;
    let cases = [
        // The platform's schema validation names the path and the rule.
        (
            json!({"text": 7}),
            "/text: 7 is not of type \"string\" (type)",
        ),
        (json!({}), "(required)"),
        (
            json!({"text": "hi", "extra": true}),
            "(additionalProperties)",
        ),
    ];
    for (arguments, hint) in cases {
        let call = request(
            1,
            "tools/call",
            json!({"name": "echo", "arguments": arguments}),
        );
        let (status, _, body) = post(&server, call, &[("mcp-protocol-version", LEGACY)]).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["result"]["isError"], true, "{body}");
        let text = body["result"]["content"][0]["text"].as_str().unwrap();
        assert!(text.contains(hint), "{text:?} lacks {hint:?}");
    }
    server.stop().await;
}

#[tokio::test]
async fn get_and_delete_are_not_allowed() {
    let server = TestServer::start(&[]).await;
    let client = crate::helpers::client();
    for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
        let resp = client
            .request(method.clone(), server.url())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 405, "{method}");
        assert_eq!(resp.headers()["allow"], "POST");
        let body: Value = resp.json().await.unwrap();
        assert_jsonrpc_error(&body, -32600, "POST only");
    }
    server.stop().await;
}

#[tokio::test]
async fn health_routes_and_request_ids() {
    let server = TestServer::start(&[]).await;
    let client = crate::helpers::client();
    for path in ["/livez", "/readyz"] {
        // Health checks come with the task IP as Host: no Host check there.
        let resp = client
            .get(format!("{}{path}", server.base()))
            .header("host", "10.0.3.7:8080")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path}");
    }
    let echo = |id: &'static str| {
        client
            .get(format!("{}/livez", server.base()))
            .header("x-request-id", id)
            .send()
    };
    assert_eq!(
        echo("abc-123").await.unwrap().headers()["x-request-id"],
        "abc-123"
    );
    let replaced = echo("has space").await.unwrap();
    let generated = replaced.headers()["x-request-id"].to_str().unwrap();
    assert_eq!(
        generated.len(),
        36,
        "a UUID replaces an insane id: {generated}"
    );
    let resp = client
        .get(format!("{}/nope", server.base()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    server.stop().await;
}

#[tokio::test]
async fn allowed_browser_origins_get_cors() {
    let origin = "https://app.example.com";
    let server = TestServer::start(&[("APP__HTTP__ALLOWED_ORIGINS", origin)]).await;
    let preflight = crate::helpers::client()
        .request(reqwest::Method::OPTIONS, server.url())
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type,authorization,mcp-protocol-version",
        )
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    let headers = preflight.headers();
    assert_eq!(headers["access-control-allow-origin"], origin);
    assert!(
        headers["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("mcp-protocol-version")
    );

    let (status, headers, body) = post(
        &server,
        ping_body(1),
        &[("origin", origin), ("mcp-protocol-version", LEGACY)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["access-control-allow-origin"], origin);
    assert!(
        headers["access-control-expose-headers"]
            .to_str()
            .unwrap()
            .contains("www-authenticate")
    );

    // Another origin gets neither CORS headers nor an answer.
    let (status, headers, _) = post(
        &server,
        ping_body(1),
        &[
            ("origin", "https://evil.example"),
            ("mcp-protocol-version", LEGACY),
        ],
    )
    .await;
    assert_eq!(status, 403);
    assert!(headers.get("access-control-allow-origin").is_none());
    server.stop().await;
}

#[tokio::test]
async fn loopback_origins_pass_on_the_default_hosts_and_nothing_else_changes() {
    let local = TestServer::start(&[]).await;
    for origin in [
        "http://localhost:5173",
        "http://127.0.0.1:8080",
        "http://[::1]:3000",
    ] {
        let (status, headers, body) = post(
            &local,
            ping_body(1),
            &[("origin", origin), ("mcp-protocol-version", LEGACY)],
        )
        .await;
        assert_eq!(status, 200, "{origin}: {body}");
        assert_eq!(headers["access-control-allow-origin"], origin);
    }
    for origin in ["https://evil.example", "http://localhost.evil.example:80"] {
        let (status, _, body) = post(
            &local,
            ping_body(1),
            &[("origin", origin), ("mcp-protocol-version", LEGACY)],
        )
        .await;
        assert_eq!(status, 403, "{origin}: {body}");
    }
    local.stop().await;
    // Behind a load balancer (a public host allowed), loopback origins are foreign like any other.
    let public =
        TestServer::start(&[("APP__HTTP__ALLOWED_HOSTS", "mcp.example.com,127.0.0.1")]).await;
    let (status, headers, body) = post(
        &public,
        ping_body(1),
        &[
            ("origin", "http://localhost:5173"),
            ("mcp-protocol-version", LEGACY),
        ],
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(headers.get("access-control-allow-origin").is_none());
    public.stop().await;
}
