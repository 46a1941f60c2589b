#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo fuzz, libFuzzer, AddressSanitizer) of everything that reads caller
# bytes before a tool runs: the targets in platform/fuzz/fuzz_targets/, started from the committed
# seeds in platform/fuzz/seeds/.
#   scripts/fuzz.sh          every target for its share of 1,050,000 executions (`just fuzz`);
#                            what a run learns is kept in ${MCP_CACHE}/fuzz-corpus for the next
#   scripts/fuzz.sh --ci     every target for a short fixed count, from the seeds only (CI)
# A crash, a timeout (10 s), a leak or an out-of-memory stops the run; the input that did it is
# written to platform/fuzz/artifacts/<target>/ (`<binary> <file>` replays it).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
. scripts/env.sh
# The instrumented build is its own: dynamic (ASan does not link statically), host target.
unset CARGO_BUILD_TARGET "$MCP_RUSTFLAGS_VAR"
# -Zsanitizer and the coverage passes are unstable flags; this lets the stable toolchain take them.
export RUSTC_BOOTSTRAP=1
export PATH=$MCP_CACHE/cargo-fuzz/bin:$PATH
FUZZ_DIR=$ROOT/platform/fuzz
BUILD_DIR=$CARGO_TARGET_DIR/fuzz
HOST=$(rustc -vV | sed -n 's/^host: //p')

# target, executions for `just fuzz`, more seed folders (besides seeds/<target>).
TARGETS=(
  "envelope 300000 stack"
  "request_id 100000"
  "refusals 150000"
  "guard 150000 stack"
  "auth 150000 stack"
  "stack 200000 auth guard"
)
CI_RUNS=1000
mode=${1:-full}

t_build=$SECONDS
# The lock file must be current (cargo fuzz has no --locked).
cargo fetch --locked --manifest-path "$FUZZ_DIR/Cargo.toml" >/dev/null
if [ "$mode" = --ci ]; then
  # CI builds unoptimised: a cold instrumented build of every dependency takes ~9 min so against
  # ~20 min optimised, and a short run does not need the speed.
  cargo fuzz build --dev --fuzz-dir "$FUZZ_DIR" --target-dir "$BUILD_DIR"
  BIN_DIR=$BUILD_DIR/$HOST/debug
else
  cargo fuzz build --fuzz-dir "$FUZZ_DIR" --target-dir "$BUILD_DIR"
  BIN_DIR=$BUILD_DIR/$HOST/release
fi
echo "== fuzz build: $((SECONDS - t_build)) s"

total=0
t_run=$SECONDS
for spec in "${TARGETS[@]}"; do
  read -r target runs extra <<<"$spec"
  seeds=()
  for dir in $target $extra; do seeds+=("$FUZZ_DIR/seeds/$dir"); done
  if [ "$mode" = --ci ]; then
    runs=$CI_RUNS
    corpus=$(mktemp -d)
  else
    corpus=$MCP_CACHE/fuzz-corpus/$target
    mkdir -p "$corpus"
  fi
  artifacts=$FUZZ_DIR/artifacts/$target
  mkdir -p "$artifacts"
  log=$(mktemp)
  # libFuzzer writes what it learns into the first folder only: never the committed seeds.
  if ! "$BIN_DIR/$target" "$corpus" "${seeds[@]}" -runs="$runs" -timeout=10 -max_len=8192 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$artifacts/" >"$log" 2>&1; then
    # What went wrong (a failed check's message, or the sanitizer's report), then libFuzzer's end.
    grep -E -A8 'panicked at|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)' "$log" | head -n 60
    tail -n 12 "$log"
    echo "== fuzz: $target FAILED (input in $artifacts/)" >&2
    exit 1
  fi
  done_line=$(grep -E '^Done [0-9]+ runs' "$log")
  executed=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  echo "== fuzz $target: $done_line; $(ls "$corpus" | wc -l) inputs in its corpus"
  total=$((total + executed))
  [ "$mode" = --ci ] && rm -rf "$corpus"
  rm -f "$log"
done
echo "== fuzz: $total executions in total, 0 crashes, 0 timeouts, 0 leaks, in $((SECONDS - t_run)) s"
