use std::{net::SocketAddr, sync::Arc};

use mcp_platform::{App, Caller, McpServer, Service, Settings, telemetry::ServerSpans};
use rmcp::{
    ServerHandler,
    handler::server::wrapper::Parameters,
    model::{CallToolResult, ContentBlock},
    tool, tool_router,
};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::{sync::oneshot, task::JoinHandle};

/// The identity the test servers report.
pub const SERVICE: Service = Service {
    name: "platform-test",
    version: "0.0.0-test",
};

/// A test-only handler: just enough tools to drive the platform (not the service's tools).
#[derive(Clone)]
pub struct Probe;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EchoArgs {
    /// Echoed back.
    pub text: String,
}

#[tool_router]
impl Probe {
    #[tool(description = "Answers pong.")]
    async fn ping(&self) -> CallToolResult {
        tracing::info!("probe pinged");
        CallToolResult::success(vec![ContentBlock::text("pong! probe")])
    }

    #[tool(description = "Echoes its text; an empty text is a tool error.")]
    async fn echo(&self, Parameters(args): Parameters<EchoArgs>) -> CallToolResult {
        if args.text.is_empty() {
            return CallToolResult::error(vec![ContentBlock::text("`text` must not be empty")]);
        }
        CallToolResult::success(vec![ContentBlock::text(args.text)])
    }

    #[tool(description = "The caller, as the auth layer found it.")]
    async fn whoami(&self, caller: Caller) -> CallToolResult {
        let text = match caller.principal {
            Some(p) => format!("subject={} scopes={}", p.subject, p.scopes.join(" ")),
            None => "anonymous (auth is off)".to_owned(),
        };
        CallToolResult::success(vec![ContentBlock::text(text)])
    }
}

pub struct TestServer {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Serves the [`Probe`] tools with the embedded defaults plus `env` (ports are always 0).
    pub async fn start(env: &[(&str, &str)]) -> Self {
        Self::start_traced(env, ServerSpans::default()).await
    }

    /// The same, making its spans with `tracing`.
    pub async fn start_traced(env: &[(&str, &str)], tracing: ServerSpans) -> Self {
        let handler = McpServer::new(&SERVICE, Probe, Probe::tool_router());
        Self::start_handler_traced(&settings(env), Arc::new(handler), tracing).await
    }

    /// The same HTTP stack around another MCP handler.
    pub async fn start_handler<H: ServerHandler + Send + Sync + 'static>(
        settings: &Settings,
        handler: Arc<H>,
    ) -> Self {
        Self::start_handler_traced(settings, handler, ServerSpans::default()).await
    }

    pub async fn start_handler_traced<H: ServerHandler + Send + Sync + 'static>(
        settings: &Settings,
        handler: Arc<H>,
        tracing: ServerSpans,
    ) -> Self {
        let app = App::bind(settings, handler, axum::Router::new(), tracing, None)
            .await
            .expect("bind");
        let addr = app.public_addr();
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(app.run(async {
            let _ = stopped.await;
        }));
        Self {
            addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the server and waits for its drain to finish.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task");
        }
    }
}

/// A plain HTTP client (built the way the platform builds its own).
pub fn client() -> reqwest::Client {
    mcp_platform::http_client_builder().build().unwrap()
}

/// The embedded defaults plus `env`, on port 0, without a drain delay, and without per-caller
/// limits (every test's load comes from 127.0.0.1).
pub fn settings(env: &[(&str, &str)]) -> Settings {
    let mut vars: Vec<(String, String)> = vec![
        ("APP__HTTP__ADDR".into(), "127.0.0.1:0".into()),
        ("APP__ADMIN__ADDR".into(), "127.0.0.1:0".into()),
        ("APP__SHUTDOWN__DRAIN_DELAY_MS".into(), "0".into()),
        ("APP__SHUTDOWN__GRACE_MS".into(), "2000".into()),
        ("APP__HTTP__RATE_LIMIT_PER_SECOND".into(), "0".into()),
    ];
    vars.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Settings::load_from(vars).expect("test settings")
}

pub const LEGACY: &str = "2025-11-25";
pub const MODERN: &str = "2026-07-28";

/// The `_meta` a 2026-07-28 request must carry.
pub fn modern_meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": { "name": "it", "version": "0" }
    })
}

/// A raw POST to /mcp with the usual headers plus `extra`.
pub async fn post(
    server: &TestServer,
    body: impl Into<reqwest::Body>,
    extra: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, Value) {
    use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    headers.insert(
        "accept",
        HeaderValue::from_static("application/json, text/event-stream"),
    );
    // `extra` replaces the defaults (a test may want a wrong Content-Type).
    for (k, v) in extra {
        headers.insert(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    let resp = client()
        .post(server.url())
        .headers(headers)
        .body(body)
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.expect("body");
    let json = serde_json::from_str(&text).unwrap_or_else(|_| json!({ "raw": text }));
    (status, headers, json)
}

/// A JSON-RPC request object.
pub fn request(id: u64, method: &str, params: Value) -> String {
    json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }).to_string()
}

/// Asserts `body` is a JSON-RPC error with `code` whose message contains `hint`.
pub fn assert_jsonrpc_error(body: &Value, code: i64, hint: &str) {
    assert_eq!(body["jsonrpc"], "2.0", "not JSON-RPC: {body}");
    assert_eq!(body["error"]["code"], code, "wrong code: {body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.to_lowercase().contains(&hint.to_lowercase()),
        "message {message:?} lacks {hint:?}"
    );
}

pub const META_PARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
pub const HTTP_PARENT: &str = "00-11111111111111111111111111111111-2222222222222222-01";

/// A tools/call, two health probes and an unknown route.
pub async fn traffic(server: &TestServer) {
    let body = request(
        7,
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "hi"}, "_meta": {"traceparent": META_PARENT}}),
    );
    let (status, _, _) = post(
        server,
        body,
        &[
            ("mcp-protocol-version", LEGACY),
            ("traceparent", HTTP_PARENT),
        ],
    )
    .await;
    assert_eq!(status, 200);
    for probe in ["/livez", "/readyz"] {
        let resp = client()
            .get(format!("{}{probe}", server.base()))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    let resp = client()
        .post(format!("{}/nowhere", server.base()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
}
