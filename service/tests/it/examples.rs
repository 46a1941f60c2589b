//! The example tools echo and whoami. `cargo generate` leaves this file out with the tools when a
//! new service does not keep them.

use crate::common::Service;
use mcp_smoke::{self as smoke, Era};
use rmcp::model::CallToolRequestParams;
use serde_json::json;

fn call(name: &str, arguments: serde_json::Value) -> CallToolRequestParams {
    CallToolRequestParams::new(name.to_owned())
        .with_arguments(arguments.as_object().unwrap().clone())
}

#[tokio::test]
async fn echo_answers_and_the_platform_enforces_the_ranges_its_schema_states() {
    let service = Service::start(&[]);
    for era in [Era::Legacy, Era::Modern] {
        let client = smoke::connect(&service.url, era, None)
            .await
            .expect("connect");
        let echo = client
            .call_tool(call(
                "echo",
                json!({"text": "ab", "repeat": 2, "uppercase": true}),
            ))
            .await
            .expect("echo");
        assert_eq!(echo.content[0].as_text().unwrap().text, "AB AB");
        for (arguments, problem) in [
            (
                json!({"text": ""}),
                r#"/text: "" is shorter than 1 character (minLength)"#,
            ),
            (
                json!({"text": "hi", "repeat": 11}),
                "/repeat: 11 is greater than the maximum of 10 (maximum)",
            ),
        ] {
            let bad = client
                .call_tool(call("echo", arguments))
                .await
                .expect("a tool error is a result, not a protocol error");
            assert_eq!(bad.is_error, Some(true));
            let text = &bad.content[0].as_text().unwrap().text;
            assert!(text.contains(problem), "{text}");
        }
        client.cancel().await.expect("close");
    }
}

#[tokio::test]
async fn whoami_is_anonymous_without_auth() {
    let service = Service::start(&[]);
    let client = smoke::connect(&service.url, Era::Legacy, None)
        .await
        .expect("connect");
    let out = client
        .call_tool(CallToolRequestParams::new("whoami"))
        .await
        .expect("whoami");
    assert_eq!(
        out.content[0].as_text().unwrap().text,
        "anonymous (auth is off)"
    );
    client.cancel().await.expect("close");
}
