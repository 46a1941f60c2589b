#!/usr/bin/env bash
# The whole test suite, from a fresh machine: install what is missing, build once (release),
# run the Rust tests, then the black-box suites in e2e/ against the built binaries.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
. scripts/env.sh
scripts/bootstrap.sh
t0=$SECONDS
echo "== cargo build --release (target: $CARGO_TARGET_DIR)"
# A service fresh from `cargo generate` (or renamed) has the template's name in Cargo.lock: record
# its own, changing no dependency; --locked below still fails on any other drift.
grep -qx "name = \"$MCP_SERVICE_NAME\"" Cargo.lock || cargo update --workspace --quiet
# The binaries alone first: built with the same features as the Dockerfile's `--bin` build
# and the README's `cargo run -p` (examples would pull dev-dependency features in).
cargo build --release --locked --workspace --bins
cargo build --release --locked --workspace --examples
echo "== cargo test --release"
cargo test --release --locked --workspace
echo "== cargo fuzz (every target, a short fixed run)"
scripts/fuzz.sh --ci
echo "== e2e (pytest)"
"$MCP_VENV/bin/python" -m pytest e2e "$@"
echo "== all tests passed in $((SECONDS - t0)) s"
