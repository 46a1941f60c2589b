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
