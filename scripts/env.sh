# Sourced by the scripts and the Justfile: where the cache, tools and binaries live.
ROOT=${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
export MCP_CACHE=${MCP_CACHE:-$HOME/.cache/mcp-template}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$MCP_CACHE/target}
export MCP_VENV=$MCP_CACHE/venv
export MCP_NODE_DIR=$MCP_CACHE/node
export PATH=$MCP_NODE_DIR/node_modules/.bin:$MCP_VENV/bin:$PATH
export MCP_SERVER_BIN=${MCP_SERVER_BIN:-$CARGO_TARGET_DIR/release/mcp-server}
export MCP_SMOKE_BIN=${MCP_SMOKE_BIN:-$CARGO_TARGET_DIR/release/mcp-smoke}
