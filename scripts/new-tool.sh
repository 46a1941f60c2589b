#!/usr/bin/env bash
# `just new-tool NAME`: scaffolds a tool in the service: service/src/tools/NAME.rs (typed arguments
# with a JSON Schema, a typed result, a span, a log line), its registration line in
# service/src/tools/mod.rs and a test module service/tests/it/NAME.rs. Then builds and runs that test.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
name=${1:-}
if ! [[ $name =~ ^[a-z][a-z0-9_]{0,39}$ ]]; then
  echo "usage: just new-tool NAME   (NAME: lower-case letters, digits, underscores; e.g. forecast)" >&2
  exit 2
fi
tools=service/src/tools
tests=service/tests/it
if [ -e "$tools/$name.rs" ] || [ -e "$tests/$name.rs" ] || grep -q "Toolbox::${name}_router()" "$tools/mod.rs"; then
  echo "a tool or test module named $name already exists" >&2
  exit 1
fi
type=$(sed -E 's/(^|_)([a-z0-9])/\U\2/g' <<<"$name")

cat >"$tools/$name.rs" <<EOF
//! \`$name\`: scaffolded by \`just new-tool\`; give it its real arguments, result and work.

use rmcp::{
    handler::server::{tool::schema_for_output, wrapper::Parameters},
    model::{CallToolResult, ContentBlock},
    tool, tool_router,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tracing::Instrument as _;

use super::Toolbox;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ${type}Args {
    /// What to work on.
    #[schemars(length(min = 1, max = 1024))]
    pub input: String,
    /// How many times to repeat the answer (1 to 5; default 1).
    #[serde(default)]
    #[schemars(range(min = 1, max = 5))]
    pub times: Option<u32>,
}

/// The structured form of the answer.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ${type}Result {
    /// What the tool made of the input.
    pub output: String,
    /// How many times it was repeated.
    pub times: u32,
}

#[tool_router(router = ${name}_router, vis = "pub(super)")]
impl Toolbox {
    #[tool(
        description = "$name: answers its input back (a scaffold; describe what the tool does for the model).",
        output_schema = schema_for_output::<${type}Result>(),
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn $name(&self, Parameters(args): Parameters<${type}Args>) -> CallToolResult {
        let times = args.times.unwrap_or(1);
        if !(1..=5).contains(&times) {
            // The line carries the request's request_id without the tool passing it.
            tracing::info!(times, "$name: invalid arguments");
            return CallToolResult::error(vec![ContentBlock::text(format!(
                "\`times\` must be between 1 and 5 (got {times})"
            ))]);
        }
        // The tool's own work, traced as a child of the call's MCP span.
        let result = async {
            ${type}Result {
                output: vec![args.input.as_str(); times as usize].join(" "),
                times,
            }
        }
        .instrument(tracing::info_span!("$name.work"))
        .await;
        let mut answer = CallToolResult::success(vec![ContentBlock::text(result.output.clone())]);
        answer.structured_content = serde_json::to_value(&result).ok();
        answer
    }
}
EOF

# Registration: the module next to ping's, the router added to ping's.
sed -i "s/^mod ping;$/mod ping;\nmod $name;/" "$tools/mod.rs"
sed -i "s/^\(    Toolbox::ping_router()\)$/\1 + Toolbox::${name}_router()/" "$tools/mod.rs"
grep -q "Toolbox::${name}_router()" "$tools/mod.rs" || {
  echo "could not register $name in $tools/mod.rs: add \`+ Toolbox::${name}_router()\` to router()" >&2
  exit 1
}

# The test: a module of the service's one test binary, next to the others.
sed -i "s/^mod tools;$/mod tools;\nmod $name;/" "$tests/main.rs"
grep -qx "mod $name;" "$tests/main.rs" || {
  echo "could not add \`mod $name;\` to $tests/main.rs" >&2
  exit 1
}
cat >"$tests/$name.rs" <<EOF
//! The \`$name\` tool, called through the running service.

use crate::common::Service;
use mcp_smoke::{self as smoke, Era};
use rmcp::model::CallToolRequestParams;
use serde_json::json;

#[tokio::test]
async fn ${name}_is_listed_and_answers() {
    let service = Service::start(&[]);
    let client = smoke::connect(&service.url, Era::Modern, None)
        .await
        .expect("connect");
    let tools = client.list_all_tools().await.expect("tools/list");
    assert!(tools.iter().any(|t| t.name == "$name"), "{tools:?}");
    let call = |arguments: serde_json::Value| {
        client.call_tool(
            CallToolRequestParams::new("$name").with_arguments(arguments.as_object().unwrap().clone()),
        )
    };
    let out = call(json!({"input": "hi", "times": 2})).await.expect("tools/call");
    assert_eq!(out.is_error, Some(false));
    assert_eq!(out.content[0].as_text().unwrap().text, "hi hi");
    let wrong = call(json!({"input": "hi", "times": 9})).await.expect("a tool error is a result");
    assert_eq!(wrong.is_error, Some(true));
    client.cancel().await.expect("close");
}
EOF

cargo fmt --all
. scripts/env.sh
# The same build as scripts/test.sh (features unified over the workspace), so nothing is built twice.
cargo build --release --workspace --bins
cargo test --release -p "$MCP_SERVICE_NAME" --test it "$name::"
echo "tool $name: $tools/$name.rs, registered in $tools/mod.rs, tested by $tests/$name.rs"
