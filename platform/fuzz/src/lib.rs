//! What the fuzz targets share. An input is an HTTP/1.1 request (for the refusal mapping, a
//! response) as it comes off the wire, so the seeds are real requests and libFuzzer mutates their
//! text; one single-threaded runtime drives the platform's real layers in-process; and the
//! promises every answer keeps (a JSON-RPC error body on a refusal, a sane request id) are checked
//! in one place.

use std::{
    convert::Infallible,
    sync::{Arc, LazyLock},
};

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode, header};
use http_body_util::BodyExt as _;
use mcp_platform::{
    McpServer, Service, Settings,
    http::{Readiness, auth::Authenticator},
    mcp::{self, EndpointOptions},
    stack,
    telemetry::ServerSpans,
};
use rmcp::{
    handler::server::wrapper::Parameters,
    model::{CallToolResult, ContentBlock},
    tool, tool_router,
};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;
use tokio::runtime::Runtime;
use tower::ServiceExt as _;

/// More headers than any seed has; a request with more is not parsed (hyper's own limit is 100).
const MAX_HEADERS: usize = 64;

/// The request in `data`: an HTTP/1.1 head (httparse, as hyper reads it), the rest is the body.
/// `None` when it is not a request hyper would hand the stack.
pub fn request(data: &[u8]) -> Option<Request<Bytes>> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    let httparse::Status::Complete(head) = parsed.parse(data).ok()? else {
        return None;
    };
    let mut builder = Request::builder().method(parsed.method?).uri(parsed.path?);
    for h in parsed.headers.iter() {
        builder = builder.header(
            HeaderName::from_bytes(h.name.as_bytes()).ok()?,
            HeaderValue::from_bytes(h.value).ok()?,
        );
    }
    builder.body(Bytes::copy_from_slice(&data[head..])).ok()
}

/// The response in `data`, read like [`request`].
pub fn response(data: &[u8]) -> Option<Response<Bytes>> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Response::new(&mut headers);
    let httparse::Status::Complete(head) = parsed.parse(data).ok()? else {
        return None;
    };
    let mut builder = Response::builder().status(StatusCode::from_u16(parsed.code?).ok()?);
    for h in parsed.headers.iter() {
        builder = builder.header(
            HeaderName::from_bytes(h.name.as_bytes()).ok()?,
            HeaderValue::from_bytes(h.value).ok()?,
        );
    }
    builder.body(Bytes::copy_from_slice(&data[head..])).ok()
}

/// One runtime for every input: the layers are async, the targets are not.
pub fn runtime() -> &'static Runtime {
    static RUNTIME: LazyLock<Runtime> = LazyLock::new(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread runtime")
    });
    &RUNTIME
}

/// An answer, read to its last byte.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// Sends `req` through `router` and reads the whole answer.
pub fn send<S>(service: &S, req: Request<Bytes>) -> Answer
where
    S: tower::Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Clone,
{
    runtime().block_on(async {
        let response = match service.clone().oneshot(req.map(Body::from)).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .expect("an answer of the platform can be read to its end")
            .to_bytes();
        Answer {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    })
}

/// The embedded defaults plus `env`.
pub fn settings(env: &[(&str, &str)]) -> Settings {
    Settings::load_from(env.iter().map(|(k, v)| (k.to_string(), v.to_string())))
        .expect("fuzz settings")
}

/// Auth on, with the test key set of `platform/tests/fixtures` (nothing here can sign for it).
pub const AUTH: &[(&str, &str)] = &[
    ("APP__AUTH__MODE", "jwt"),
    ("APP__AUTH__RESOURCE", "https://mcp.test.example/mcp"),
    ("APP__AUTH__ISSUER", "https://issuer.test.example"),
    (
        "APP__AUTH__JWKS_FILE",
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/test-jwks.json"
        ),
    ),
    ("APP__AUTH__REQUIRED_SCOPES", "mcp:call"),
];

/// The `resource_metadata` every challenge under [`AUTH`] names.
pub const AUTH_METADATA: &str =
    "resource_metadata=\"https://mcp.test.example/.well-known/oauth-protected-resource/mcp\"";

pub fn authenticator(settings: &Settings) -> Option<Arc<Authenticator>> {
    runtime()
        .block_on(Authenticator::from_settings(&settings.auth))
        .expect("the fuzz auth settings are valid")
}

/// The tools behind the fuzzed endpoint: one without arguments, one with.
#[derive(Clone)]
pub struct Tools;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EchoArgs {
    /// Echoed back.
    pub text: String,
}

