"""`just dev` without Docker, as a developer runs it: the collector of otel-collector/otelcol on
local.yaml, prometheus and the service (with the developer's settings file) come up, see each other (the collector scrapes the service
and remote-writes to prometheus, as the ECS sidecar does to AMP), and `just dev-down` stops
exactly them. The prebuilt binary stands in for cargo;
every port and the state folder are moved so a developer's own `just dev` is left alone."""
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests
import yaml

from dash_prometheus import PromAPI
from support import ROOT, SERVER_BIN, SERVICE_NAME, free_port


def just(*args: str, env: dict, timeout: float = 180) -> subprocess.CompletedProcess:
    binary = shutil.which("just") or str(Path(sys.executable).parent / "just")
    return subprocess.run([binary, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def alive(pid: int) -> bool:
    """Running; an exited process its new parent has not reaped yet (state Z) counts as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_until(check, what: str, timeout: float = 20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.25)
    raise AssertionError(f"{what} within {timeout} s")


def traced_ping(url: str, trace_id: str) -> dict:
    resp = requests.post(url, timeout=10, json={
        "jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "ping", "arguments": {}}},
        headers={"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25",
                 "traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"})
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_just_dev_native_starts_the_loop_and_dev_down_stops_it(tmp_path):
    dev_dir = tmp_path / "dev"
    addr = {k: f"127.0.0.1:{free_port()}" for k in ("http", "admin", "prom", "grpc", "otlp", "health")}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("APP__", "OTEL_", "DEV_"))}
    env.update({"DEV_DIR": str(dev_dir), "DEV_MODE": "native", "MCP_SERVER_BIN": SERVER_BIN,
                "APP__HTTP__ADDR": addr["http"], "APP__ADMIN__ADDR": addr["admin"],
                "DEV_PROMETHEUS_ADDR": addr["prom"], "DEV_OTLP_GRPC_ADDR": addr["grpc"],
                "DEV_OTLP_HTTP_ADDR": addr["otlp"], "DEV_COLLECTOR_HEALTH_ADDR": addr["health"],
                "DEV_SCRAPE_INTERVAL": "1s", "DEV_SETTINGS_FILE": str(tmp_path / "local.toml")})
    # The developer's own settings file (local.toml, git-ignored), as the service reads it.
    (tmp_path / "local.toml").write_text("[tools.ping]\ndelay_ms = 30\n")
    up = just("dev", env=env)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        # It says where to look, and those places exist.
        for where in (f"http://{addr['http']}/mcp", f"http://{addr['prom']}/alerts",
                      str(dev_dir / "traces.log"), str(dev_dir / "service.log"),
                      f"settings       {tmp_path / 'local.toml'}"):
            assert where in up.stdout, where
        pids = {name: int(pid) for name, pid, _ in
                (line.split(" ", 2) for line in (dev_dir / "pids").read_text().splitlines())}
        assert set(pids) == {"otelcol", "prometheus", SERVICE_NAME}
        assert all(alive(p) for p in pids.values())

        # The collector scrapes the service under the job the dashboards use and remote-writes
        # (its scope label shows the path), and prometheus has the rules loaded.
        prom = PromAPI(f"http://{addr['prom']}")
        prom.wait_for(f'up{{job="{SERVICE_NAME}", otel_scope_name!=""}} == 1',
                      "the collector's scrape of the service's admin port, remote-written")
        rule_groups = {g["name"] for g in prom.get("/api/v1/rules")["groups"]}
        shipped = {g["name"] for g in yaml.safe_load(
            (ROOT / f"dashboards/alerts/{SERVICE_NAME}.rules.yaml").read_text())["groups"]}
        assert rule_groups == shipped

        # A request's span reaches the collector under the trace id the caller sent.
        trace_id = secrets.token_hex(16)
        pong = traced_ping(f"http://{addr['http']}/mcp", trace_id)
        assert "pong" in json.dumps(pong)
        assert pong["result"]["structuredContent"]["durationMs"] >= 30, "the settings file's delay"
        wait_until(lambda: trace_id in (dev_dir / "traces.log").read_text(),
                   "the request's span in the collector's log")

        load = just("load", "--url", f"http://{addr['http']}/mcp", "--duration", "1",
                    "--concurrency", "2", env=env, timeout=60)
        assert load.returncode == 0, load.stdout + load.stderr
    finally:
        down = just("dev-down", env=env, timeout=60)
    assert down.returncode == 0, down.stdout + down.stderr
    assert not any(alive(p) for p in pids.values())
    assert not (dev_dir / "pids").exists()
    for name, hostport in addr.items():  # nothing left holding a port
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", int(hostport.rsplit(":", 1)[1])))
