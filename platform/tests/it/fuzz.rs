//! Property test: arbitrary methods, paths, headers, bytes and JSON shapes thrown at the real
//! server over HTTP. No panic, no 5xx, a JSON-RPC error body on every refusal from /mcp, and a
//! good request still works afterwards.

use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::{prelude::*, test_runner::Config};
use serde_json::{Map, Value, json};

use crate::helpers::{LEGACY, TestServer, post, request};

const CASES: u32 = 1500;
static RAN: AtomicUsize = AtomicUsize::new(0);

/// JSON values biased towards the shapes an MCP server reads.
fn json_shape() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("jsonrpc".to_owned()),
        Just("id".to_owned()),
        Just("method".to_owned()),
        Just("params".to_owned()),
        Just("name".to_owned()),
        Just("arguments".to_owned()),
        Just("_meta".to_owned()),
        Just("text".to_owned()),
        Just("io.modelcontextprotocol/protocolVersion".to_owned()),
        "[a-z]{1,8}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        prop_oneof![
            Just("2.0".to_owned()),
            Just("tools/call".to_owned()),
            Just("initialize".to_owned()),
            Just("ping".to_owned()),
            Just("echo".to_owned()),
            Just("2026-07-28".to_owned()),
            ".{0,20}",
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::vec((key.clone(), inner), 0..6)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..512),
        json_shape().prop_map(|v| v.to_string().into_bytes()),
        json_shape().prop_map(|params| {
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params})
                .to_string()
                .into_bytes()
        }),
    ]
}

fn header_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("application/json".to_owned()),
        Just("text/event-stream".to_owned()),
        Just("application/json, text/event-stream".to_owned()),
        Just("2025-06-18".to_owned()),
        Just("2026-07-28".to_owned()),
        "[ -~]{0,40}",
    ]
}

fn header_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("content-type".to_owned()),
        Just("accept".to_owned()),
        Just("mcp-protocol-version".to_owned()),
        Just("mcp-method".to_owned()),
        Just("mcp-name".to_owned()),
        Just("origin".to_owned()),
        Just("x-request-id".to_owned()),
        Just("traceparent".to_owned()),
        Just("authorization".to_owned()),
        "x-[a-z]{1,10}",
    ]
}

#[test]
fn arbitrary_requests_never_break_the_server() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(TestServer::start(&[("APP__HTTP__MAX_BODY_BYTES", "4096")]));
    let client = crate::helpers::client();
    let methods = prop_oneof![
        Just("POST"),
        Just("GET"),
        Just("DELETE"),
        Just("PUT"),
        Just("OPTIONS"),
        Just("PATCH")
    ];
    let paths = prop_oneof![
        Just("/mcp".to_owned()),
        Just("/readyz".to_owned()),
        "/[a-z/%.]{0,16}"
    ];
    let strategy = (
        methods,
        paths,
        prop::collection::vec((header_name(), header_value()), 0..6),
        body(),
    );
    let mut runner = proptest::test_runner::TestRunner::new(Config {
        cases: CASES,
        ..Config::default()
    });
    runner
        .run(&strategy, |(method, path, headers, body)| {
            RAN.fetch_add(1, Ordering::Relaxed);
            let url = format!("{}{path}", server.base());
            let mut req = client.request(method.parse().unwrap(), &url).body(body);
            for (name, value) in &headers {
                req = req.header(name.as_str(), value.as_str());
            }
            let (status, text) = runtime.block_on(async {
                let resp = req.send().await.expect("the server answers");
                let status = resp.status().as_u16();
                (status, resp.text().await.unwrap_or_default())
            });
            prop_assert!(
                [200, 202, 400, 403, 404, 405, 406, 413, 415].contains(&status),
                "unexpected status {status} for {method} {path}: {text}"
            );
            if path == "/mcp" && status >= 400 {
                let body: Value = serde_json::from_str(&text)
                    .map_err(|e| TestCaseError::fail(format!("{e}: {text}")))?;
                prop_assert!(
                    body["error"]["message"].is_string(),
                    "no JSON-RPC error: {text}"
                );
            }
            Ok(())
        })
        .unwrap();
    runtime.block_on(async {
        let (status, _, body) = post(
            &server,
            request(1, "tools/call", json!({"name": "ping", "arguments": {}})),
            &[("mcp-protocol-version", LEGACY)],
        )
        .await;
        assert_eq!(status, 200, "{body}");
        server.stop().await;
    });
    println!("fuzz: {} cases ran", RAN.load(Ordering::Relaxed));
    assert!(RAN.load(Ordering::Relaxed) >= CASES as usize);
}

const MIXED_CASES: u32 = 1000;

/// A header's value: `None` (not sent), one the server accepts, or a wrong one.
fn one_of(good: &'static [&'static str], noise: &'static str) -> BoxedStrategy<Option<String>> {
    prop_oneof![
        1 => Just(None),
        3 => prop::sample::select(good).prop_map(|v| Some(v.to_owned())),
        1 => noise.prop_map(Some),
    ]
    .boxed()
}

