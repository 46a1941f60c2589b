//! Fixture tools of the content, notification, schema and header scenarios (names, texts and
//! shapes as the suites expect them).

// The suites still test logging (`logging/setLevel`, `notifications/message`), which the
// 2026-07-28 revision deprecates (SEP-2577) and rmcp marks `#[deprecated]`.
#![allow(deprecated)]

use std::{sync::Arc, time::Duration};

use rmcp::{
    ErrorData, RoleServer,
    handler::server::wrapper::Parameters,
    model::{
        CallToolResult, ClientCapabilities, ContentBlock, JsonObject, LoggingLevel,
        LoggingMessageNotificationParam, ProgressNotificationParam, ResourceContents,
    },
    service::RequestContext,
    tool, tool_router,
};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

use crate::server::{Conformance, PNG_BASE64, modern};

/// 16 samples of 8 kHz mono 8-bit silence.
const WAV_BASE64: &str =
    "UklGRjQAAABXQVZFZm10IBAAAAABAAEAQB8AAEAfAAABAAgAZGF0YRAAAACAgICAgICAgICAgICAgICA";
/// Pause between the notifications of one call, so a client sees them arrive as a stream.
const STEP: Duration = Duration::from_millis(50);

#[derive(Debug, Deserialize, JsonSchema)]
struct HeaderArgs {
    /// Mirrored by 2026-07-28 clients in the `Mcp-Param-Region` header, which the server checks
    /// against this value (SEP-2243).
    #[schemars(extend("x-mcp-header" = "Region"))]
    region: String,
}

/// The JSON Schema 2020-12 keywords a server must hand through untouched (SEP-1613, SEP-2106).
fn schema_2020_12() -> Arc<JsonObject> {
    match json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "$defs": {
            "address": {
                "$anchor": "addressDef",
                "type": "object",
                "properties": { "street": { "type": "string" }, "city": { "type": "string" } }
            }
        },
        "properties": {
            "name": { "type": "string" },
            "address": { "$ref": "#/$defs/address" },
            "contactMethod": { "type": "string", "enum": ["phone", "email"] },
            "phone": { "type": "string" },
            "email": { "type": "string" }
        },
        "allOf": [{ "anyOf": [{ "required": ["phone"] }, { "required": ["email"] }] }],
        "if": { "properties": { "contactMethod": { "const": "phone" } }, "required": ["contactMethod"] },
        "then": { "required": ["phone"] },
        "else": { "required": ["email"] },
        "additionalProperties": false
    }) {
        serde_json::Value::Object(schema) => Arc::new(schema),
        _ => unreachable!("a JSON object literal"),
    }
}

/// Whether a `notifications/message` at `level` may go out for this request. 2026-07-28 clients
/// opt in per request with `_meta` `logLevel` (and get nothing without it); older clients set a
/// level with `logging/setLevel`, which a stateless server cannot remember, so they get every
/// message.
fn may_log(context: &RequestContext<RoleServer>, level: LoggingLevel) -> bool {
    if !modern(context) {
        return true;
    }
    context
        .meta
        .log_level()
        .is_some_and(|threshold| severity(level) >= severity(threshold))
}

/// RFC 5424 order (rmcp's `LoggingLevel` has no ordering of its own).
fn severity(level: LoggingLevel) -> u8 {
    match level {
        LoggingLevel::Debug => 0,
        LoggingLevel::Info => 1,
        LoggingLevel::Notice => 2,
        LoggingLevel::Warning => 3,
        LoggingLevel::Error => 4,
        LoggingLevel::Critical => 5,
        LoggingLevel::Alert => 6,
        LoggingLevel::Emergency => 7,
    }
}

async fn log(context: &RequestContext<RoleServer>, level: LoggingLevel, message: &str) {
    if may_log(context, level) {
        // A client that went away cancels the request; nothing to do about a failed send.
        let _ = context
            .peer
            .notify_logging_message(
                LoggingMessageNotificationParam::new(level, json!(message))
                    .with_logger("conformance"),
            )
            .await;
    }
}

#[tool_router(router = content_tools, vis = "pub(crate)")]
impl Conformance {
    #[tool(description = "Returns one text block.")]
    async fn test_simple_text(&self) -> CallToolResult {
        CallToolResult::success(vec![ContentBlock::text(
            "This is a simple text response for testing.",
        )])
    }

    #[tool(description = "Returns one PNG image block.")]
    async fn test_image_content(&self) -> CallToolResult {
        CallToolResult::success(vec![ContentBlock::image(PNG_BASE64, "image/png")])
    }