#[tool_router]
impl Tools {
    #[tool(description = "Answers pong.")]
    async fn ping(&self) -> CallToolResult {
        CallToolResult::success(vec![ContentBlock::text("pong")])
    }

    #[tool(description = "Echoes its text.")]
    async fn echo(&self, Parameters(args): Parameters<EchoArgs>) -> CallToolResult {
        CallToolResult::success(vec![ContentBlock::text(args.text)])
    }
}

/// The platform's whole public router (every layer, rmcp, [`Tools`]) on the embedded defaults
/// plus `env`, as `App::bind` builds it.
pub fn stack(env: &[(&str, &str)]) -> stack::PublicService {
    let settings = settings(env);
    let service = Service {
        name: "fuzz",
        version: "0.0.0",
    };
    let handler = Arc::new(McpServer::new(&service, Tools, Tools::tool_router()));
    let endpoint = mcp::endpoint(
        handler,
        EndpointOptions {
            max_body_bytes: settings.http.max_body_bytes,
            shutdown: Default::default(),
            spans: ServerSpans::default(),
            tool_rate_limits: None,
        },
    );
    stack::public_service(
        &settings.http,
        settings.http.memory_budget_bytes,
        endpoint,
        authenticator(&settings),
        Readiness::default(),
        ServerSpans::default(),
    )
}

/// A refusal's body: a JSON-RPC 2.0 error with an integer code, a message, an id that is null, a
/// string or a number, and no result.
pub fn jsonrpc_error(body: &[u8]) -> Value {
    let text = String::from_utf8_lossy(body);
    let value: Value = serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("a refusal's body is not JSON ({e}): {text}"));
    assert_eq!(value["jsonrpc"], "2.0", "not JSON-RPC 2.0: {text}");
    assert!(value["error"]["code"].is_i64(), "no error code: {text}");
    assert!(
        value["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "no error message: {text}"
    );
    let id = &value["id"];
    assert!(
        id.is_null() || id.is_string() || id.is_number(),
        "a JSON-RPC id is null, a string or a number: {text}"
    );
    assert!(
        value.get("result").is_none(),
        "an error with a result: {text}"
    );
    value
}

/// What the README promises of an `x-request-id`: 1..=128 visible ASCII characters.
pub fn is_sane_request_id(id: &[u8]) -> bool {
    (1..=128).contains(&id.len()) && id.iter().all(u8::is_ascii_graphic)
}

/// Every answer carries one sane `x-request-id`: the caller's (the first one sent) when that one
/// is sane, else a new UUID v4. Returns it.
pub fn check_request_id(sent: &HeaderMap, answer: &Answer) -> String {
    let ids: Vec<&HeaderValue> = answer.headers.get_all("x-request-id").iter().collect();
    assert_eq!(ids.len(), 1, "one x-request-id per answer: {ids:?}");
    let id = ids[0].to_str().expect("a sane request id is ASCII");
    assert!(
        is_sane_request_id(id.as_bytes()),
        "insane request id {id:?}"
    );
    match sent.get("x-request-id") {
        Some(theirs) if is_sane_request_id(theirs.as_bytes()) => {
            assert_eq!(
                id.as_bytes(),
                theirs.as_bytes(),
                "the caller's sane id is kept"
            )
        }
        _ => assert_eq!(
            uuid::Uuid::parse_str(id).map(|u| u.get_version_num()),
            Ok(4),
            "an insane or missing id is replaced by a UUID v4, not {id:?}"
        ),
    }
    id.to_owned()
}

/// Whether a message says it is JSON, as the platform decides it.
pub fn is_json(headers: &HeaderMap) -> bool {
    mcp_platform::http::is_json(headers)
}

/// The `WWW-Authenticate` challenge of a 401: one Bearer challenge naming the metadata document.
pub fn challenge(answer: &Answer) -> &str {
    let challenges: Vec<&HeaderValue> = answer
        .headers
        .get_all(header::WWW_AUTHENTICATE)
        .iter()
        .collect();
    assert_eq!(
        challenges.len(),
        1,
        "one challenge on a 401: {challenges:?}"
    );
    let challenge = challenges[0]
        .to_str()
        .expect("the challenge is visible ASCII");
    assert!(
        challenge.starts_with("Bearer ") && challenge.contains(AUTH_METADATA),
        "{challenge}"
    );
    challenge
}
