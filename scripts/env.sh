# Sourced by the scripts and the Justfile: where the cache, tools and binaries live.
ROOT=${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
export MCP_CACHE=${MCP_CACHE:-$HOME/.cache/mcp-platform}
# The service's name has one source, its crate (service/Cargo.toml); binaries and jobs follow it.
export MCP_SERVICE_NAME=${MCP_SERVICE_NAME:-$(sed -n 's/^name = "\(.*\)"$/\1/p' "$ROOT/service/Cargo.toml" | head -n 1)}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$MCP_CACHE/target}
export MCP_VENV=$MCP_CACHE/venv
export MCP_NODE_DIR=$MCP_CACHE/node
# The collector scripts/bootstrap.sh builds from otel-collector/otelcol.
export MCP_OTELCOL_BIN=${MCP_OTELCOL_BIN:-$MCP_CACHE/otelcol/otelcol-mcp}
export PATH=$MCP_NODE_DIR/node_modules/.bin:$MCP_VENV/bin:$PATH
# On Linux the binaries are linked fully static (glibc, crt-static), exactly as the Dockerfile
# builds them, so the tests exercise the binary that ships. `--target` keeps build scripts and
# proc-macros dynamic.
case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) MCP_TARGET=x86_64-unknown-linux-gnu ;;
  Linux-aarch64) MCP_TARGET=aarch64-unknown-linux-gnu ;;
  *) MCP_TARGET= ;;
esac
if [ -n "$MCP_TARGET" ]; then
  export CARGO_BUILD_TARGET=$MCP_TARGET
  MCP_RUSTFLAGS_VAR=CARGO_TARGET_$(echo "$MCP_TARGET" | tr 'a-z-' 'A-Z_')_RUSTFLAGS
  export "$MCP_RUSTFLAGS_VAR"="-C target-feature=+crt-static"
  MCP_BIN_DIR=$CARGO_TARGET_DIR/$MCP_TARGET/release
else
  MCP_RUSTFLAGS_VAR=MCP_NO_STATIC_FLAGS
  MCP_BIN_DIR=$CARGO_TARGET_DIR/release
fi
export MCP_SERVER_BIN=${MCP_SERVER_BIN:-$MCP_BIN_DIR/$MCP_SERVICE_NAME}
export MCP_SMOKE_BIN=${MCP_SMOKE_BIN:-$MCP_BIN_DIR/mcp-smoke}
