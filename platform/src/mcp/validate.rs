//! Every `tools/call`'s arguments, checked against the tool's input schema before the tool runs.
//! serde's decoding checks types only; the rules a schema states (lengths, ranges, enums,
//! patterns, required fields) are checked here, for every tool, so no tool re-checks them by
//! hand. A violation is a tool error the model can read and correct (`isError: true`, naming each
//! failing path and rule), not a protocol error.

use std::collections::HashMap;

use jsonschema::{ValidationError, Validator};
use rmcp::{
    ErrorData,
    handler::server::router::tool::ToolRouter,
    model::{CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock},
};
use serde_json::Value;

/// At most this many violations are named in one answer (a long array can break a rule per item).
const MAX_NAMED: usize = 10;
/// A violation whose text, which quotes the offending value, would be longer than this is told
/// without the value.
const MAX_TEXT: usize = 200;

/// Each tool's input schema, compiled once at start-up.
pub(crate) struct InputSchemas(HashMap<String, Validator>);

impl InputSchemas {
    /// Compiles the schemas of every tool of `tools` (as published: normalised first). A schema
    /// that is not a valid JSON Schema is a bug in its tool: start-up stops naming it.
    pub(crate) fn compile<S>(tools: &ToolRouter<S>) -> Self {
        let compiled = tools.map.iter().map(|(name, route)| {
            let schema = Value::Object(route.attr.input_schema.as_ref().clone());
            let validator = jsonschema::options()
                .build(&schema)
                .unwrap_or_else(|e| panic!("the input schema of tool {name} is invalid: {e}"));
            (name.to_string(), validator)
        });
        Self(compiled.collect())
    }

    /// `Err` when `request`'s arguments break its tool's schema (absent arguments are an empty
    /// object, as the tool reads them). A tool not registered passes: the router answers it.
    pub(crate) fn check(
        &self,
        request: &mut CallToolRequestParams,
    ) -> Result<(), InvalidArguments> {
        let Some(schema) = self.0.get(request.name.as_ref()) else {
            return Ok(());
        };
        // Moved into a `Value` and back, not copied.
        let given = request.arguments.is_some();
        let arguments = Value::Object(request.arguments.take().unwrap_or_default());
        let verdict = if schema.is_valid(&arguments) {
            Ok(())
        } else {
            let errors: Vec<ValidationError<'_>> = schema.iter_errors(&arguments).collect();
            Err(InvalidArguments::new(&request.name, &errors))
        };
        if let Value::Object(arguments) = arguments
            && given
        {
            request.arguments = Some(arguments);
        }
        verdict
    }
}

/// Why a call's arguments were refused: the text for the caller (which may quote what it sent),
/// and the same without the values, for the log.
#[derive(Debug)]
pub(crate) struct InvalidArguments {
    tool: String,
    answer: String,
    masked: String,
}

