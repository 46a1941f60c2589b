"""A tool's secret (a `mcp_platform::Secret` setting, APP__TOOLS__... as ECS injects it) never
reaches stdout/stderr (debug logs included), the access line, an exported span or a config error.

The release binary runs with the example `weather` tool's key, `tools.weather.api_key`, set to a
marker, and its `tools.weather.base_url` pointed at a downstream on loopback that records what it
receives; the tool is called while the downstream answers and after it is gone (an error path,
where an HTTP client's error tends to print the URL). A binary without those settings is skipped:
it refuses them as unknown keys (exit 2), and never sees a secret."""
from __future__ import annotations

import json
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from support import SERVER_BIN, free_port, start_server
from mcp_http import call_tool, list_tools
from otlp_receiver import running_receiver

MARKER = "sk-live-8f3a0c5e1d9b4e27"
TOOL, KEY_VAR, BASE_URL_VAR = "weather", "APP__TOOLS__WEATHER__API_KEY", "APP__TOOLS__WEATHER__BASE_URL"


class Downstream(ThreadingHTTPServer):
    """Answers every GET or POST with `{}` and keeps each request's line, headers and body."""

    def __init__(self):
        self.received: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode(errors="replace")
                server.received.append(f"{self.requestline}\n{self.headers}\n{body}")
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            do_GET = do_POST = _answer

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def stop(self):
        if self.thread.is_alive():
            self.shutdown()
            self.server_close()


def check_settings(env: dict, tmp_path) -> subprocess.CompletedProcess:
    """`healthcheck` with these settings: it loads them as the server does, then probes a port
    nothing listens on, so 1 means accepted and 2 refused (one line on stderr)."""
    full = {"PATH": "/usr/bin:/bin", "APP__HTTP__ADDR": f"127.0.0.1:{free_port()}", **env}
    return subprocess.run([SERVER_BIN, "healthcheck"], env=full, capture_output=True, text=True,
                          timeout=30, cwd=tmp_path)


@pytest.fixture
def secret_settings(tmp_path):
    """Skips unless the binary knows tools.weather.api_key and tools.weather.base_url."""
    probe = check_settings({KEY_VAR: MARKER, BASE_URL_VAR: "http://127.0.0.1:9"}, tmp_path)
    if probe.returncode == 2 and "is not a known key" in probe.stderr:
        pytest.skip(f"the binary has no secret setting to check yet: {probe.stderr.strip()}")
    assert probe.returncode == 1, probe.stderr
    assert MARKER not in probe.stdout + probe.stderr


def minimal_arguments(schema: dict) -> dict:
    """A value of the right type for each required argument of a tool's input schema."""
    samples = {"string": "Berlin", "integer": 1, "number": 1, "boolean": False, "array": [], "object": {}}
    properties = schema.get("properties", {})
    return {name: (properties[name].get("enum") or [samples.get(properties[name].get("type"), "x")])[0]
            for name in schema.get("required", [])}


def test_a_secret_never_reaches_logs_the_access_line_or_spans(tmp_path, secret_settings):
    downstream = Downstream()
    try:
        with running_receiver(tmp_path) as receiver:
            server = start_server(tmp_path, {
                KEY_VAR: MARKER, BASE_URL_VAR: downstream.url,
                "APP__LOG__FORMAT": "json", "APP__LOG__LEVEL": "debug",
                "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.http_endpoint,
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", "OTEL_TRACES_SAMPLER": "always_on"})
            try:
                [tool] = [t for t in list_tools(server.url) if t["name"] == TOOL]
                arguments = minimal_arguments(tool.get("inputSchema", {}))
                answered = call_tool(server.url, TOOL, arguments, headers={"x-request-id": "secret-1"})
                assert answered.status_code == 200, answered.text
                # The tool really sent the key downstream, so its absence below means something.
                assert any(MARKER in r for r in downstream.received), downstream.received
                downstream.stop()
                failed = call_tool(server.url, TOOL, arguments, headers={"x-request-id": "secret-2"})
                assert failed.status_code == 200, failed.text
                assert MARKER not in answered.text + failed.text
            finally:
                exit_code = server.stop()  # flushes the spans
            assert exit_code == 0
            receiver.wait_for(lambda s: s.name == f"tools/call {TOOL}", f"the {TOOL} call's span")
            spans = receiver.out.read_text(errors="replace")
    finally:
        downstream.stop()
    log = server.log()
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    access = [line for line in lines if line.get("message") == "request"]
    assert {line.get("request_id") for line in access} >= {"secret-1", "secret-2"}, access
    assert any(line.get("level", "").upper() == "DEBUG" for line in lines), "debug lines were written"
    assert MARKER not in log, [line for line in log.splitlines() if MARKER in line]
    assert MARKER not in spans, [line for line in spans.splitlines() if MARKER in line]


def test_a_secret_of_the_wrong_shape_is_refused_without_its_value(tmp_path, secret_settings):
    config = tmp_path / "settings.toml"
    for value, shown in ((f'["{MARKER}"]', None), ('""', "<redacted>")):
        config.write_text(f"[tools.weather]\napi_key = {value}\n")
        proc = check_settings({"APP_CONFIG_FILE": str(config)}, tmp_path)
        assert proc.returncode == 2, proc.stderr
        [line] = proc.stderr.splitlines()
        assert line.startswith(f"invalid configuration: {KEY_VAR} "), line
        assert MARKER not in proc.stdout + proc.stderr
        assert shown is None or shown in line, line


def test_a_misspelt_secret_is_refused_without_its_value(tmp_path):
    # Runs on any binary: an unknown tools key never echoes what it was set to.
    proc = check_settings({"APP__TOOLS__WEATHER__APIKEY": MARKER}, tmp_path)
    assert proc.returncode == 2 and "is not a known key" in proc.stderr, proc.stderr
    assert MARKER not in proc.stdout + proc.stderr
