#!/usr/bin/env bash
# `just dev`: the service with a local telemetry stack, then prints where to look.
#   With a Docker engine: dev/compose.yaml (OpenTelemetry collector, Prometheus, Grafana, Jaeger).
#   Without one: native processes: the OpenTelemetry Collector that scripts/bootstrap.sh builds
#   from otel-collector/otelcol (the components of the ECS sidecar) on otel-collector/local.yaml,
#   scraping the service and remote-writing to Debian's prometheus (with the alert rules of
#   dashboards/alerts loaded), spans to its log; so the local loop runs the sidecar's software.
#   Without Go to build that collector: rotel (spans to a log) and prometheus scraping the service.
# The service itself runs on the host either way; every PID goes to $DEV_DIR/pids for
# `just dev-down`. Settings (the tests move all of them):
#   DEV_DIR (.dev)  DEV_MODE (native|compose; default: compose when `docker info` answers)
#   APP__HTTP__ADDR (127.0.0.1:8080)  APP__ADMIN__ADDR (127.0.0.1:9464)
#   DEV_PROMETHEUS_ADDR (127.0.0.1:9090)  DEV_SCRAPE_INTERVAL (5s)      native mode only
#   DEV_OTLP_GRPC_ADDR (127.0.0.1:4317)  DEV_OTLP_HTTP_ADDR (127.0.0.1:4318)   native mode only
#   DEV_COLLECTOR_HEALTH_ADDR (127.0.0.1:13133)                                native mode only
#   MCP_SERVER_BIN: run this binary instead of building with cargo
#   DEV_SETTINGS_FILE (local.toml): the service's settings file (APP_CONFIG_FILE) when it exists
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PREBUILT=${MCP_SERVER_BIN:-}  # before env.sh, which always sets it
. "$ROOT/scripts/env.sh"

DEV_DIR=${DEV_DIR:-$ROOT/.dev}
HTTP_ADDR=${APP__HTTP__ADDR:-127.0.0.1:8080}
ADMIN_ADDR=${APP__ADMIN__ADDR:-127.0.0.1:9464}
PROM_ADDR=${DEV_PROMETHEUS_ADDR:-127.0.0.1:9090}
OTLP_GRPC=${DEV_OTLP_GRPC_ADDR:-127.0.0.1:4317}
OTLP_HTTP=${DEV_OTLP_HTTP_ADDR:-127.0.0.1:4318}
MODE=${DEV_MODE:-$(docker info >/dev/null 2>&1 && echo compose || echo native)}

if [ -s "$DEV_DIR/pids" ]; then
  echo "dev: already running (see $DEV_DIR/pids); stop it with: just dev-down" >&2
  exit 1
fi
mkdir -p "$DEV_DIR"
: >"$DEV_DIR/pids"
echo "$MODE" >"$DEV_DIR/mode"
# Whatever fails half-way, nothing is left running.
trap 'rc=$?; if [ $rc -ne 0 ]; then echo "dev: start-up failed, stopping what was started" >&2; "$ROOT/dev/down.sh" >&2; fi' EXIT

# start NAME LOG PROGRAM ARGS...: in the background, recorded as "name pid program".
start() {
  local name=$1 log=$2
  shift 2
  "$@" >"$log" 2>&1 &
  LAST_PID=$!
  echo "$name $LAST_PID $1" >>"$DEV_DIR/pids"
}

