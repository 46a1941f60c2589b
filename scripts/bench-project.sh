#!/bin/sh
# The project as a bench peer: without an OTLP endpoint, no tracing SDK at all.
[ -n "${OTEL_EXPORTER_OTLP_ENDPOINT:-}" ] || export OTEL_SDK_DISABLED=true
# The load comes from one address: a per-caller rate no load reaches, so every request still
# pays for its bucket but none is refused.
export APP__HTTP__RATE_LIMIT_PER_SECOND=${APP__HTTP__RATE_LIMIT_PER_SECOND:-1000000000}
export APP__HTTP__RATE_LIMIT_BURST=${APP__HTTP__RATE_LIMIT_BURST:-1000000000}
exec "$MCP_SERVER_BIN" "$@"
