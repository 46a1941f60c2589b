#!/bin/sh
# The project as a bench peer: without an OTLP endpoint, no tracing SDK at all.
[ -n "${OTEL_EXPORTER_OTLP_ENDPOINT:-}" ] || export OTEL_SDK_DISABLED=true
exec "$MCP_SERVER_BIN" "$@"
