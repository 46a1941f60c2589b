"""What the tasks suites share: a DynamoDB stand-in (moto in server mode, a real process on
loopback) with the tasks table, replicas of the service sharing it, HAProxy spreading requests
round-robin over them, bearer tokens for two principals, and raw 2026-07-28 calls that declare
the Tasks extension. It imports only support and mcp_http (e2e/tests/test_imports.py)."""
from __future__ import annotations

import itertools
import json
import os
import shutil
import socket
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import requests

from mcp_http import HEADERS, MODERN
from support import HAPROXY_CFG, ROOT, free_port, start_server, stop_process

TASKS_EXTENSION = "io.modelcontextprotocol/tasks"
TABLE = "mcp-tasks"
ISSUER = "https://issuer.test.example"
FIXTURES = ROOT / "platform/tests/fixtures"
AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1",
           "AWS_EC2_METADATA_DISABLED": "true"}
_ids = itertools.count(1)


def wait_for(what: str, check, timeout: float = 30, every: float = 0.1):
    """Polls `check` until it returns something truthy (returned), failing after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(every)


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def moto_server(tmp_path: Path, table: str = TABLE):
    """moto's server (one request at a time, e2e/moto_serial.py) on a free port with `table` (key task_id, TTL on expires_at); yields its URL
    and its process (a test may freeze the store with SIGSTOP)."""
    port = free_port()
    python = Path(os.environ.get("MCP_VENV", "")) / "bin/python"
    proc = subprocess.Popen([str(python), str(ROOT / "e2e/moto_serial.py"), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=open(tmp_path / "moto.log", "wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for("moto to listen", lambda: _listening(port))
        import boto3  # moto's own dependency, in the test venv
        client = boto3.client("dynamodb", endpoint_url=url, region_name=AWS_ENV["AWS_REGION"],
                              aws_access_key_id="testing", aws_secret_access_key="testing")
        client.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                            AttributeDefinitions=[{"AttributeName": "task_id", "AttributeType": "S"}],
                            KeySchema=[{"AttributeName": "task_id", "KeyType": "HASH"}])
        client.update_time_to_live(TableName=table, TimeToLiveSpecification={
            "Enabled": True, "AttributeName": "expires_at"})
        yield url, proc
    finally:
        stop_process(proc, 9)


def replica_env(endpoint: str, **extra) -> dict:
    """A replica on the shared table: fast polls, the example tools' `report` as a task."""
    return {**AWS_ENV, "APP__TASKS__STORE": "dynamodb", "APP__TASKS__TABLE": TABLE,
            "APP__TASKS__ENDPOINT_URL": endpoint, "APP__TASKS__POLL_INTERVAL_MS": "200",
            "APP__HTTP__ALLOWED_HOSTS": "*", **extra}


def auth_env(resource: str) -> dict:
    return {"APP__AUTH__MODE": "jwt", "APP__AUTH__RESOURCE": resource, "APP__AUTH__ISSUER": ISSUER,
            "APP__AUTH__JWKS_FILE": str(FIXTURES / "test-jwks.json")}


def token(resource: str, subject: str) -> str:
    import jwt
    now = int(time.time())
    claims = {"sub": subject, "iss": ISSUER, "aud": resource, "iat": now, "exp": now + 600, "scope": "mcp:call"}
    key = (FIXTURES / "test-signing-key.pem").read_text()
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "test-key-1"})


# A replica that stopped listening is retried on another (as an ALB does for a deregistered target).
RETRIES = """    retries 2
    option redispatch 1
    retry-on conn-failure empty-response"""


@contextmanager
def haproxy(tmp_path: Path, ports: list[int], port: int):
    """HAProxy on `port`, round-robin over the replicas' `ports` (the rolling-restart test's)."""
    servers = "\n".join(f"    server s{i} 127.0.0.1:{p} check" for i, p in enumerate(ports))
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(HAPROXY_CFG.format(servers=servers, port=port, defaults=RETRIES))
    binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
    proc = subprocess.Popen([binary, "-f", str(cfg), "-db"], stdout=open(tmp_path / "haproxy.log", "wb"),
                            stderr=subprocess.STDOUT)
    try:
        wait_for("haproxy to listen", lambda: _listening(port))
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        stop_process(proc)


@contextmanager
def running_cluster(tmp_path: Path, replicas: int = 3):
    """`replicas` service processes on one moto table, with JWT auth, behind HAProxy round-robin.
    Yields the cluster as a dict: endpoint, moto (its process), replicas, proxy (the URL a client uses), resource,
    env, tmp, and bearer tokens for two principals, alice and bob."""
    proxy_port = free_port()
    resource = f"http://127.0.0.1:{proxy_port}/mcp"
    with moto_server(tmp_path) as (endpoint, moto):
        env = {**replica_env(endpoint), **auth_env(resource)}
        started = [start_server(tmp_path, env) for _ in range(replicas)]
        try:
            with haproxy(tmp_path, [r.port for r in started], proxy_port) as url:
                yield {"endpoint": endpoint, "moto": moto, "replicas": started, "proxy": url, "resource": resource,
                       "env": env, "tmp": tmp_path,
                       "alice": token(resource, "alice"), "bob": token(resource, "bob")}
        finally:
            for r in started:
                r.stop(9)


def access_lines(server, task_id: str) -> list[str]:
    """The replica's access-log lines for requests about `task_id`."""
    return [l for l in server.log().splitlines() if task_id in l and '"message":"request"' in l]


def rpc(url: str, method: str, params: dict, bearer: str | None = None, declare: bool = True,
        timeout: float = 15) -> dict:
    """One 2026-07-28 request, declaring the Tasks extension; returns the JSON-RPC response."""
    capabilities = {"extensions": {TASKS_EXTENSION: {}}} if declare else {}
    params = {**params, "_meta": {"io.modelcontextprotocol/protocolVersion": MODERN,
                                  "io.modelcontextprotocol/clientCapabilities": capabilities}}
    headers = {**HEADERS, "MCP-Protocol-Version": MODERN, "Mcp-Method": method}
    name = params.get("taskId") or params.get("name")
    if name:
        headers["Mcp-Name"] = name
    if bearer:
        headers["Authorization"] = f"Bearer {bearer}"
    body = {"jsonrpc": "2.0", "id": next(_ids), "method": method, "params": params}
    resp = requests.post(url, json=body, headers=headers, timeout=timeout)
    text = resp.text
    if resp.headers.get("content-type", "").startswith("text/event-stream"):
        text = [l[5:] for l in text.splitlines() if l.startswith("data:")][-1]
    answer = json.loads(text)
    answer["_http_status"] = resp.status_code
    return answer


def start_report(url: str, bearer: str | None = None, **arguments) -> dict:
    """`report` as a task: the CreateTaskResult."""
    answer = rpc(url, "tools/call", {"name": "report", "arguments": {"title": "t", **arguments}}, bearer)
    assert "result" in answer, answer
    assert answer["result"]["resultType"] == "task", answer
    return answer["result"]


def get_task(url: str, task_id: str, bearer: str | None = None) -> dict:
    return rpc(url, "tasks/get", {"taskId": task_id}, bearer)


def wait_status(url: str, task_id: str, statuses: set[str], bearer: str | None = None,
                timeout: float = 30) -> dict:
    """Polls tasks/get on `url` until the task is in one of `statuses`; returns the task."""
    def reached():
        result = get_task(url, task_id, bearer).get("result") or {}
        return result if result.get("status") in statuses else None
    return wait_for(f"task {task_id} to be {statuses}", reached, timeout=timeout, every=0.2)
