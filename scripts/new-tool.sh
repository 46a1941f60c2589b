#!/usr/bin/env bash
# `just new-tool NAME`: scaffolds a tool in the service: service/src/tools/NAME.rs (typed arguments
# with a JSON Schema the platform validates, a typed result, a span, a log line), its module and
# router lines in service/src/tools/mod.rs and a test module service/tests/it/NAME.rs (declared in
# service/tests/it/main.rs). The lines go above the marker comments `just new-tool` adds ... above
# this line`, so it works any number of times. Every check runs and every file is written to a
# temporary file first; only when all of them are ready are they moved into place: on any failure
# nothing has changed. Then it builds and runs the new tool's test.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
name=${1:-}
# A Rust module, function and test name, with a PascalCase form for its types (no `__`, no
# trailing `_`: those would not camel-case cleanly).
if ! [[ $name =~ ^[a-z][a-z0-9]*(_[a-z0-9]+)*$ ]] || ((${#name} > 40)); then
  echo "usage: just new-tool NAME   (NAME: lower-case letters and digits, words joined by single underscores, at most 40; e.g. forecast)" >&2
  exit 2
fi
# Rust's keywords (strict and reserved) cannot name a module or a function.
keywords=" as async await break const continue crate dyn else enum extern false fn for gen if impl in let loop match mod move mut pub ref return self static struct super trait true type unsafe use where while abstract become box do final macro override priv try typeof unsized virtual yield "
if [[ $keywords == *" $name "* ]]; then
  echo "$name is a Rust keyword: choose another tool name" >&2
  exit 2
fi

tools=service/src/tools
tests=service/tests/it
type=$(sed -E 's/(^|_)([a-z0-9])/\U\2/g' <<<"$name")
MODULE_MARKER="// \`just new-tool\` adds a tool's module above this line."
ROUTER_MARKER="// \`just new-tool\` adds a tool's router above this line."
TEST_MARKER="// \`just new-tool\` adds a tool's test module above this line."

fail() {
  echo "new-tool: $*; nothing was changed" >&2
  exit 1
}

# --- Checks: all of them before anything is written. ---------------------------------------------
for file in "$tools/mod.rs" "$tests/main.rs"; do
  if ! [ -f "$file" ] || ! [ -w "$file" ]; then fail "$file is missing or not writable"; fi
done
for file in "$tools/$name.rs" "$tests/$name.rs"; do
  if [ -e "$file" ]; then fail "$file already exists"; fi
done
if grep -qE "^mod $name;" "$tools/mod.rs" "$tests/main.rs"; then
  fail "a module named $name is already declared"
fi
# The tool's method and router join the other tools' on `Toolbox`.
if grep -qwE "fn ($name|${name}_router)" "$tools"/*.rs; then
  fail "Toolbox already has a function named $name or ${name}_router"
fi
# How often `marker` stands alone on a line of `file` (indented or not).
marker_count() { # file marker
  awk -v marker="$2" '{ sub(/^[ \t]+/, "") } $0 == marker { n++ } END { print n + 0 }' "$1"
}
for check in "$tools/mod.rs:$MODULE_MARKER" "$tools/mod.rs:$ROUTER_MARKER" "$tests/main.rs:$TEST_MARKER"; do
  file=${check%%:*} marker=${check#*:}
  count=$(marker_count "$file" "$marker")
  if [ "$count" != 1 ]; then
    fail "$file must hold the line \`$marker\` once, where the new lines go (found it $count times)"
  fi
done

# --- Every file, written beside its destination (same file system: the moves are renames). -------
staged=()
trap 'rm -f "${staged[@]}"' EXIT
# A temporary file beside `destination`, in $staged (removed on exit unless moved into place).
stage() { # destination
  staged+=("$(mktemp "$(dirname "$1")/.new-tool.XXXXXX")") || fail "cannot write in $(dirname "$1")"
  chmod "$(umask -S | tr -d x)" "${staged[-1]}" # as a new file (mktemp's are private)
}
# `line` above the (indented) `marker` of `file`, indented like it, into a staged file beside it:
# $inserted.
insert_above() { # file marker line
  stage "$1"
  inserted=${staged[-1]}
  awk -v marker="$2" -v line="$3" '
    { text = $0; sub(/^[ \t]+/, "", text) }
    text == marker { indent = substr($0, 1, length($0) - length(text)); print indent line }
    { print }' "$1" >"$inserted"
}
# `file` formatted as `cargo fmt` would (from stdin: rustfmt formats this file only), into a staged
# file beside `destination`: $formatted.
format_for() { # file destination
  stage "$2"
  formatted=${staged[-1]}
  rustfmt --edition 2024 --emit stdout <"$1" >"$formatted" || fail "rustfmt cannot format what would be $2"
}

stage "$tools/$name.rs"
cat >"${staged[-1]}" <<EOF
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

/// The arguments. The platform validates every call against this schema (lengths, ranges,
/// patterns, required fields) before the tool runs: a violation is a tool error naming the path
/// and the rule, so the tool only sees arguments that keep these rules.
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
        // The line carries the request's request_id without the tool passing it.
        tracing::info!(times, "$name: working");
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
format_for "${staged[-1]}" "$tools/$name.rs"
tool_file=$formatted

stage "$tests/$name.rs"
cat >"${staged[-1]}" <<EOF
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
    // Arguments against the schema: a tool error from the platform, naming the path and the rule.
    let wrong = call(json!({"input": "hi", "times": 9})).await.expect("a tool error is a result");
    assert_eq!(wrong.is_error, Some(true));
    let reason = &wrong.content[0].as_text().unwrap().text;
    assert!(reason.contains("/times") && reason.contains("maximum"), "{reason}");
    client.cancel().await.expect("close");
}
EOF
format_for "${staged[-1]}" "$tests/$name.rs"
test_file=$formatted

insert_above "$tools/mod.rs" "$MODULE_MARKER" "mod $name;"
insert_above "$inserted" "$ROUTER_MARKER" "Toolbox::${name}_router(),"
format_for "$inserted" "$tools/mod.rs"
mod_file=$formatted
insert_above "$tests/main.rs" "$TEST_MARKER" "mod $name;"
format_for "$inserted" "$tests/main.rs"
main_file=$formatted
if ! grep -qx "mod $name;" "$mod_file" || ! grep -q "Toolbox::${name}_router()," "$mod_file" ||
  ! grep -qx "mod $name;" "$main_file"; then
  fail "the registration lines did not land above the markers"
fi

# --- All ready: into place (renames within each directory). -------------------------------------
chmod --reference="$tools/mod.rs" "$mod_file"
chmod --reference="$tests/main.rs" "$main_file"
mv "$tool_file" "$tools/$name.rs"
mv "$test_file" "$tests/$name.rs"
mv "$mod_file" "$tools/mod.rs"
mv "$main_file" "$tests/main.rs"
rm -f "${staged[@]}"
echo "tool $name: $tools/$name.rs, registered in $tools/mod.rs, tested by $tests/$name.rs"

. scripts/env.sh
# The same build as scripts/test.sh (features unified over the workspace), so nothing is built twice.
cargo build --release --workspace --bins
cargo test --release -p "$MCP_SERVICE_NAME" --test it "$name::"
