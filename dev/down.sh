#!/usr/bin/env bash
# `just dev-down`: stops exactly what `just dev` started (the PIDs in $DEV_DIR/pids, newest
# first so the service flushes its spans before the receiver goes), and the compose stack.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEV_DIR=${DEV_DIR:-$ROOT/.dev}

# ours NAME PID PROGRAM: still that process, and not already exited (a zombie waiting to be
# reaped), and not another that reused the PID?
ours() {
  local state
  state=$(ps -p "$2" -o stat=,args= 2>/dev/null) || return 1
  [[ $state != Z* ]] && grep -qF -- "$3" <<<"$state"
}

if [ -f "$DEV_DIR/pids" ]; then
  tac "$DEV_DIR/pids" | while read -r name pid program; do
    ours "$name" "$pid" "$program" || continue
    kill -TERM "$pid"
    for _ in $(seq 100); do ours "$name" "$pid" "$program" || break; sleep 0.1; done
    if ours "$name" "$pid" "$program"; then
      echo "dev-down: $name ($pid) ignored SIGTERM for 10 s, killing it" >&2
      kill -KILL "$pid"
    fi
    echo "stopped $name ($pid)"
  done
  rm -f "$DEV_DIR/pids"
fi
if [ "$(cat "$DEV_DIR/mode" 2>/dev/null)" = compose ]; then
  docker compose -f "$ROOT/dev/compose.yaml" down
fi
rm -f "$DEV_DIR/mode"
