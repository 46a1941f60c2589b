"""Telemetry against real components: spans through the OTLP wire to a real collector (rotel),
metrics scraped by a real Prometheus, JSON logs, and a dead or hung collector that must cost
requests nothing."""
import json
import re
import subprocess
import time

import requests

from dash_prometheus import running_prometheus
from mcp_http import HEADERS, call_tool
from otlp_receiver import black_hole, running_receiver

HTTP_PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
META_PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_spans_reach_a_real_collector_with_mcp_semantics(tmp_path, server_factory):
    with running_receiver(tmp_path) as receiver:
        for protocol, endpoint in [("http/protobuf", receiver.http_endpoint), ("grpc", receiver.grpc_endpoint)]:
            server = server_factory({"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
                                     "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
                                     "OTEL_SERVICE_NAME": f"it-{protocol.replace('/', '-')}",
                                     "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=ci",
                                     "APP__TOOLS__PING__DELAY_MS": "1"})
            resp = call_tool(server.url, "ping", modern=True, meta={"traceparent": META_PARENT},
                             headers={"traceparent": HTTP_PARENT, "x-request-id": f"otlp-{protocol}"})
            assert resp.status_code == 200
            unknown = call_tool(server.url, "no_such_tool")
            assert unknown.json()["error"]["code"] == -32602
            assert server.stop() == 0  # flushes

            mcp = receiver.wait_for(lambda s: s.name == "tools/call ping" and s.trace_id == META_PARENT[3:35],
                                    f"tools/call ping over {protocol}")[-1]
            assert mcp.kind == "SPAN_KIND_SERVER"
            assert mcp.parent_id == META_PARENT[36:52], "parent from params._meta.traceparent"
            attrs = mcp.attributes
            assert attrs["mcp.method.name"] == "tools/call"
            assert attrs["gen_ai.tool.name"] == "ping"
            assert attrs["gen_ai.operation.name"] == "execute_tool"
            assert attrs["mcp.protocol.version"] == "2026-07-28"
            assert attrs["jsonrpc.request.id"].isdigit()
            assert "error.type" not in attrs
            work = receiver.wait_for(lambda s: s.name == "ping.delay" and s.trace_id == mcp.trace_id,
                                     "the span a tool opens")[-1]
            assert work.parent_id == mcp.span_id, "a tool's own span is a child of its MCP span"

            # One server span per request (X-Ray draws one node): the MCP span carries the HTTP
            # attributes, and the HTTP traceparent is a link, not a second span.
            assert attrs["http.route"] == "/mcp"
            assert attrs["http.request.method"] == "POST"
            assert attrs["http.response.status_code"] == "200"
            assert attrs["request_id"] == f"otlp-{protocol}"
            assert mcp.links and mcp.links[0]["Trace ID"] == HTTP_PARENT[3:35], "MCP span links the HTTP context"
            assert not [s for s in receiver.spans() if s.name == "POST /mcp"], "no transport span for MCP"

            unknown_span = receiver.wait_for(lambda s: s.name == "tools/call no_such_tool", "unknown tool span")[-1]
            assert unknown_span.attributes["error.type"] == "-32602"
            assert unknown_span.attributes["rpc.response.status_code"] == "-32602"

        text = receiver.out.read_text()
        assert "service.name: Str(it-grpc)" in text and "service.name: Str(it-http-protobuf)" in text
        assert "deployment.environment.name: Str(ci)" in text
        assert "service.version: Str(0.1.0)" in text and "service.instance.id" in text


def test_a_tool_error_is_an_error_span(tmp_path, server_factory, example_tools):
    with running_receiver(tmp_path) as receiver:
        server = server_factory({"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.http_endpoint,
                                 "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"})
        bad = call_tool(server.url, "echo", {"text": ""})
        assert bad.json()["result"]["isError"] is True
        assert server.stop() == 0  # flushes
        echo = receiver.wait_for(lambda s: s.name == "tools/call echo"
                                 and s.attributes.get("error.type") == "tool_error", "a tool_error span")
        assert echo[-1].status == "STATUS_CODE_ERROR"


