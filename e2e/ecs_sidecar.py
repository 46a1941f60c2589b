"""One ECS task on loopback, as Terraform deploys it: the real collector on the very
otel-collector/ecs.yaml (only what ECS supplies is set: region, credentials, the remote-write URL,
the metadata endpoint, and the AWS endpoints, which point at the stand-ins), the release service
with the task definition's telemetry environment, a fake task metadata endpoint for both,
Debian's Prometheus taking the sigv4-signed remote writes in place of Amazon Managed Prometheus
(with the alert rules loaded, as AMP's ruler has them), and moto recording X-Ray's
PutTraceSegments.

The service's admin listener is on 127.0.0.1:9464, the target ecs.yaml scrapes.
"""
from __future__ import annotations

import contextlib
import json
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

import dash_promql as dp
from dash_prometheus import PromAPI, running_prometheus
from ecs_metadata import APP, COLLECTOR, TaskMetadata
from mcp_http import HEADERS, LEGACY, tool_names
from otelcol import (AWS_ENV, ECS_CONFIG, Collector, XRay, running_collector, running_xray, wait_until,
                     xray_trace_id)
from support import ROOT, SERVICE_NAME, Server, start_server
from weather_api import WeatherApi, running_weather_api

ADMIN_ADDR = "127.0.0.1:9464"  # the scrape target in ecs.yaml
# Traced calls whose trace ids the test chooses: (method, params).
TRACED = [("tools/call", {"name": "ping", "arguments": {}}),
          ("tools/call", {"name": "echo", "arguments": {"text": "hi"}}),
          ("tools/list", {})]
# The example tool with a downstream call (traced when the service lists it).
WEATHER_CALL = ("tools/call", {"name": "weather", "arguments": {"city": "Paris"}})


@dataclass
class EcsTask:
    metadata: TaskMetadata
    amp: PromAPI
    xray: XRay
    collector: Collector
    server: Server
    load: dict
    # The weather API the example tool calls (its received traceparents).
    weather_api: WeatherApi | None = None
    # W3C trace id -> the (method, params) of the traced call sent under it.
    traced: dict[str, tuple[str, dict]] = field(default_factory=dict)
    probe_trace_ids: list[str] = field(default_factory=list)
    # What X-Ray held after the first health probes, once the first traced call had reached it
    # (spans leave in order): any trace but that call's came from a probe.
    traces_before_first_call: set[str] = field(default_factory=set)


def collector_env(metadata: TaskMetadata, amp: PromAPI) -> dict:
    """The collector container's environment in the task definition, plus the task role's
    credentials ECS hands the SDK; no EC2 instance metadata exists on Fargate."""
    return {**AWS_ENV, "AWS_EC2_METADATA_DISABLED": "true",
            "AMP_REMOTE_WRITE_URL": f"{amp.url}/api/v1/write",
            "ECS_CONTAINER_METADATA_URI_V4": metadata.base_url(COLLECTOR)}


def app_env(metadata: TaskMetadata, collector: Collector, **extra: str) -> dict:
    """The app container's telemetry environment in the task definition (infra/ecs.tf)."""
    return {"APP__ADMIN__ADDR": ADMIN_ADDR, "APP__LOG__FORMAT": "json",
            "OTEL_SERVICE_NAME": SERVICE_NAME,
            "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=e2e",
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{collector.otlp_http}",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "ECS_CONTAINER_METADATA_URI_V4": metadata.base_url(APP), **extra}


def admin_port_free():
    host, port = ADMIN_ADDR.rsplit(":", 1)
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, int(port)))
        except OSError:
            raise AssertionError(f"{ADMIN_ADDR}, the admin port ecs.yaml scrapes, is taken "
                                 "(is a `just dev` running?)") from None