    #[tool(description = "Returns one WAV audio block.")]
    async fn test_audio_content(&self) -> CallToolResult {
        CallToolResult::success(vec![ContentBlock::audio(WAV_BASE64, "audio/wav")])
    }

    #[tool(description = "Returns an embedded text resource.")]
    async fn test_embedded_resource(&self) -> CallToolResult {
        CallToolResult::success(vec![ContentBlock::resource(ResourceContents::text(
            "This is an embedded resource content.",
            "test://embedded-resource",
        ))])
    }

    #[tool(description = "Returns text, an image and an embedded JSON resource together.")]
    async fn test_multiple_content_types(&self) -> CallToolResult {
        CallToolResult::success(vec![
            ContentBlock::text("Multiple content types test:"),
            ContentBlock::image(PNG_BASE64, "image/png"),
            ContentBlock::resource(
                ResourceContents::text(
                    r#"{"test":"data","value":123}"#,
                    "test://mixed-content-resource",
                )
                .with_mime_type("application/json"),
            ),
        ])
    }

    #[tool(description = "Sends three info log messages while it works.")]
    async fn test_tool_with_logging(&self, context: RequestContext<RoleServer>) -> CallToolResult {
        for message in [
            "Tool execution started",
            "Tool processing data",
            "Tool execution completed",
        ] {
            log(&context, LoggingLevel::Info, message).await;
            tokio::time::sleep(STEP).await;
        }
        CallToolResult::success(vec![ContentBlock::text("Logging test completed")])
    }

    #[tool(description = "Logs one message, only when the request asked for log messages.")]
    async fn test_logging_tool(&self, context: RequestContext<RoleServer>) -> CallToolResult {
        log(&context, LoggingLevel::Info, "test_logging_tool ran").await;
        CallToolResult::success(vec![ContentBlock::text("Logging tool completed")])
    }

    #[tool(description = "Reports progress 0, 50 and 100 of 100 when given a progress token.")]
    async fn test_tool_with_progress(&self, context: RequestContext<RoleServer>) -> CallToolResult {
        let token = context.meta.get_progress_token();
        for (done, message) in [(0.0, "Starting"), (50.0, "Halfway"), (100.0, "Done")] {
            if let Some(token) = &token {
                let _ = context
                    .peer
                    .notify_progress(
                        ProgressNotificationParam::new(token.clone(), done)
                            .with_total(100.0)
                            .with_message(message),
                    )
                    .await;
            }
            tokio::time::sleep(STEP).await;
        }
        CallToolResult::success(vec![ContentBlock::text("Progress test completed")])
    }

    #[tool(description = "Always fails as a tool (isError), not as a protocol error.")]
    async fn test_error_handling(&self) -> CallToolResult {
        CallToolResult::error(vec![ContentBlock::text(
            "This tool intentionally returns an error for testing",
        )])
    }

    #[tool(
        description = "Takes a contact whose input schema uses JSON Schema 2020-12 keywords.",
        input_schema = schema_2020_12()
    )]
    async fn json_schema_2020_12_tool(&self, arguments: JsonObject) -> CallToolResult {
        let name = arguments
            .get("name")
            .and_then(|n| n.as_str())
            .unwrap_or("(no name)");
        CallToolResult::success(vec![ContentBlock::text(format!("Contact: {name}"))])
    }

    #[tool(description = "Answers after a short pause (the SSE polling scenarios call it).")]
    async fn test_reconnection(&self) -> CallToolResult {
        tokio::time::sleep(2 * STEP).await;
        CallToolResult::success(vec![ContentBlock::text("Reconnection test completed")])
    }

    #[tool(description = "Echoes `region`, an argument mirrored in a custom request header.")]
    async fn test_custom_header(&self, Parameters(args): Parameters<HeaderArgs>) -> CallToolResult {
        CallToolResult::success(vec![ContentBlock::text(format!("region: {}", args.region))])
    }

    #[tool(description = "Needs the client's sampling capability and says so when it is missing.")]
    async fn test_missing_capability(
        &self,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let declared = context.meta.client_capabilities().unwrap_or_default();
        if declared.sampling.is_none() {
            return Err(ErrorData::missing_required_client_capability(
                ClientCapabilities::builder().enable_sampling().build(),
            ));
        }
        Ok(CallToolResult::success(vec![ContentBlock::text(
            "The client declared sampling",
        )]))
    }
}
