//! The example tools echo, whoami and weather. `cargo generate` leaves this file out with the tools when a
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

/// A weather API on loopback: Paris is known (with the right key), Nowhere is not, Boom fails,
/// Garbage answers what is not JSON, Hang never answers. It answers with the `traceparent` it got
/// in `x-got-traceparent`.
async fn weather_api() -> String {
    use axum::{
        http::{HeaderMap, StatusCode, Uri},
        response::IntoResponse,
    };
    async fn current(headers: HeaderMap, uri: Uri) -> axum::response::Response {
        if headers.get("x-api-key").and_then(|v| v.to_str().ok()) != Some("test-key") {
            return StatusCode::UNAUTHORIZED.into_response();
        }
        let traceparent = headers
            .get("traceparent")
            .cloned()
            .unwrap_or(axum::http::HeaderValue::from_static("none"));
        let city = uri
            .query()
            .and_then(|q| q.strip_prefix("city="))
            .unwrap_or_default()
            .to_owned();
        let body = match city.as_str() {
            "Nowhere" => return StatusCode::NOT_FOUND.into_response(),
            "Boom" => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
            "Garbage" => "<html>not json</html>".to_owned(),
            "Hang" => {
                tokio::time::sleep(std::time::Duration::from_secs(60)).await;
                String::new()
            }
            _ => json!({"city": city, "temperature_c": 12.5, "conditions": "sunny"}).to_string(),
        };
        ([("x-got-traceparent", traceparent)], body).into_response()
    }
    let app = axum::Router::new().route("/v1/current", axum::routing::get(current));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weather_calls_its_api_with_the_key_and_turns_every_failure_into_a_tool_error() {
    let api = weather_api().await;
    let service = Service::start(&[
        ("APP__TOOLS__WEATHER__BASE_URL", &api),
        ("APP__TOOLS__WEATHER__API_KEY", "test-key"),
        ("APP__TOOLS__WEATHER__TIMEOUT_MS", "300"),
    ]);
    let client = smoke::connect(&service.url, Era::Legacy, None)
        .await
        .expect("connect");
    let paris = client
        .call_tool(call("weather", json!({"city": "Paris"})))
        .await
        .expect("weather");
    assert_eq!(paris.is_error, Some(false), "{paris:?}");
    assert_eq!(
        paris.content[0].as_text().unwrap().text,
        "Paris: 12.5 °C, sunny"
    );
    assert_eq!(paris.structured_content.unwrap()["temperature_c"], 12.5);
    for (city, problem) in [
        ("Nowhere", "no weather known for \"Nowhere\""),
        ("Boom", "answered 500"),
        ("Garbage", "not understood"),
        ("Hang", "did not answer in time"),
    ] {
        let failed = client
            .call_tool(call("weather", json!({"city": city})))
            .await
            .expect("a downstream failure is a tool result, not a protocol error");
        assert_eq!(failed.is_error, Some(true), "{city}");
        let text = &failed.content[0].as_text().unwrap().text;
        assert!(text.contains(problem), "{city}: {text}");
    }
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn weather_without_settings_says_what_to_set_and_a_bad_url_stops_start_up() {
    let service = Service::start(&[]);
    let client = smoke::connect(&service.url, Era::Legacy, None)
        .await
        .expect("connect");
    let out = client
        .call_tool(call("weather", json!({"city": "Paris"})))
        .await
        .expect("weather");
    assert_eq!(out.is_error, Some(true));
    assert!(
        out.content[0]
            .as_text()
            .unwrap()
            .text
            .contains("APP__TOOLS__WEATHER__BASE_URL")
    );
    client.cancel().await.expect("close");
    let out = std::process::Command::new(env!(concat!("CARGO_BIN_EXE_", env!("CARGO_PKG_NAME"))))
        .env_clear()
        .env("APP__TOOLS__WEATHER__BASE_URL", "ftp://nope")
        .env("APP__TOOLS__WEATHER__API_KEY", "k-1234-secret")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("APP__TOOLS__WEATHER__BASE_URL"), "{stderr}");
    assert!(!stderr.contains("k-1234-secret"), "{stderr}");
}