def test_prometheus_scrapes_the_admin_listener(tmp_path, server):
    exposition = requests.get(server.metrics_url, timeout=5).text
    check = subprocess.run(["promtool", "check", "metrics"], input=exposition, capture_output=True, text=True)
    # promtool only warns about style (non-counter names ending in _total etc.); errors fail.
    assert check.returncode == 0, check.stdout + check.stderr
    for name in ["http_server_request_duration_seconds_bucket", "mcp_server_build_info", "http_server_active_requests",
                 "http_server_shed_requests_total", "otel_spans_dropped_total", "process_cpu_seconds_total",
                 "process_resident_memory_bytes", "process_open_fds"]:
        assert name in exposition, name
    assert "summary" not in exposition.split("mcp_server_operation_duration_seconds")[0][-200:]

    with running_prometheus(tmp_path, [f"127.0.0.1:{server.admin_port}"], []) as prom:
        for _ in range(7):
            assert call_tool(server.url, "ping").status_code == 200
        expr = 'sum(mcp_server_operation_duration_seconds_count{mcp_method_name="tools/call",gen_ai_tool_name="ping"})'
        deadline = time.monotonic() + 20
        value = 0.0
        while time.monotonic() < deadline and value < 7:
            result = prom.wait_for(expr, "ping count")
            value = float(result[0]["value"][1])
            time.sleep(0.3)
        assert value >= 7, value
        buckets = prom.query('count(http_server_request_duration_seconds_bucket{http_route="/mcp"}) by (le)')
        assert len(buckets) == 15, "14 semconv buckets + +Inf"


def test_values_a_caller_chooses_do_not_become_metric_series(server):
    """A protocol version in `_meta` and a tool name come from the caller: as label values they
    would let anyone add series (memory) without limit, so unknown ones are `_OTHER`."""
    for i in range(3):
        body = {"jsonrpc": "2.0", "id": i, "method": "tools/call",
                "params": {"name": f"no-such-tool-{i}", "arguments": {},
                           "_meta": {"io.modelcontextprotocol/protocolVersion": f"1999-01-0{i}"}}}
        requests.post(server.url, json=body, headers=HEADERS, timeout=10)
    exposition = requests.get(server.metrics_url, timeout=5).text
    assert "1999-01-0" not in exposition and "no-such-tool" not in exposition
    assert 'mcp_protocol_version="_OTHER"' in exposition
    assert 'gen_ai_tool_name="_OTHER"' in exposition


def test_a_request_the_client_abandons_is_still_counted(server_factory):
    """A client that gives up drops the request's handler: the request must still leave the
    in-flight gauge, get its duration recorded as cancelled, and have its access line."""
    server = server_factory({"APP__TOOLS__PING__DELAY_MS": "3000", "APP__LOG__FORMAT": "json"})
    try:
        call_tool(server.url, "ping", headers={"x-request-id": "gave-up-1"}, timeout=0.5)
    except requests.exceptions.Timeout:
        pass
    else:
        raise AssertionError("the call should have outlived the client's timeout")

    def metric(pattern: str) -> float:
        exposition = requests.get(server.metrics_url, timeout=5).text
        found = re.search(r"(?m)^" + pattern + r" (\S+)$", exposition)
        return float(found.group(1)) if found else -1.0

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and metric(r"http_server_active_requests") != 0:
        time.sleep(0.1)
    assert metric(r"http_server_active_requests") == 0
    assert metric(r'http_server_request_duration_seconds_count\{[^}]*error_type="cancelled"[^}]*\}') == 1
    assert metric(r'mcp_server_operation_duration_seconds_count\{[^}]*error_type="cancelled"[^}]*\}') == 1
    assert server.stop() == 0
    lines = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    access = [l for l in lines if l.get("message") == "request" and l.get("request_id") == "gave-up-1"]
    assert len(access) == 1, lines
    assert access[0]["error.type"] == "cancelled" and "http.status" not in access[0], access[0]


