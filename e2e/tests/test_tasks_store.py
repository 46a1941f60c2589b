"""The task store's bad days: DynamoDB throttling every call, or not reachable at all. A call
that would make a task gets a clear JSON-RPC error (never a task reported made and then lost),
`tasks/get` says the store is the problem, and plain tool calls go on being served. The throttling
DynamoDB is a stand-in on loopback that answers every call as DynamoDB does when it throttles
(moto does not throttle)."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mcp_http import call_tool
from support import free_port, start_server
from tasks_cluster import replica_env, rpc


class Throttling(BaseHTTPRequestHandler):
    calls = 0

    def do_POST(self):  # noqa: N802 (http.server's name)
        self.rfile.read(int(self.headers.get("content-length", 0)))
        type(self).calls += 1
        body = json.dumps({"__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException",
                           "message": "Rate of requests exceeds the allowed throughput."}).encode()
        self.send_response(400)
        self.send_header("content-type", "application/x-amz-json-1.0")
        self.send_header("x-amzn-requestid", "throttled")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def throttling_dynamodb():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Throttling)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.parametrize("store", ["throttled", "unavailable"])
def test_a_store_that_fails_gives_a_clear_error_and_plain_calls_go_on(store, throttling_dynamodb, server_factory):
    endpoint = throttling_dynamodb if store == "throttled" else f"http://127.0.0.1:{free_port()}"
    server = server_factory(replica_env(endpoint, APP__TASKS__STORE_TIMEOUT_MS="10000"))
    calls_before = Throttling.calls
    answer = rpc(server.url, "tools/call", {"name": "report", "arguments": {"title": "t", "seconds": 1}})
    assert "result" not in answer, "no task is reported made that the store does not hold"
    error = answer["error"]
    assert error["code"] == -32603
    assert error["message"] == f"the task store is {store}; try again later"
    assert error["data"] == {"taskStore": store, "retryable": True}
    if store == "throttled":
        assert Throttling.calls - calls_before >= 2, "the SDK retried the throttled call"
    polled = rpc(server.url, "tasks/get", {"taskId": "any"})
    assert polled["error"]["data"]["taskStore"] == store
    # Plain calls do not need the store.
    pong = call_tool(server.url, "ping", modern=True)
    assert pong.status_code == 200 and "pong!" in pong.text
    assert '"message":"task store call failed"' in server.log()


def test_a_dynamodb_store_without_a_table_name_stops_start_up(tmp_path):
    env = replica_env("http://127.0.0.1:1")
    del env["APP__TASKS__TABLE"]
    with pytest.raises(RuntimeError) as exited:
        start_server(tmp_path, env)
    assert "server exited early (2)" in str(exited.value)
    assert "APP__TASKS__TABLE (tasks.table) is missing" in str(exited.value)
