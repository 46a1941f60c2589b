#!/usr/bin/env bash
# Runs the official MCP conformance suites (npm @modelcontextprotocol/conformance, pinned in
# e2e/package.json) against the conformance server: platform/examples/conformance, the fixtures
# served by the product's own library and middleware stack.
#
#   0.1.16          --suite active                      the 2025-06-18 / 2025-11-25 scenarios
#   0.2.0-alpha.12  --suite all --spec-version 2026-07-28  the stateless revision (its scenarios
#                   are still tagged draft, which the default "active" suite leaves out)
#   0.2.0-alpha.12  --scenario tasks-*                  the Tasks extension (SEP-2663), tagged
#                   [extension]: off the spec timeline, so one run per scenario at its wire
#
# Expected failures: e2e/conformance/baseline-*.yaml (only what a stateless server cannot do).
# Exits non-zero on any other failure or warning, and on a baseline entry that now passes.
# Results (JSON per check) and the server log go to $CONFORMANCE_OUT when set; otherwise to a
# temporary folder that is kept only when something failed.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
. scripts/env.sh

scripts/bootstrap.sh
if [ -z "${MCP_CONFORMANCE_BIN:-}" ]; then
  # A no-op when `cargo test` (which builds examples) or an earlier run built it already.
  nice cargo build --release --locked -p mcp-platform --example conformance
  MCP_CONFORMANCE_BIN=$MCP_BIN_DIR/examples/conformance
fi
NODE=$MCP_NODE_DIR/node_modules/.bin/node
SUITES=$MCP_NODE_DIR/node_modules
OUT=${CONFORMANCE_OUT:-}
KEEP_OUT=${OUT:+1}
[ -n "$OUT" ] || OUT=$(mktemp -d -t mcp-conformance.XXXXXX)
mkdir -p "$OUT"

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
# The suites address the server as localhost (dns-rebinding-protection needs a loopback name)
# and send that page's Origin: the product's defaults (loopback hosts, hence loopback origins)
# pass it with nothing configured.
URL=http://localhost:$PORT/mcp
APP__HTTP__ADDR=127.0.0.1:$PORT \
APP__ADMIN__ADDR=127.0.0.1:$(free_port) \
APP__SHUTDOWN__DRAIN_DELAY_MS=0 \
APP__LOG__FORMAT=json \
  "$MCP_CONFORMANCE_BIN" >"$OUT/server.log" 2>&1 &
SERVER_PID=$!
stop_server() {
  if kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID"
    wait "$SERVER_PID" || true
  fi
}
trap stop_server EXIT

for _ in $(seq 100); do
  if curl -fs -o /dev/null "http://127.0.0.1:$PORT/readyz"; then break; fi
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "conformance server exited early:" >&2
    cat "$OUT/server.log" >&2
    exit 1
  fi
  sleep 0.1
done
curl -fsS -o /dev/null "http://127.0.0.1:$PORT/readyz"

failed=0
# report LABEL LOG RC: prints a run's summary, its Total line and how many scenarios ran; records
# a failure when the run's exit code RC says so.
report() {
  local label=$1 log=$2 rc=$3
  sed -n '/=== SUMMARY ===/,/^Total:/p' "$log" | grep -E '^[✓✗]' || true
  echo "$label scenarios run: $(grep -cE '^[✓✗] ' "$log" || true)"
  grep -qE '^Total:' "$log" || { echo "no Total line; see $log" >&2; rc=1; }
  # The Total line and the suite's verdict on the baseline (colours stripped).
  sed -n '/^Total:/,$p' "$log" | sed 's/\x1b\[[0-9;]*m//g' | grep -v '^$' || true
  if [ "$rc" -ne 0 ]; then
    echo "conformance $label FAILED (exit $rc): unexpected failures, warnings or stale baseline entries" >&2
    sed -n '/=== SUMMARY ===/,$p' "$log" | grep -vE '^[✓✗] ' >&2 || true
    failed=1
  fi
}

# run_suite LABEL PACKAGE BASELINE ARGS...: one suite run, reported.
run_suite() {
  local label=$1 package=$2 baseline=$3
  shift 3
  local log=$OUT/$label.log rc=0
  "$NODE" "$SUITES/$package/dist/index.js" server --url "$URL" "$@" \
    --expected-failures "$baseline" -o "$OUT/$label" >"$log" 2>&1 || rc=$?
  echo "== conformance $label ($package $*)"
  report "$label" "$log" "$rc"
}

# run_extension LABEL PACKAGE BASELINE PREFIX: the server scenarios of an extension whose names
# start with PREFIX, one `--scenario` run each (no suite selects extensions, and a spec version
# leaves them out), summed up in the suite's own summary form and reported.
run_extension() {
  local label=$1 package=$2 baseline=$3 prefix=$4
  local log=$OUT/$label.log rc=0 scenario one counts ok bad passed=0 failing=0
  local summary=$OUT/$label.summary
  : >"$summary"
  for scenario in $("$NODE" "$SUITES/$package/dist/index.js" list --server |
    sed -n "s/^  - \($prefix[^ ]*\) \[extension\]\$/\1/p"); do
    one=0
    "$NODE" "$SUITES/$package/dist/index.js" server --url "$URL" --scenario "$scenario" \
      --expected-failures "$baseline" -o "$OUT/$label" >"$OUT/$label.$scenario.log" 2>&1 || one=$?
    # "Passed: 9/9, 0 failed, 0 warnings"
    counts=$(sed -n 's/^Passed: \([0-9]*\)\/[0-9]*, \([0-9]*\) failed.*/\1 \2/p' "$OUT/$label.$scenario.log")
    read -r ok bad <<<"${counts:-0 1}"
    passed=$((passed + ok))
    failing=$((failing + bad))
    if [ "$bad" -eq 0 ]; then echo "✓ $scenario: $ok passed, $bad failed"; else echo "✗ $scenario: $ok passed, $bad failed"; fi >>"$summary"
    if [ "$one" -ne 0 ]; then
      rc=$one
      echo "$scenario: unexpected failures, warnings or stale baseline entries; see $OUT/$label.$scenario.log" >>"$summary.verdict"
    fi
  done
  {
    echo "=== SUMMARY ==="
    cat "$summary"
    echo
    echo "Total: $passed passed, $failing failed"
    if [ "$rc" -eq 0 ]; then echo "Baseline check passed: all failures are expected."; else cat "$summary.verdict"; fi
  } >"$log"
  echo "== conformance $label ($package --scenario $prefix*, one run each)"
  report "$label" "$log" "$rc"
}

run_suite 2025 conformance-stable e2e/conformance/baseline-2025.yaml --suite active
run_suite 2026-07-28 conformance-next e2e/conformance/baseline-2026.yaml --suite all --spec-version 2026-07-28
run_extension tasks conformance-next e2e/conformance/baseline-2026.yaml tasks-

stop_server
trap - EXIT
if [ "$failed" -ne 0 ]; then
  echo "results and server log: $OUT" >&2
  exit 1
fi
echo "conformance: every suite passed"
[ -n "$KEEP_OUT" ] || rm -rf "$OUT"
