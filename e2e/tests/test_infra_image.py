"""The binary the Dockerfile ships, as ECS runs it: statically linked (the distroless/static image
has no libc), its `healthcheck` subcommand as the container health check, and the service
started with the task definition's environment answering the ALB's health checks."""
from __future__ import annotations

import os
import socket
import subprocess
import time
import tomllib
from pathlib import Path

import pytest
import requests

from ecs_task import PUBLIC_HOST, task_environment
from infra_hcl import Module
from infra_tools import ROOT
from support import SERVER_BIN, free_port


@pytest.fixture(scope="module")
def binary() -> Path:
    path = Path(SERVER_BIN)
    if not path.is_file():
        pytest.fail(f"MCP_SERVER_BIN={path} does not exist: build it first (scripts/test.sh does)")
    return path


def _readelf(flag: str, path: Path) -> str:
    return subprocess.run(["readelf", "-W", flag, str(path)], capture_output=True, text=True,
                          check=True).stdout


def test_binary_is_static_like_the_image_build(binary):
    header = _readelf("-h", binary)
    assert "Advanced Micro Devices X86-64" in header  # the task's runtime_platform is X86_64
    assert "INTERP" not in _readelf("-l", binary), "dynamically linked: no loader in distroless"
    assert "(NEEDED)" not in _readelf("-d", binary)
    # The Dockerfile builds it the same way.
    docker = (ROOT / "Dockerfile").read_text()
    assert 'RUSTFLAGS="-C target-feature=+crt-static"' in docker
    assert "--release --locked --target x86_64-unknown-linux-gnu" in docker
    print(f"static binary: {binary.stat().st_size / 2**20:.1f} MiB "
          "(+ ~2 MiB distroless/static base = the image)")


def _healthcheck(env: dict) -> tuple[int, float]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("APP__", "OTEL_"))}
    start = time.monotonic()
    proc = subprocess.run([SERVER_BIN, "healthcheck"], env={**clean, **env},
                          capture_output=True, text=True, timeout=15)
    return proc.returncode, time.monotonic() - start


def test_healthcheck_subcommand_against_a_live_server(binary, server_factory):
    server = server_factory()
    # As in the task: the app listens on the wildcard address, the probe goes over loopback.
    assert _healthcheck({"APP__HTTP__ADDR": f"0.0.0.0:{server.port}"})[0] == 0
    assert _healthcheck({"APP__HTTP__ADDR": f"127.0.0.1:{server.port}"})[0] == 0
    server.stop(9)
    code, _ = _healthcheck({"APP__HTTP__ADDR": f"127.0.0.1:{server.port}"})
    assert code == 1


def test_healthcheck_gives_up_on_a_hung_listener(binary):
    # Accepts connections (the kernel's backlog) but never answers: the probe must not hang
    # past its 2 s budget, or ECS would count a timeout instead of a failure.
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(8)
        code, elapsed = _healthcheck({"APP__HTTP__ADDR": f"127.0.0.1:{hung.getsockname()[1]}"})
    assert code == 1 and elapsed < 4, (code, elapsed)


def test_task_environment_is_accepted_and_alb_health_checks_pass(binary, server_factory):
    env = task_environment()
    # The listeners move to free ports, and traces to a closed one; everything else is verbatim.
    env.pop("APP__HTTP__ADDR")
    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{free_port()}"
    # Non-empty auth values, so a misspelt key would stop start-up (empty means unset).
    env.update({"APP__AUTH__ISSUER": "https://issuer.example.com",
                "APP__AUTH__JWKS_URL": "https://issuer.example.com/jwks.json",
                "APP__AUTH__REQUIRED_SCOPES": "mcp:tools"})
    server = server_factory(env)

    tf = Module.load()
    [check] = tf.resource("aws_lb_target_group", "app")["health_check"]
    # The ALB's health checker sends the target's IP as Host, never the public name.
    alb_host = {"Host": f"10.42.32.17:{server.port}"}
    answer = requests.get(server.base + check["path"], headers=alb_host, timeout=5)
    assert str(answer.status_code) == check["matcher"], answer.text
    assert requests.get(server.base + "/livez", headers=alb_host, timeout=5).status_code == 200
    assert _healthcheck(server.env)[0] == 0

    # The allow-list from APP__HTTP__ALLOWED_HOSTS is in force on the MCP endpoint.
    body = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    headers = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-06-18"}
    wrong = requests.post(server.url, json=body, headers={**headers, "Host": "attacker.example"},
                          timeout=5)
    assert wrong.status_code == 403, wrong.text
    right = requests.post(server.url, json=body, headers={**headers, "Host": PUBLIC_HOST}, timeout=5)
    assert right.status_code != 403, right.text


def test_dockerignore_lets_the_build_context_hold_the_workspace():
    lines = [l.strip() for l in (ROOT / ".dockerignore").read_text().splitlines()
             if l.strip() and not l.startswith("#")]
    assert lines[0] == "*", "an allow-list keeps target/, .git and state files out of the context"
    allowed = {l[1:].rstrip("/") for l in lines if l.startswith("!")}
    members = tomllib.loads((ROOT / "Cargo.toml").read_text())["workspace"]["members"]
    assert {"Cargo.toml", "Cargo.lock", *members} <= allowed, allowed
