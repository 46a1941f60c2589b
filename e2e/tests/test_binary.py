"""The shipped binaries as an operator meets them: start-up on bad configuration, and the
`mcp-smoke` client against a live server."""
import os
import subprocess
import time

import pytest
import requests

from support import ROOT, SERVER_BIN, SERVICE_NAME, SMOKE_BIN, free_port, start_server


def run_server_expecting_exit(env_overrides: dict) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("APP__")}
    env.update(env_overrides)
    return subprocess.run([SERVER_BIN], env=env, capture_output=True, text=True, timeout=20)


@pytest.mark.parametrize(
    "var,value,expect",
    [
        ("APP__HTTP__ADDR", "nope", "expected an address like 0.0.0.0:8080"),
        ("APP__HTTP__MAX_BODY_BYTES", "-1", "expected a non-negative integer"),
        ("APP__LOG__FORMAT", "xml", "expected one of json, pretty"),
        ("APP__AUTH__MODE", "basic", "expected one of none, jwt"),
        ("APP__HTTP__MAX_IN_FLIGHT", "0", "expected a positive integer"),
        ("APP__HTTP__TYPO", "1", "is not a known key"),
    ],
)
def test_bad_configuration_stops_startup_with_one_line(var, value, expect):
    proc = run_server_expecting_exit({var: value})
    assert proc.returncode == 2, proc
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert var in lines[0] and expect in lines[0], lines[0]
    if value not in ("1",):
        assert repr(value).strip("'") in lines[0], lines[0]
    assert "panicked" not in proc.stderr


def test_port_in_use_is_reported(server):
    proc = run_server_expecting_exit({"APP__HTTP__ADDR": f"127.0.0.1:{server.port}",
                                      "APP__ADMIN__ADDR": f"127.0.0.1:{free_port()}"})
    assert proc.returncode == 1
    assert "cannot bind APP__HTTP__ADDR" in proc.stdout + proc.stderr


@pytest.mark.parametrize("flags", [[], ["--modern"], ["--era", "legacy"]])
def test_smoke_client_lists_tools_and_pongs_twice(server, listed_tools, flags):
    proc = subprocess.run([SMOKE_BIN, *flags, server.url], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert "ping" in listed_tools
    assert all(f"  - {name}: " in proc.stdout for name in listed_tools), proc.stdout
    assert proc.stdout.count("pong! taskId=local v=0.1.0") == 2, proc.stdout


def test_smoke_client_reads_the_endpoint_from_the_environment(server):
    env = {**os.environ, "MCP_SERVER_ENDPOINT": server.url}
    proc = subprocess.run([SMOKE_BIN], env=env, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr


def test_smoke_client_fails_loudly(server):
    dead = f"http://127.0.0.1:{free_port()}/mcp"
    proc = subprocess.run([SMOKE_BIN, dead], capture_output=True, text=True, timeout=30)
    assert proc.returncode != 0
    assert "smoke test failed" in proc.stderr


def test_readme_quick_start_commands(tmp_path):
    """The README's first command runs the service and its smoke client talks to it, through cargo
    exactly as written (on the suite's build cache, so nothing is rebuilt)."""
    cargo = ["cargo", "run", "--release", "--locked", "--quiet", "--manifest-path", str(ROOT / "Cargo.toml")]
    server = start_server(tmp_path, args=[*cargo[1:], "-p", SERVICE_NAME], binary=cargo[0], wait_ready=False)
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            assert server.proc.poll() is None, server.log()
            try:
                if requests.get(f"{server.base}/readyz", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.2)
        else:
            raise AssertionError(f"not ready after cargo run:\n{server.log()}")
        smoke = subprocess.run([*cargo, "-p", "mcp-smoke", "--", server.url],
                               capture_output=True, text=True, timeout=600)
        assert smoke.returncode == 0, smoke.stderr
        assert smoke.stdout.count("pong! taskId=local") == 2, smoke.stdout
    finally:
        assert server.stop() == 0, server.log()