def traced_call(url: str, method: str, params: dict) -> str:
    """One MCP call under a trace id of our choosing (a current epoch first, as X-Ray ids have)."""
    trace_id = f"{int(time.time()):08x}{secrets.token_hex(12)}"
    resp = requests.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params},
                         headers={**HEADERS, "MCP-Protocol-Version": LEGACY,
                                  "traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"},
                         timeout=10)
    assert resp.status_code == 200 and "error" not in resp.json(), resp.text
    return trace_id


def probe(base: str) -> list[str]:
    """The ALB's and ECS's health checks, as they come (no trace context) and with one: a span of
    the latter would land in X-Ray under the returned trace ids."""
    ids = []
    for path in ("/livez", "/readyz") * 3:
        trace_id = f"{int(time.time()):08x}{secrets.token_hex(12)}"
        for headers in ({}, {"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"}):
            resp = requests.get(f"{base}{path}", timeout=5, headers=headers)
            assert resp.status_code == 200, (path, resp.status_code)
        ids.append(trace_id)
    return ids


def run_load(url: str, duration: float) -> dict:
    load = subprocess.run([sys.executable, str(ROOT / "scripts/load.py"), "--url", url,
                           "--duration", str(duration), "--concurrency", "2", "--json"],
                          capture_output=True, text=True, timeout=duration + 60)
    assert load.returncode == 0, load.stdout + load.stderr
    return json.loads(load.stdout)


@contextlib.contextmanager
def running_sidecar(tmp_path: Path):
    """The task metadata, AMP and X-Ray stand-ins and the collector, before the app starts:
    yields (metadata, amp, xray, collector)."""
    with TaskMetadata() as metadata, \
            running_prometheus(tmp_path, [], dp.rule_files()) as amp, \
            running_xray(tmp_path) as xray, \
            running_collector(tmp_path, ECS_CONFIG, collector_env(metadata, amp),
                              {"exporters.awsxray.endpoint": xray.url}) as collector:
        # ECS starts the app once the collector is healthy (dependsOn).
        metadata.app_running()
        yield metadata, amp, xray, collector


@contextlib.contextmanager
def running_ecs_task(tmp_path: Path, load_seconds: float = 20):
    """The task, after a little mixed load (`scripts/load.py`), traced calls and health probes,
    once every MCP call has reached AMP and every traced call X-Ray."""
    admin_port_free()
    with running_sidecar(tmp_path) as (metadata, amp, xray, collector), running_weather_api() as api:
        server = start_server(tmp_path, app_env(metadata, collector, APP__TOOLS__PING__DELAY_MS="20",
                                                **api.env()))
        try:
            task = EcsTask(metadata, amp, xray, collector, server, load={}, weather_api=api)
            task.probe_trace_ids += probe(server.base)
            for method, params in TRACED:
                task.traced[traced_call(server.url, method, params)] = (method, params)
                if len(task.traced) == 1:
                    first = xray_trace_id(next(iter(task.traced)))
                    wait_until(lambda: first in xray.trace_ids(), "the first traced call in X-Ray")
                    task.traces_before_first_call = xray.trace_ids() - {first}
            # After the first call's snapshot: tools/list makes a trace of its own.
            if "weather" in tool_names(server.url):
                task.traced[traced_call(server.url, *WEATHER_CALL)] = WEATHER_CALL
            task.load = run_load(server.url, load_seconds)
            task.probe_trace_ids += probe(server.base)
            calls = task.load["requests"] + len(task.traced) + 1
            # ecs.yaml scrapes every 15 s and sends metrics in 30 s batches.
            amp.wait_for(f'sum(mcp_server_operation_duration_seconds_count{{job="{SERVICE_NAME}"}}) >= {calls}',
                         "every MCP call of the load remote-written", timeout=90)
            wanted = [xray_trace_id(t) for t in task.traced]
            with contextlib.suppress(AssertionError):  # the tests tell which are missing
                wait_until(lambda: len(xray.traces(wanted)) == len(wanted), "the traced calls in X-Ray")
            yield task
        finally:
            server.stop(9)
