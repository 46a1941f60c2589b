#!/usr/bin/env bash
# `just bench`: this service side by side with the peer servers in ../shared/peers (the Node
# sample's design, bare rmcp, an HTTP floor), in one run of the shared bench script, then the
# ratios that matter. Long and load-heavy: never part of the test suite.
#
#   scripts/bench.sh                      # default peers, 3 rounds
#   ROUNDS=1 scripts/bench.sh             # one quick round
#
# The ratios take each figure's median over the rounds: on a shared machine one round in a few is
# disturbed by other work (its CPU and p99 off by 10-30 %), and a median of 3 ignores it.
#   scripts/bench.sh project rmcp-bare-router-field   # chosen peers
#
# project        = this service with metrics and logs (no trace export)
# project-modern = the same, loaded with 2026-07-28 requests
# project-otel   = + every span exported (100% sampling) to a local rotel collector
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/scripts/env.sh"
PEERS_SRC=${PEERS_SRC:-$ROOT/../shared/peers}
PEERS_DIR=$MCP_CACHE/peers
[ -d "$PEERS_SRC" ] || { echo "peers not found at $PEERS_SRC (set PEERS_SRC)" >&2; exit 2; }

"$ROOT/scripts/bootstrap.sh"
cargo build --release --locked -p "$MCP_SERVICE_NAME" --bin "$MCP_SERVICE_NAME"

# The peers are built in the cache, never inside shared/.
mkdir -p "$PEERS_DIR"
(cd "$PEERS_SRC" && tar --exclude=target --exclude=node_modules --exclude=results --exclude=.venv -cf - .) | (cd "$PEERS_DIR" && tar -xf -)
(cd "$PEERS_DIR" && env -u CARGO_TARGET_DIR -u CARGO_BUILD_TARGET -u "$MCP_RUSTFLAGS_VAR" cargo build --release --quiet)
[ -d "$PEERS_DIR/node-sdk1/node_modules" ] || (cd "$PEERS_DIR/node-sdk1" && npm install --no-audit --no-fund --loglevel=error)

# The collector for project-otel: rotel, spans to a black hole. It runs on the load generator's
# core (CPU 1), like a sidecar with its own CPU share: the server's core does only the server's
# work (OTLP encoding and sending included), and the scheduler cannot put rotel there.
free_port() { "$MCP_VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
OTLP_PORT=$(free_port)
ROTEL=$("$MCP_VENV/bin/python" -c 'import os, rotel; print(os.path.join(os.path.dirname(rotel.__file__), "rotel-agent"))')
taskset -c 1 "$ROTEL" start --otlp-http-endpoint "127.0.0.1:$OTLP_PORT" --otlp-grpc-endpoint "127.0.0.1:$(free_port)" --exporter blackhole \
  --pid-file "$MCP_CACHE/bench-rotel.pid" --log-file "$MCP_CACHE/bench-rotel.log" > /dev/null 2>&1 &
ROTEL_PID=$!
trap 'kill "$ROTEL_PID" 2>/dev/null || true' EXIT

# The project peer runs through a wrapper so "project" has no tracing SDK (as OTEL_SDK_DISABLED=true)
# and "project-otel" exports every span; logs at the default level in both.
export PROJECT_BIN=$ROOT/scripts/bench-project.sh MCP_SERVER_BIN OTLP_ENDPOINT=http://127.0.0.1:$OTLP_PORT
OUT=$MCP_CACHE/bench-results/$(date +%Y%m%d-%H%M%S)
ROUNDS=${ROUNDS:-3}
export OUT ROUNDS
if [ $# -eq 0 ]; then set -- node-sdk1 rmcp-bare-router-field floor project project-modern project-otel; fi
"$PEERS_DIR/bench.sh" "$@"
# Scenario C: 5,000 connections on a 1 s tool, the cost of each request in flight at the scale of
# a busy task (the shared script's B with other numbers; its rows are relabelled C). Set
# SCENARIO_C=0 to skip it.
if [ "${SCENARIO_C:-1}" = 1 ]; then
  c_peers=()
  for peer in "$@"; do
    case $peer in rmcp-bare-router-field|floor|project) c_peers+=("$peer") ;; esac
  done
  if [ ${#c_peers[@]} -gt 0 ]; then
    # The project's defaults would shed above 1,024 in flight and close connections above 4,096.
    APP__HTTP__MAX_IN_FLIGHT=8192 APP__HTTP__MAX_CONNECTIONS=8192 \
      OUT=$OUT/C SCENARIOS=B CONNS_B=5000 DELAY_B=1000 WRK_TIMEOUT=20s "$PEERS_DIR/bench.sh" "${c_peers[@]}"
    awk -F'\t' -v OFS='\t' 'NR > 1 { $3 = "C"; print }' "$OUT/C/results.tsv" >> "$OUT/results.tsv"
  fi
fi
"$MCP_VENV/bin/python" "$ROOT/scripts/bench_ratios.py" "$OUT/results.tsv"
