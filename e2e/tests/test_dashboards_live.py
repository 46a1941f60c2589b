"""Every dashboard panel and alert rule against live data, from two sources:
  scraped        the real service, a real Prometheus scraping it every second with the alert
                 rules loaded, and scripts/load.py (what `just load` runs) as traffic;
  remote-written what Amazon Managed Prometheus holds: the same Prometheus fed only by the real
                 collector on the shipped otel-collector/ecs.yaml (e2e/ecs_sidecar.py), which adds
                 the task ARN as `instance` and the otel_scope_* labels.
A panel naming a metric or label the service does not emit, or that the collector changes, fails.

What Prometheus returned is written to e2e/.results/dashboards-live-<source>.json."""
import json
import subprocess
import sys

import pytest

import dash_promql as dp
from dash_prometheus import finite, running_prometheus
from ecs_sidecar import run_load
from support import ROOT, SERVICE_NAME, start_server
from weather_api import running_weather_api

# Windows that cover the whole load run: scraped, it ends seconds before the queries; remote-written,
# up to a 15 s scrape plus a 30 s metrics batch before.
RATE_INTERVAL = {"scraped": "1m", "remote-written": "3m"}


@pytest.fixture(scope="module", params=["scraped", "remote-written"])
def live(request, tmp_path_factory):
    if request.param == "remote-written":
        task = request.getfixturevalue("ecs_task")
        # Other suites run between the task's own load and these queries: a fresh load keeps
        # the rate windows covered, however long that took.
        calls = f'sum(mcp_server_operation_duration_seconds_count{{job="{SERVICE_NAME}"}})'
        before = float(task.amp.query(calls)[0]["value"][1])
        load = run_load(task.server.url, 4)
        task.amp.wait_for(f"{calls} >= {before + load['requests']}", "the fresh load remote-written",
                          timeout=90)
        record = {"load": load}
        yield task.amp, record, RATE_INTERVAL[request.param]
        write_results(request.param, record)
        return
    tmp = tmp_path_factory.mktemp("dash-live")
    # A little simulated work in ping, so latency panels show more than the first bucket; the
    # example weather tool's API, so the downstream panels have calls.
    with running_weather_api() as weather:
        server = start_server(tmp, {"APP__TOOLS__PING__DELAY_MS": "20", **weather.env()})
        try:
            with running_prometheus(tmp, [f"127.0.0.1:{server.admin_port}"], dp.rule_files()) as prom:
                prom.wait_for(f'up{{job="{dp.JOB}"}} == 1', "the service's metrics scraped")
                load = subprocess.run(
                    [sys.executable, str(ROOT / "scripts/load.py"), "--url", server.url,
                     "--duration", "4", "--concurrency", "2", "--json"],
                    capture_output=True, text=True, timeout=60)
                assert load.returncode == 0, load.stdout + load.stderr
                summary = json.loads(load.stdout)
                prom.wait_for(f'sum(mcp_server_operation_duration_seconds_count{{job="{dp.JOB}"}}) '
                              f'>= {summary["requests"]}', "every MCP call of the load scraped")
                record = {"load": summary}
                yield prom, record, RATE_INTERVAL[request.param]
                write_results(request.param, record)
        finally:
            server.stop(9)


def write_results(source: str, record: dict):
    path = ROOT / f"e2e/.results/dashboards-live-{source}.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(record, indent=2))


def test_every_panel_query_returns_data(live, listed_tools):
    prom, record, rate_interval = live
    queries = dp.panel_queries(dp.load_dashboard(), rate_interval)
    if "weather" not in listed_tools:
        # Without the example tools nothing calls downstream: those panels stay empty by design.
        queries = [q for q in queries if "http_client_request_duration_seconds" not in q.expr]
    if "report" not in listed_tools:
        # Nor does any tool run as a task: the task panels stay empty.
        queries = [q for q in queries if "mcp_server_task" not in q.expr]
    # Rates need two samples in their window and SLO panels the recording rules: the wait is the
    # check, and it fails naming the panels without data.
    results = prom.wait_for_each({q.name: q.expr for q in queries}, "panels without data")
    record["panels"] = {q.name: {"expr": q.expr, "result": results[q.name]} for q in queries}
    print(f"{len(queries)} panel queries returned data")


def test_recording_rules_return_data(live):
    prom, record, _ = live
    records = [q for q in dp.rule_queries() if q.kind == "record"]
    # The wait is the check: each rule's first sample comes at an evaluation over enough data, and
    # it fails naming the rules that wrote none.
    record["records"] = prom.wait_for_each({q.name: f'{q.name}{{job="{dp.JOB}"}}' for q in records},
                                           "recording rules without data")


def test_every_selector_and_label_exists_in_what_the_service_emits(live):
    prom, _, rate_interval = live
    queries = dp.panel_queries(dp.load_dashboard(), rate_interval) + dp.rule_queries()
    problems = [f"{q.name}: {p}" for q in queries for p in dp.unmatched(prom.query, q.expr)]
    assert not problems, "\n".join(problems)


def test_alerts_evaluate_cleanly_and_none_fires_under_healthy_load(live):
    prom, record, _ = live
    rules = prom.wait_for_rules_evaluated()
    assert {r["name"] for r in rules if r["type"] == "alerting"} == \
        {q.name for q in dp.rule_queries() if q.kind == "alert"}
    assert [r["name"] for r in rules if r["health"] != "ok"] == [], rules
    assert [r["name"] for r in rules if r["type"] == "alerting" and r["state"] != "inactive"] == []
    alerts = [q for q in dp.rule_queries() if q.kind == "alert"]
    record["alerts"] = {q.name: prom.query(q.expr) for q in alerts}
    assert {n: r for n, r in record["alerts"].items() if r} == {}
    print(f"{len(alerts)} alert expressions evaluated, none active")


def test_checks_fail_for_a_metric_or_label_the_service_does_not_emit(live):
    prom, _, rate_interval = live
    real = next(q for q in dp.panel_queries(dp.load_dashboard(), rate_interval)
                if "gen_ai_tool_name" in q.expr and "_count" in q.expr)
    misnamed = real.expr.replace("mcp_server_operation_duration_seconds_count",
                                 "mcp_server_operation_duration_seconds_total")
    assert not finite(prom.query(misnamed))
    assert any("no series match mcp_server_operation_duration_seconds_total" in p
               for p in dp.unmatched(prom.query, misnamed))
    mislabelled = real.expr.replace("gen_ai_tool_name", "gen_ai_tool")
    assert any("gen_ai_tool" in p for p in dp.unmatched(prom.query, mislabelled))
