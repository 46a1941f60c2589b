"""The official TypeScript SDK clients (v1 and v2), which nobody here wrote, against the release
binary: list tools, call ping twice, see a tool error for bad arguments."""
import json
import subprocess

import pytest

from support import NODE_BIN, SERVICE_NAME, TS_CLIENT


def run_client(url: str, sdk: str, mode: str, token: str | None = None) -> dict:
    cmd = [NODE_BIN, str(TS_CLIENT), "--sdk", sdk, "--mode", mode, "--url", url]
    if token:
        cmd += ["--token", token]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"{sdk}/{mode} failed:\n{proc.stdout}\n{proc.stderr}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module", params=[
    ("v1", "legacy", "2025-11-25"),
    ("v2", "legacy", "2025-11-25"),
    ("v2", "pin", "2026-07-28"),
    ("v2", "auto", "2026-07-28"),
], ids=lambda p: f"{p[0]}-{p[1]}")
def client_run(request, server):
    """One run of a client (sdk, mode) and the protocol version it must agree: (seen, version)."""
    sdk, mode, version = request.param
    return run_client(server.url, sdk, mode), version


def test_official_client(client_run, listed_tools):
    seen, version = client_run
    assert seen["protocolVersion"] == version
    assert seen["sessionId"] is None, "stateless: no session id"
    assert seen["server"]["name"] == SERVICE_NAME
    assert seen["tools"] == sorted(listed_tools)
    for ping in seen["pings"]:
        assert ping["text"].startswith("pong! taskId=local v=0.1.0 d="), ping
        assert ping["structured"]["taskId"] == "local"


def test_official_client_sees_a_tool_error(client_run, example_tools):
    seen, _ = client_run
    assert seen["badEcho"]["isError"] is True
    assert '/text: "" is shorter than 1 character (minLength)' in seen["badEcho"]["text"]
