//! The platform checks every `tools/call`'s arguments against the tool's input schema before the
//! tool runs: a violation is a tool error (`isError: true`, not a protocol error) naming the
//! failing path and rule, and the tool is never called.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use mcp_platform::McpServer;
use rmcp::{
    handler::server::wrapper::Parameters,
    model::{CallToolResult, ContentBlock},
    tool, tool_router,
};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::helpers::{LEGACY, SERVICE, TestServer, post, request, settings};

/// Counts the calls that reach its tool.
#[derive(Clone, Default)]
struct Booking {
    calls: Arc<AtomicUsize>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
enum Class {
    Economy,
    Business,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct BookArgs {
    /// Who travels.
    #[schemars(length(min = 1))]
    name: String,
    /// How many seats (at most 9).
    #[schemars(range(max = 9))]
    seats: u32,
    class: Class,
    /// An IATA airport code.
    #[schemars(pattern(r"^[A-Z]{3}$"))]
    from: String,
    /// Window seats, if any.
    #[serde(default)]
    window: Option<bool>,
}

#[tool_router]
impl Booking {
    #[tool(description = "Books seats.")]
    async fn book(&self, Parameters(args): Parameters<BookArgs>) -> CallToolResult {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let window = args.window.unwrap_or_default();
        let text = format!(
            "{} x{} {:?} from {} window={window}",
            args.name, args.seats, args.class, args.from
        );
        CallToolResult::success(vec![ContentBlock::text(text)])
    }
}

async fn book(server: &TestServer, arguments: Value) -> Value {
    let body = request(
        1,
        "tools/call",
        json!({"name": "book", "arguments": arguments}),
    );
    let (status, _, answer) = post(server, body, &[("mcp-protocol-version", LEGACY)]).await;
    assert_eq!(status, 200, "{answer}");
    answer["result"].clone()
}

#[tokio::test]
async fn arguments_that_break_the_schema_are_a_tool_error_naming_the_path_and_rule() {
    let booking = Booking::default();
    let calls = booking.calls.clone();
    let handler = McpServer::new(&SERVICE, booking, Booking::tool_router());
    let server = TestServer::start_handler(&settings(&[]), Arc::new(handler)).await;
    let valid = json!({"name": "Ada", "seats": 2, "class": "economy", "from": "CDG"});

    let answer = book(&server, valid.clone()).await;
    assert_eq!(answer["isError"], false, "{answer}");
    assert_eq!(
        answer["content"][0]["text"],
        "Ada x2 Economy from CDG window=false"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    let with = |field: &str, value: Value| {
        let mut arguments = valid.clone();
        arguments[field] = value;
        arguments
    };
    let without = |field: &str| {
        let mut arguments = valid.clone();
        arguments.as_object_mut().unwrap().remove(field);
        arguments
    };
    for (arguments, reason) in [
        (
            with("name", json!("")),
            r#"invalid arguments: /name: "" is shorter than 1 character (minLength)"#,
        ),
        (
            with("seats", json!(10)),
            "invalid arguments: /seats: 10 is greater than the maximum of 9 (maximum)",
        ),
        (
            with("class", json!("first")),
            r#"invalid arguments: /class: "first" is not one of "economy" or "business" (enum)"#,
        ),
        (
            with("from", json!("cdg")),
            r#"invalid arguments: /from: "cdg" does not match "^[A-Z]{3}$" (pattern)"#,
        ),
        (
            with("seats", json!("two")),
            r#"invalid arguments: /seats: "two" is not of type "integer" (type)"#,
        ),
        (
            // An optional field is not nullable either: one type per schema.
            with("window", json!(null)),
            r#"invalid arguments: /window: null is not of type "boolean" (type)"#,
        ),
        (
            without("from"),
            r#"invalid arguments: /: "from" is a required property (required)"#,
        ),
        (
            with("extra", json!(1)),
            "invalid arguments: /: Additional properties are not allowed ('extra' was unexpected) (additionalProperties)",
        ),
    ] {
        let answer = book(&server, arguments.clone()).await;
        assert_eq!(answer["isError"], true, "{arguments}: {answer}");
        assert_eq!(answer["content"][0]["text"], reason, "{arguments}");
    }
    let answer = book(&server, json!({"name": "", "seats": 99})).await;
    let text = answer["content"][0]["text"].as_str().unwrap();
    for rule in [
        "(minLength)",
        "(maximum)",
        "\"class\" is a required property",
    ] {
        assert!(text.contains(rule), "every violation is named: {text}");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1, "the tool never saw them");
    server.stop().await;
}
