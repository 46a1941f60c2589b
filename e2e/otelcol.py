"""The real OpenTelemetry Collector (built by scripts/bootstrap.sh from otel-collector/otelcol) and
the AWS stand-ins around it: an X-Ray API (moto in server mode) that keeps every segment document
the exporter sent, as sent.
"""
from __future__ import annotations

import contextlib
import datetime
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import boto3
import requests

from support import ROOT, free_port, stop_process

OTELCOL_BIN = os.environ.get("MCP_OTELCOL_BIN",
                             str(Path.home() / ".cache/mcp-platform/otelcol/otelcol-mcp"))
ECS_CONFIG = ROOT / "otel-collector/ecs.yaml"
LOCAL_CONFIG = ROOT / "otel-collector/local.yaml"
# What a task's environment gives the SDKs: a region and (from the task role) credentials.
AWS_ENV = {"AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE",
           "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}


def wait_until(check, what: str, timeout: float = 20, interval: float = 0.25):
    """Polls `check` until it returns something truthy, which it returns."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(interval)


def _wait_http(proc: subprocess.Popen, url: str, log: Path, what: str, timeout: float = 30):
    def up():
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited ({proc.returncode}):\n{log.read_text(errors='replace')}")
        with contextlib.suppress(requests.RequestException):
            return requests.get(url, timeout=1).status_code == 200
        return False
    wait_until(up, f"{what} answering {url}", timeout)


@dataclass
class Collector:
    proc: subprocess.Popen
    log_path: Path
    otlp_http: str  # host:port
    health: str  # URL

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextlib.contextmanager
def running_collector(tmp_path: Path, config: Path, env: dict, sets: dict[str, str]):
    """Runs the collector on `config` with `--set` overrides for what the deployment supplies.
    Its OTLP HTTP receiver and health check move to free ports (`otlp_http`, `health`), and its
    own metrics listener (:8888 by default) is off, so runs never collide on this machine."""
    if not os.access(OTELCOL_BIN, os.X_OK):
        raise AssertionError(f"no collector at {OTELCOL_BIN}: scripts/bootstrap.sh builds it (needs Go)")
    otlp_http, otlp_grpc, health = (f"127.0.0.1:{free_port()}" for _ in range(3))
    sets = {"receivers.otlp.protocols.http.endpoint": otlp_http,
            "receivers.otlp.protocols.grpc.endpoint": otlp_grpc,
            "extensions.health_check.endpoint": health,
            "service.telemetry.metrics.level": "none", **sets}
    args = [OTELCOL_BIN, f"--config=file:{config}", *(f"--set={k}={v}" for k, v in sets.items())]
    log_path = tmp_path / f"otelcol-{config.stem}.log"
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ECS_", "OTEL_"))}
    full_env.update(env)
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(args, env=full_env, stdout=log, stderr=subprocess.STDOUT)
    collector = Collector(proc, log_path, otlp_http, f"http://{health}/")
    try:
        _wait_http(proc, collector.health, log_path, "the collector")
        yield collector
    finally:
        stop_process(proc, timeout=10)


class XRay:
    """The X-Ray API as moto records it: `traces()` gives back the segment documents of the given
    traces exactly as the exporter's PutTraceSegments wrote them."""

    def __init__(self, url: str):
        self.url = url
        self.client = boto3.client("xray", endpoint_url=url, region_name=AWS_ENV["AWS_REGION"],
                                   aws_access_key_id=AWS_ENV["AWS_ACCESS_KEY_ID"],
                                   aws_secret_access_key=AWS_ENV["AWS_SECRET_ACCESS_KEY"])

    def trace_ids(self) -> set[str]:
        """Every trace X-Ray holds (GetTraceSummaries over the last hour)."""
        now = datetime.datetime.now(datetime.timezone.utc)
        pages = self.client.get_paginator("get_trace_summaries").paginate(
            StartTime=now - datetime.timedelta(hours=1), EndTime=now + datetime.timedelta(minutes=5))
        return {t["Id"] for page in pages for t in page["TraceSummaries"]}

    def traces(self, xray_trace_ids: list[str]) -> dict[str, list[dict]]:
        """X-Ray trace id -> its segment documents (parsed), for the traces X-Ray has."""
        out = {}
        for i in range(0, len(xray_trace_ids), 5):  # BatchGetTraces takes at most 5 ids
            for trace in self.client.batch_get_traces(TraceIds=xray_trace_ids[i:i + 5])["Traces"]:
                out[trace["Id"]] = [json.loads(s["Document"]) for s in trace["Segments"]]
        return out


def xray_trace_id(w3c_trace_id: str) -> str:
    """The X-Ray form of a W3C trace id: 1-{first 8 hex digits}-{the other 24}."""
    return f"1-{w3c_trace_id[:8]}-{w3c_trace_id[8:]}"


@contextlib.contextmanager
def running_xray(tmp_path: Path):
    """moto's server on a free loopback port, standing in for the X-Ray API endpoint."""
    port = free_port()
    log_path = tmp_path / "moto.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1",
                                 "-p", str(port)], stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_http(proc, f"{url}/moto-api/", log_path, "moto")
        yield XRay(url)
    finally:
        stop_process(proc, timeout=10)