def test_json_logs_carry_ids_and_no_secrets(server_factory, example_tools):
    # Trace ids appear when traces are exported (the collector here is absent: export fails
    # quietly, the ids are still real).
    server = server_factory({"APP__LOG__FORMAT": "json", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"})
    call_tool(server.url, "echo", {"text": "top-secret-argument"},
              headers={"traceparent": HTTP_PARENT, "x-request-id": "log-req-1",
                       "Authorization": "Bearer sekrit-token", "Cookie": "session=sekrit-cookie"})
    call_tool(server.url, "echo", {"text": "x", "repeat": 11},
              headers={"traceparent": HTTP_PARENT, "x-request-id": "log-req-2"})
    assert server.stop() == 0
    lines = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    access = [l for l in lines if l.get("message") == "request" and l.get("request_id") == "log-req-1"]
    assert len(access) == 1, lines
    line = access[0]
    for key in ["timestamp", "level", "message", "target", "trace_id", "span_id", "request_id"]:
        assert key in line, key
    assert line["trace_id"] == HTTP_PARENT[3:35]
    assert line["mcp.method"] == "tools/call" and line["mcp.target"] == "echo"
    assert line["http.status"] == 200 and line["duration_ms"] > 0
    tool = _tool_line(lines, "log-req-2")
    assert tool["trace_id"] == HTTP_PARENT[3:35], "a tool's line is in the request's trace"
    text = server.log()
    for secret in ["sekrit-token", "sekrit-cookie", "top-secret-argument"]:
        assert secret not in text, secret


def _tool_line(lines: list, request_id: str) -> dict:
    """The line about echo's invalid arguments, logged where the tool would run (in rmcp's task,
    as a tool's own line is), checked for the request id; the value sent is not in it."""
    tool = [l for l in lines if l.get("message") == "invalid arguments"]
    assert len(tool) == 1, lines
    assert tool[0]["request_id"] == request_id, tool
    assert tool[0]["target"] == "mcp_platform::mcp::validate" and tool[0]["tool"] == "echo", tool
    assert "/repeat: " in tool[0]["problem"] and "(maximum)" in tool[0]["problem"], tool
    assert "11" not in tool[0]["problem"], tool
    return tool[0]


def test_tool_log_lines_carry_the_request_id_without_a_collector(server_factory, example_tools):
    # rmcp runs tools in tasks of their own; the request's context must reach them.
    server = server_factory({"APP__LOG__FORMAT": "json"})
    response = call_tool(server.url, "echo", {"text": "x", "repeat": 11}, headers={"x-request-id": "log-req-3"})
    assert response.json()["result"]["isError"] is True
    assert server.stop() == 0
    lines = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    tool = _tool_line(lines, "log-req-3")
    assert "trace_id" not in tool, "no collector: no trace ids"


def test_pretty_logs_show_trace_ids_in_hex(server_factory, example_tools):
    # The local format prints span fields; the ids must read as they do in a trace viewer.
    server = server_factory({"APP__LOG__FORMAT": "pretty", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"})
    call_tool(server.url, "echo", {"text": "x", "repeat": 11},
              headers={"traceparent": HTTP_PARENT, "x-request-id": "pretty-req-1"})
    assert server.stop() == 0
    text = re.sub(r"\x1b\[[0-9;]*m", "", server.log())  # colours
    line = next(l for l in text.splitlines() if "invalid arguments" in l and "echo" in l)
    assert f"trace_id={HTTP_PARENT[3:35]}" in line, line
    assert re.search(r"span_id=[0-9a-f]{16}\b", line), line


def _metric(text: str, name: str, **labels) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _rss_kib(pid: int) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_hung_collector_costs_requests_nothing(server_factory):
    with black_hole() as endpoint:
        server = server_factory({"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_BSP_MAX_QUEUE_SIZE": "64",
                                 "APP__LOG__LEVEL": "warn"})
        session = requests.Session()
        # The exporter's own timeout is 5 s: a request that waited for it would fail this 2 s limit.
        for _ in range(300):
            assert call_tool(server.url, "ping", session=session, timeout=2).status_code == 200
        rss_before = _rss_kib(server.proc.pid)
        for _ in range(1500):
            assert call_tool(server.url, "ping", session=session, timeout=2).status_code == 200
        rss_after = _rss_kib(server.proc.pid)
        metrics = requests.get(server.metrics_url, timeout=5).text
        dropped = _metric(metrics, "otel_spans_dropped_total", reason="queue_full")
        assert dropped > 1000, f"spans beyond the 64-span queue are dropped and counted: {dropped}"
        assert rss_after - rss_before < 16 * 1024, f"memory grew {rss_after - rss_before} KiB"
        started = time.monotonic()
        assert server.stop() == 0
        # Drain 0 + grace + the 3 s flush deadline: a hung collector cannot hold the exit.
        assert time.monotonic() - started < 15


def test_absent_collector_and_disabled_sdk(server_factory):
    dead = server_factory({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9/"})
    for _ in range(20):
        assert call_tool(dead.url, "ping", timeout=2).status_code == 200
    assert dead.stop() == 0
    off = server_factory({"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9/"})
    assert call_tool(off.url, "ping").status_code == 200
    assert off.stop() == 0
    assert "Disabled" in off.log()
