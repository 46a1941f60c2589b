#!/usr/bin/env bash
# Installs everything the tests, `just dev` and `just bench` need, from the package registries only
# (Debian packages, PyPI, npm). Idempotent: a second run only checks. Everything except the Debian
# packages goes into one cache folder outside the checkout, so a fresh clone on the same machine
# reuses it:  ${MCP_CACHE:-$HOME/.cache/mcp-platform}
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${MCP_CACHE:-$HOME/.cache/mcp-platform}
mkdir -p "$CACHE"

log() { printf '[bootstrap] %s\n' "$*" >&2; }

# Debian packages: prometheus (+promtool) for the metrics/dashboards checks, haproxy for the rolling
# restart test, wrk for benchmarks, runc (the OCI runtime under Fargate's containerd) and iproute2
# for running the image as ECS does; ca-certificates, tzdata and netbase fill its distroless base.
APT_PKGS=(prometheus haproxy wrk curl runc iproute2 ca-certificates tzdata netbase)
missing=()
for p in "${APT_PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  log "apt-get install ${missing[*]}"
  SUDO=; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian starts prometheus as a service on install; the tests run their own instances.
if command -v systemctl >/dev/null 2>&1; then systemctl stop prometheus >/dev/null 2>&1 || true; fi

# cargo-fuzz for the fuzz targets (scripts/fuzz.sh), pinned, built into the cache: in a build folder
# of its own and for the host (without env.sh's static-target settings, which test.sh exports).
CARGO_FUZZ_VERSION=0.13.2
if [ "$("$CACHE/cargo-fuzz/bin/cargo-fuzz" --version 2>/dev/null)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]; then
  log "cargo install cargo-fuzz $CARGO_FUZZ_VERSION"
  (unset CARGO_BUILD_TARGET "${!CARGO_TARGET_@}"
    cargo install --locked --quiet cargo-fuzz --version "=$CARGO_FUZZ_VERSION" --root "$CACHE/cargo-fuzz")
fi

# Python: one venv with the test runner and the offline IaC/observability tools.
VENV=$CACHE/venv
REQ=$ROOT/e2e/requirements.txt
if [ ! -x "$VENV/bin/python" ]; then log "python venv $VENV"; python3 -m venv "$VENV"; fi
if ! cmp -s "$REQ" "$VENV/.requirements.txt"; then
  log "pip install -r e2e/requirements.txt"
  "$VENV/bin/pip" install -q --disable-pip-version-check --upgrade pip >/dev/null
  "$VENV/bin/pip" install -q --disable-pip-version-check --pre -r "$REQ"
  cp "$REQ" "$VENV/.requirements.txt"
fi

# Node 22 (the conformance suite and the v2 SDK client want >= 20/22) and the official clients.
NODE_DIR=$CACHE/node
PKG=$ROOT/e2e/package.json
if ! cmp -s "$PKG" "$NODE_DIR/.package.json"; then
  log "npm install (node 22, MCP SDK clients, conformance suites)"
  mkdir -p "$NODE_DIR"
  cp "$PKG" "$NODE_DIR/package.json"
  [ -f "$ROOT/e2e/package-lock.json" ] && cp "$ROOT/e2e/package-lock.json" "$NODE_DIR/package-lock.json"
  (cd "$NODE_DIR" && npm install --no-audit --no-fund --loglevel=error >/dev/null)
  cp "$PKG" "$NODE_DIR/.package.json"
fi
# The AWS provider's schema for the offline check of infra/ (npm package pinned in
# e2e/infra_schema.py; only a compact schema stays in the cache).
"$VENV/bin/python" "$ROOT/e2e/infra_schema.py" install >/dev/null
# ESM resolves packages from the importing file's folder upwards, so the e2e scripts see the cache
# through a link.
ln -sfn "$NODE_DIR/node_modules" "$ROOT/e2e/node_modules"

# The OpenTelemetry Collector the e2e tests and `just dev` run, built from its pinned Go module
# (otel-collector/otelcol: the components of the ADOT sidecar's release) with the Go module proxy.
# Rebuilt only when that module or the Go toolchain changes; modules and build cache stay in the
# cache folder (writable, so deleting that folder works). Without Go there is no collector:
# `just dev` falls back to rotel, and the tests that run the collector fail saying so.
. "$ROOT/scripts/env.sh"
if command -v go >/dev/null 2>&1; then
  OTELCOL_SRC=$ROOT/otel-collector/otelcol
  otelcol_stamp=$({ go version; cat "$OTELCOL_SRC"/go.mod "$OTELCOL_SRC"/go.sum "$OTELCOL_SRC"/*.go; } | sha256sum)
  if [ ! -x "$MCP_OTELCOL_BIN" ] || [ "$(cat "$MCP_OTELCOL_BIN.stamp" 2>/dev/null)" != "$otelcol_stamp" ]; then
    log "go build the collector (otel-collector/otelcol) -> $MCP_OTELCOL_BIN"
    t_otelcol=$SECONDS
    (cd "$OTELCOL_SRC" && GOMODCACHE=$CACHE/go/mod GOCACHE=$CACHE/go/build GOFLAGS="-mod=readonly -modcacherw -trimpath -buildvcs=false" \
      CGO_ENABLED=0 go build -o "$MCP_OTELCOL_BIN" .)
    echo "$otelcol_stamp" >"$MCP_OTELCOL_BIN.stamp"
    log "collector built in $((SECONDS - t_otelcol)) s"
  fi
else
  log "no Go toolchain: no collector build (the tests that run it will fail)"
fi
# cargo-generate (pinned; 0.24 needs a newer Rust than the project's) for the generation tests and
# `just upgrade-platform`; built in its own target dir, away from the project's build cache.
# Unoptimised and without debug info (--debug, CARGO_PROFILE_DEV_DEBUG): it renders a few files,
# and the optimised build takes several times longer. Its libgit2 is always compiled in: Debian
# 12's (1.5) is older than its git2 accepts.
CARGO_GENERATE=$CACHE/cargo-generate/bin/cargo-generate
if [ ! -x "$CARGO_GENERATE" ]; then
  log "cargo install cargo-generate 0.23.7 (a few minutes, once)"
  env -u CARGO_BUILD_TARGET -u CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS \
    -u CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS CARGO_PROFILE_DEV_DEBUG=0 \
    cargo install --quiet --locked --debug --version 0.23.7 cargo-generate \
    --root "$CACHE/cargo-generate" --target-dir "$CACHE/target-tools"
fi
log "ready: venv=$VENV node=$("$NODE_DIR/node_modules/.bin/node" --version)"