/// A valid request of either protocol era, then maybe mutated: cut, a byte changed, bytes put in.
fn mutated_request() -> impl Strategy<Value = Vec<u8>> {
    let valid = prop::sample::select(vec![
        request(1, "tools/call", json!({"name": "ping", "arguments": {}})),
        request(2, "tools/list", json!({})),
        request(
            3,
            "initialize",
            json!({"protocolVersion": LEGACY, "capabilities": {}, "clientInfo": {"name": "p", "version": "1"}}),
        ),
        request(
            4,
            "tools/call",
            json!({"name": "echo", "arguments": {"text": "hi"}, "_meta": crate::helpers::modern_meta()}),
        ),
        request(
            5,
            "server/discover",
            json!({"_meta": crate::helpers::modern_meta()}),
        ),
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.to_owned(),
    ]);
    (
        valid,
        0..4u8,
        any::<prop::sample::Index>(),
        prop::collection::vec(any::<u8>(), 1..8),
    )
        .prop_map(|(valid, mutation, at, bytes)| {
            let mut body = valid.into_bytes();
            let at = at.index(body.len());
            match mutation {
                0 => {}
                1 => body.truncate(at),
                2 => body[at] = bytes[0],
                _ => {
                    body.splice(at..at, bytes);
                }
            }
            body
        })
}

/// Every MCP header and the body varied together, against a server with auth on (so tokens are
/// parsed): only the statuses the README lists, a JSON-RPC error on every refusal, a request id on
/// every answer, and the next good request served.
#[test]
fn mixed_headers_and_bodies_get_only_listed_answers() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(crate::auth::start());
    let host = server.addr.to_string();
    let valid_token = format!("Bearer {}", crate::auth::token(&crate::auth::claims()));
    let client = crate::helpers::client();
    let token = prop_oneof![
        1 => Just(None),
        3 => Just(Some(valid_token.clone())),
        // A valid token with a character changed (header, claims or signature).
        2 => any::<prop::sample::Index>().prop_map({
            let valid_token = valid_token.clone();
            move |at| {
                let mut t = valid_token.clone().into_bytes();
                let at = 7 + at.index(t.len() - 7);
                t[at] = if t[at] == b'A' { b'B' } else { b'A' };
                Some(String::from_utf8(t).unwrap())
            }
        }),
        1 => "(Bearer |Basic |bearer )?[ -~]{0,60}".prop_map(Some),
    ];
    let headers = (
        one_of(
            &["application/json", "application/json; charset=utf-8"],
            "[ -~]{0,30}",
        ),
        one_of(
            &[
                "application/json, text/event-stream",
                "text/event-stream, application/json",
            ],
            "[ -~]{0,30}",
        ),
        one_of(
            &["2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28"],
            "[ -~]{0,12}",
        ),
        one_of(
            &["tools/call", "tools/list", "initialize", "server/discover"],
            "[ -~]{0,16}",
        ),
        one_of(&["ping", "echo"], "[ -~]{0,16}"),
        one_of(
            &["http://localhost:5173", "https://evil.example", "null"],
            "[ -~]{0,30}",
        ),
        prop_oneof![
            3 => Just(Some(host.clone())),
            1 => prop::sample::select(vec!["localhost", "[::1]:9", "evil.example"]).prop_map(|h| Some(h.to_owned())),
            1 => "[ -~]{0,20}".prop_map(Some),
        ],
        token,
    );
    let bodies = prop_oneof![
        4 => mutated_request(),
        1 => body(),
    ];
    let mut runner = proptest::test_runner::TestRunner::new(Config {
        cases: MIXED_CASES,
        ..Config::default()
    });
    let ran = AtomicUsize::new(0);
    runner
        .run(
            &(headers, bodies),
            |((ct, accept, version, method, name, origin, host, auth), body)| {
                ran.fetch_add(1, Ordering::Relaxed);
                let mut req = client.post(server.url()).body(body);
                for (header, value) in [
                    ("content-type", ct),
                    ("accept", accept),
                    ("mcp-protocol-version", version),
                    ("mcp-method", method),
                    ("mcp-name", name),
                    ("origin", origin),
                    ("host", host),
                    ("authorization", auth),
                ] {
                    if let Some(value) = value {
                        req = req.header(header, value);
                    }
                }
                let (status, request_id, text) = runtime.block_on(async {
                    let resp = req.send().await.expect("the server answers");
                    let id = resp.headers().get("x-request-id").cloned();
                    (
                        resp.status().as_u16(),
                        id,
                        resp.text().await.unwrap_or_default(),
                    )
                });
                prop_assert!(
                    [200, 202, 400, 401, 403, 404, 406, 413, 415].contains(&status),
                    "unexpected status {status}: {text}"
                );
                prop_assert!(request_id.is_some(), "no request id ({status}): {text}");
                if status >= 400 {
                    let body: Value = serde_json::from_str(&text)
                        .map_err(|e| TestCaseError::fail(format!("{e}: {status} {text}")))?;
                    prop_assert!(body["error"]["code"].is_i64(), "no JSON-RPC error: {text}");
                    prop_assert!(
                        body["error"]["message"].is_string(),
                        "no JSON-RPC error: {text}"
                    );
                }
                let (status, _, body) = runtime.block_on(post(
                    &server,
                    request(1, "tools/call", json!({"name": "ping", "arguments": {}})),
                    &[
                        ("mcp-protocol-version", LEGACY),
                        ("authorization", &valid_token),
                    ],
                ));
                prop_assert_eq!(status, 200, "the next good request: {}", body);
                Ok(())
            },
        )
        .unwrap();
    runtime.block_on(server.stop());
    println!("mixed fuzz: {} cases ran", ran.load(Ordering::Relaxed));
    assert!(ran.load(Ordering::Relaxed) >= MIXED_CASES as usize);
}