# wait_for WHAT CHECK...: up to 30 s.
wait_for() {
  local what=$1
  shift
  for _ in $(seq 150); do
    if "$@"; then return 0; fi
    sleep 0.2
  done
  echo "dev: $what did not come up within 30 s" >&2
  return 1
}
http_ok() { curl -fs -o /dev/null "$1"; }
# serving PID LOG URL: ready, or stop waiting at once when the process has exited.
serving() {
  if ! kill -0 "$1" 2>/dev/null; then
    echo "dev: the process exited; the end of $2:" >&2
    tail -n 20 "$2" >&2
    exit 1
  fi
  http_ok "$3"
}
port_open() { (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null; }

if [ "$MODE" = compose ]; then
  docker compose -f "$ROOT/dev/compose.yaml" up -d --wait
  # The collector container scrapes the admin listener through the Docker host gateway.
  ADMIN_ADDR=0.0.0.0:${ADMIN_ADDR##*:}
  OTLP_HTTP=127.0.0.1:4318
  PROM_ADDR=127.0.0.1:9090
else
  "$ROOT/scripts/bootstrap.sh"  # Debian prometheus, rotel (PyPI) and the collector, when missing
  # With the collector, it scrapes the service (as the sidecar does) and Prometheus only takes its
  # remote writes; with rotel, Prometheus scrapes the service itself.
  if [ -x "$MCP_OTELCOL_BIN" ]; then
    SCRAPE_CONFIGS="[]"
    REMOTE_WRITE=(--web.enable-remote-write-receiver)
  else
    SCRAPE_CONFIGS="[{job_name: \"$MCP_SERVICE_NAME\", static_configs: [{targets: [\"$ADMIN_ADDR\"]}]}]"
    REMOTE_WRITE=()
  fi
  cat >"$DEV_DIR/prometheus.yml" <<EOF
# Written by dev/up.sh: what the service's metrics reach, under the job name the rules expect.
global:
  scrape_interval: ${DEV_SCRAPE_INTERVAL:-5s}
  evaluation_interval: ${DEV_SCRAPE_INTERVAL:-5s}
rule_files:
  - $ROOT/dashboards/alerts/*.rules.yaml
scrape_configs: $SCRAPE_CONFIGS
EOF
  start prometheus "$DEV_DIR/prometheus.log" prometheus --config.file="$DEV_DIR/prometheus.yml" \
    --storage.tsdb.path="$DEV_DIR/prometheus-data" --web.listen-address="$PROM_ADDR" "${REMOTE_WRITE[@]}"
  wait_for "prometheus ($PROM_ADDR)" http_ok "http://$PROM_ADDR/-/ready"
  if [ -x "$MCP_OTELCOL_BIN" ]; then
    HEALTH_ADDR=${DEV_COLLECTOR_HEALTH_ADDR:-127.0.0.1:13133}
    DEV_COLLECTOR_HEALTH_ADDR=$HEALTH_ADDR DEV_OTLP_GRPC_ADDR=$OTLP_GRPC DEV_OTLP_HTTP_ADDR=$OTLP_HTTP \
      DEV_ADMIN_ADDR=$ADMIN_ADDR DEV_SCRAPE_INTERVAL=${DEV_SCRAPE_INTERVAL:-5s} \
      DEV_REMOTE_WRITE_URL=http://$PROM_ADDR/api/v1/write DEV_TRACES_EXPORTER=debug \
      start otelcol "$DEV_DIR/traces.log" "$MCP_OTELCOL_BIN" --config="file:$ROOT/otel-collector/local.yaml"
    wait_for "the collector (health $HEALTH_ADDR)" serving "$LAST_PID" "$DEV_DIR/traces.log" "http://$HEALTH_ADDR/"
  else
    ROTEL=$("$MCP_VENV/bin/python" -c 'import os, rotel; print(os.path.join(os.path.dirname(rotel.__file__), "rotel-agent"))')
    start rotel "$DEV_DIR/traces.log" "$ROTEL" start --otlp-grpc-endpoint "$OTLP_GRPC" \
      --otlp-http-endpoint "$OTLP_HTTP" --exporter blackhole \
      --debug-log traces --debug-log-verbosity detailed
    wait_for "rotel (OTLP $OTLP_HTTP)" port_open "$OTLP_HTTP"
  fi
fi

if [ -n "$PREBUILT" ]; then
  SERVER=$PREBUILT
else
  cargo build --release -p "$MCP_SERVICE_NAME" --bin "$MCP_SERVICE_NAME"
  SERVER=$MCP_SERVER_BIN
fi
# This machine's own settings, such as the tools' API keys: the config file format (`[tools.*]`),
# git-ignored, at the top so `just upgrade-platform` (which replaces dev/) keeps it.
# An APP_CONFIG_FILE set in the shell wins.
SETTINGS_FILE=${DEV_SETTINGS_FILE:-$ROOT/local.toml}
if [ -z "${APP_CONFIG_FILE:-}" ] && [ -f "$SETTINGS_FILE" ]; then
  export APP_CONFIG_FILE=$SETTINGS_FILE
fi
# No load balancer to drain locally, so stop at once.
export APP__HTTP__ADDR=$HTTP_ADDR APP__ADMIN__ADDR=$ADMIN_ADDR APP__SHUTDOWN__DRAIN_DELAY_MS=0 \
  OTEL_EXPORTER_OTLP_ENDPOINT=http://$OTLP_HTTP OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf \
  OTEL_SERVICE_NAME="$MCP_SERVICE_NAME" OTEL_RESOURCE_ATTRIBUTES=deployment.environment.name=dev
start "$MCP_SERVICE_NAME" "$DEV_DIR/service.log" "$SERVER"
wait_for "the service (http://$HTTP_ADDR/readyz)" serving "$LAST_PID" "$DEV_DIR/service.log" \
  "http://$HTTP_ADDR/readyz"

echo
echo "dev ($MODE) is up:"
echo "  MCP endpoint   http://$HTTP_ADDR/mcp        (just smoke, just load)"
echo "  metrics        http://$ADMIN_ADDR/metrics"
echo "  Prometheus     http://$PROM_ADDR/alerts     (rules from dashboards/alerts; /graph to query)"
if [ "$MODE" = compose ]; then
  echo "  Grafana        http://127.0.0.1:3000/d/$MCP_SERVICE_NAME"
  echo "  Jaeger         http://127.0.0.1:16686"
else
  echo "  traces         $DEV_DIR/traces.log     (spans in the collector's log; no Grafana/Jaeger without Docker)"
  echo "  logs           $DEV_DIR/prometheus.log"
fi
echo "  service log    $DEV_DIR/service.log"
if [ -n "${APP_CONFIG_FILE:-}" ]; then
  echo "  settings       $APP_CONFIG_FILE"
fi
echo "  stop           just dev-down"
