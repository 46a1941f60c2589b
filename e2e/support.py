"""What the black-box suite shares: the project's paths, the binaries under test, free loopback
ports, and starting the real release binary. It imports no test module (conftest.py and the
helpers build on it; e2e/tests/test_imports.py keeps the import graph free of circles).

Binaries come from the environment (scripts/env.sh sets them):
  MCP_SERVER_BIN  the service's release binary (named after its crate, service/Cargo.toml)
  MCP_SMOKE_BIN   the `mcp-smoke` release binary
"""
from __future__ import annotations

import os
import socket
import subprocess
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
# The service's name has one source, its crate; the scrape job, binary and serverInfo follow it.
SERVICE_NAME = tomllib.loads((ROOT / "service/Cargo.toml").read_text())["package"]["name"]
SERVER_BIN = os.environ.get("MCP_SERVER_BIN", str(ROOT / "target/release" / SERVICE_NAME))
SMOKE_BIN = os.environ.get("MCP_SMOKE_BIN", str(ROOT / "target/release/mcp-smoke"))
NODE_BIN = str(ROOT / "e2e/node_modules/.bin/node")
# The official TypeScript SDK clients' driver (e2e/clients/).
TS_CLIENT = ROOT / "e2e/clients/ts-client.mjs"
# The template's example tools; a service generated without them serves only `ping`.
EXAMPLE_TOOLS = {"echo", "whoami", "weather", "report"}


# HAProxy in front of replicas, as an ALB: round-robin, health checks on /readyz. `servers` holds
# one `server` line per slot; `defaults` more lines for the defaults section.
HAPROXY_CFG = """
global
    maxconn 2000
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    option http-keep-alive
{defaults}
backend mcp
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter 250ms fall 2 rise 2
{servers}
frontend public
    bind 127.0.0.1:{port}
    default_backend mcp
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process(proc: subprocess.Popen, sig: int = 15, timeout: float = 10) -> int:
    """Signals a process we started, waits up to `timeout`, then kills it; returns its exit code."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


@dataclass
class Server:
    """A running service process with its ports and captured output."""

    proc: subprocess.Popen
    port: int
    admin_port: int
    log_path: Path
    env: dict = field(default_factory=dict)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.base}/mcp"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}/metrics"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = 15, timeout: float = 30) -> int:
        return stop_process(self.proc, sig, timeout)


def start_server(tmp_path: Path, env: dict | None = None, args: list[str] | None = None,
                 wait_ready: bool = True, binary: str = SERVER_BIN, stdout=None) -> Server:
    """`stdout`: where the server's stdout goes instead of its log file (e.g. `subprocess.PIPE`)."""
    env = env or {}
    # A test may pin a port (e.g. a load balancer slot); otherwise pick free ones.
    port = int(env["APP__HTTP__ADDR"].rsplit(":", 1)[1]) if "APP__HTTP__ADDR" in env else free_port()
    admin_port = int(env["APP__ADMIN__ADDR"].rsplit(":", 1)[1]) if "APP__ADMIN__ADDR" in env else free_port()
    full_env = {
        k: v for k, v in os.environ.items()
        if not k.startswith(("APP__", "OTEL_", "RUST_LOG", "ECS_CONTAINER_METADATA"))
    }
    full_env.update({
        "APP__HTTP__ADDR": f"127.0.0.1:{port}",
        "APP__ADMIN__ADDR": f"127.0.0.1:{admin_port}",
        "APP__SHUTDOWN__DRAIN_DELAY_MS": "0",
        "APP__SHUTDOWN__GRACE_MS": "5000",
        # The suite's load all comes from 127.0.0.1: per-caller limits are off unless a test sets them.
        "APP__HTTP__RATE_LIMIT_PER_SECOND": "0",
    })
    full_env.update(env)
    log_path = tmp_path / f"server-{port}.log"
    log_file = open(log_path, "wb")
    proc = subprocess.Popen([binary, *(args or [])], env=full_env,
                            stdout=log_file if stdout is None else stdout, stderr=subprocess.STDOUT)
    server = Server(proc, port, admin_port, log_path, full_env)
    if wait_ready:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited early ({proc.returncode}):\n{server.log()}")
            try:
                if requests.get(f"{server.base}/readyz", timeout=1).status_code == 200:
                    return server
            except requests.RequestException:
                pass
            time.sleep(0.05)
        server.stop(9)
        raise RuntimeError(f"server not ready after 30 s:\n{server.log()}")
    return server
