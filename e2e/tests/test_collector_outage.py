"""The collector sidecar dying costs the service nothing: the real collector on ecs.yaml (the task
of e2e/ecs_sidecar.py) is killed in the middle of a run of calls; the calls keep their latency and
their answers, the service stays ready, and the spans it can no longer send are dropped and
counted, not queued behind requests."""
import statistics
import time

import requests

from ecs_sidecar import app_env, running_sidecar
from mcp_http import call_tool
from otelcol import wait_until
from support import free_port, start_server

CALLS = 300


def timed_calls(url: str, session: requests.Session, n: int) -> list[float]:
    took = []
    for _ in range(n):
        started = time.monotonic()
        resp = call_tool(url, "ping", session=session, timeout=5)
        took.append(time.monotonic() - started)
        assert resp.status_code == 200 and "error" not in resp.json(), resp.text
    return took


def dropped_spans(metrics_url: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in requests.get(metrics_url, timeout=5).text.splitlines()
               if line.startswith("otel_spans_dropped_total"))


def test_collector_killed_mid_run_costs_the_service_nothing(tmp_path):
    with running_sidecar(tmp_path) as (metadata, _, _, collector):
        # Its own admin port: the scrape is not what this is about, and the suite's task
        # (e2e/ecs_sidecar.py) may hold 127.0.0.1:9464.
        server = start_server(tmp_path, app_env(metadata, collector, APP__ADMIN__ADDR=f"127.0.0.1:{free_port()}"))
        try:
            session = requests.Session()
            before = timed_calls(server.url, session, CALLS)
            collector.proc.kill()
            collector.proc.wait()
            after = timed_calls(server.url, session, CALLS)
            # The exporter's own timeouts are seconds long: one request waiting on it shows here.
            assert max(after) < 1.0, f"slowest call after the kill: {max(after):.3f} s"
            assert statistics.median(after) < 2 * statistics.median(before) + 0.01, \
                (statistics.median(before), statistics.median(after))
            assert requests.get(f"{server.base}/readyz", timeout=2).status_code == 200
            wait_until(lambda: dropped_spans(server.metrics_url) > 0,
                       "spans the dead collector cannot take dropped and counted", timeout=30)
            timed_calls(server.url, session, 20)
            assert server.proc.poll() is None
        finally:
            assert server.stop() == 0