impl InvalidArguments {
    fn new(tool: &str, errors: &[ValidationError<'_>]) -> Self {
        let named = &errors[..errors.len().min(MAX_NAMED)];
        let more = match errors.len() - named.len() {
            0 => String::new(),
            n => format!("; and {n} more"),
        };
        let told = |masked: bool| -> String {
            let each: Vec<String> = named.iter().map(|e| violation(e, masked)).collect();
            format!("invalid arguments: {}{more}", each.join("; "))
        };
        Self {
            tool: tool.to_owned(),
            answer: told(false),
            masked: told(true),
        }
    }
}

/// `/path: what is wrong (keyword)`; the root is `/`.
fn violation(error: &ValidationError<'_>, masked: bool) -> String {
    let path = match error.instance_path().as_str() {
        "" => "/",
        path => path,
    };
    let mut text = error.to_string();
    if masked || text.len() > MAX_TEXT {
        text = error.masked().to_string();
    }
    format!("{path}: {text} ({})", error.kind().keyword())
}

/// The tool's `call`, or, when its arguments were `invalid`, their tool error in its place, logged
/// where the tool would have run (so the line carries the request's ids like a tool's own).
pub(crate) async fn unless_invalid(
    invalid: Option<InvalidArguments>,
    call: impl Future<Output = Result<CallToolResponse, ErrorData>>,
) -> Result<CallToolResponse, ErrorData> {
    let Some(invalid) = invalid else {
        return call.await;
    };
    // The values the caller sent stay out of the log (they may be secrets).
    tracing::info!(tool = %invalid.tool, problem = %invalid.masked, "invalid arguments");
    Ok(CallToolResult::error(vec![ContentBlock::text(invalid.answer)]).into())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rmcp::{
        handler::server::{router::tool::ToolRoute, tool::ToolCallContext},
        model::Tool,
    };
    use serde_json::json;

    use super::*;

    fn schemas(schema: Value) -> InputSchemas {
        let Value::Object(schema) = schema else {
            unreachable!("an object literal")
        };
        let tool = Tool::new("t", "a test tool", Arc::new(schema));
        let route = ToolRoute::new_dyn(tool, |_: ToolCallContext<'_, ()>| {
            Box::pin(async { Ok(CallToolResult::success(vec![]).into()) })
        });
        let mut tools = ToolRouter::<()>::new();
        tools.add_route(route);
        InputSchemas::compile(&tools)
    }

    fn call(arguments: Option<Value>) -> CallToolRequestParams {
        let mut request = CallToolRequestParams::new("t");
        request.arguments = arguments.map(|a| a.as_object().unwrap().clone());
        request
    }

    #[test]
    fn the_arguments_come_back_as_they_were_given() {
        let schemas = schemas(json!({"type": "object", "properties": {"n": {"type": "integer"}}}));
        let mut given = call(Some(json!({"n": 1})));
        assert!(schemas.check(&mut given).is_ok());
        assert_eq!(given.arguments, call(Some(json!({"n": 1}))).arguments);
        let mut absent = call(None);
        assert!(schemas.check(&mut absent).is_ok());
        assert_eq!(absent.arguments, None);
        let mut other_tool = CallToolRequestParams::new("nope");
        assert!(schemas.check(&mut other_tool).is_ok());
    }

    #[test]
    fn a_violation_names_its_path_and_rule_and_the_log_never_the_value() {
        let schemas = schemas(json!({
            "type": "object",
            "properties": {"secret": {"type": "string", "maxLength": 3}},
            "required": ["secret"],
        }));
        let mut long = call(Some(json!({"secret": "hunter2"})));
        let invalid = schemas.check(&mut long).unwrap_err();
        assert_eq!(
            invalid.answer,
            r#"invalid arguments: /secret: "hunter2" is longer than 3 characters (maxLength)"#
        );
        assert!(!invalid.masked.contains("hunter2"), "{}", invalid.masked);
        let missing = schemas.check(&mut call(None)).unwrap_err();
        assert_eq!(
            missing.answer,
            r#"invalid arguments: /: "secret" is a required property (required)"#
        );
    }

    #[test]
    fn many_violations_are_counted_and_a_long_value_is_not_quoted() {
        let items = schemas(json!({
            "type": "object",
            "properties": {"items": {"type": "array", "items": {"type": "integer"}}},
        }));
        let mut many = call(Some(json!({"items": vec!["x"; 12]})));
        let invalid = items.check(&mut many).unwrap_err();
        assert_eq!(invalid.answer.matches("(type)").count(), MAX_NAMED);
        assert!(
            invalid.answer.ends_with("; and 2 more"),
            "{}",
            invalid.answer
        );
        let short = schemas(json!({
            "type": "object",
            "properties": {"text": {"type": "string", "maxLength": 3}},
        }));
        let mut huge = call(Some(json!({"text": "y".repeat(10_000)})));
        let invalid = short.check(&mut huge).unwrap_err();
        assert!(invalid.answer.len() < MAX_TEXT, "{}", invalid.answer);
    }
}
