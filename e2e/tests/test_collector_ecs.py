"""What Amazon Managed Prometheus and X-Ray receive from a task, through the real collector on the
shipped otel-collector/ecs.yaml (the stand-ins and the task are in e2e/ecs_sidecar.py).

What they received is written to e2e/.results/collector-ecs.json: every series name with its label
names and values (one series each), target_info, and every X-Ray document of the traced calls."""
import json
import random
import re

import pytest
import yaml

import dash_promql as dp
from ecs_metadata import LOG_GROUP, TASK_ARN
from otelcol import xray_trace_id
from support import ROOT, SERVICE_NAME

RESULTS = ROOT / "e2e/.results/collector-ecs.json"
# The labels every series the collector remote-writes carries: the resource's identity (job from
# service.name = the scrape job, instance from service.instance.id = the task ARN) and the
# instrumentation scope (the prometheus receiver).
IDENTITY = {"job", "instance", "otel_scope_name", "otel_scope_version"}
DOCS = [ROOT / "README.md", ROOT / "infra/README.md", ROOT / "otel-collector/README.md",
        ROOT / "dashboards/README.md"]


def series(amp, selector: str) -> list[dict]:
    return amp.get("/api/v1/series", **{"match[]": selector})


def service_series(amp) -> list[dict]:
    """The remote-written series of the service (not target_info, nor what the rules write)."""
    return [s for s in series(amp, f'{{job="{SERVICE_NAME}"}}')
            if s["__name__"] not in ("target_info", "ALERTS", "ALERTS_FOR_STATE") and ":" not in s["__name__"]]


def record(key: str, value):
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    data[key] = value
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(data, indent=2, sort_keys=True))


def test_amp_gets_every_series_under_the_task_arn_with_job_and_scope(ecs_task):
    amp = ecs_task.amp
    got = service_series(amp)
    one_each = {}
    for s in got:
        one_each.setdefault(s["__name__"], s)
    record("amp_series", one_each)
    record("load", ecs_task.load)
    for name in ("http_server_request_duration_seconds_bucket", "mcp_server_operation_duration_seconds_count",
                 "up", "process_resident_memory_bytes"):
        assert name in one_each, f"{name} not remote-written: {sorted(one_each)}"
    wrong = [s for s in got if not IDENTITY <= set(s) or s["instance"] != TASK_ARN]
    assert not wrong, wrong[:3]
    assert {s["otel_scope_name"] for s in got} == \
        {"github.com/open-telemetry/opentelemetry-collector-contrib/receiver/prometheusreceiver"}


def test_target_info_holds_the_task_resource(ecs_task):
    info = series(ecs_task.amp, f'target_info{{job="{SERVICE_NAME}"}}')
    record("target_info", info)
    assert len(info) == 1, info
    labels = info[0]
    assert labels["instance"] == TASK_ARN
    # From the collector's ECS resource detection (the service's own resource goes to traces).
    assert labels["aws_ecs_task_arn"] == TASK_ARN
    assert labels["cloud_platform"] == "aws_ecs" and labels["cloud_region"] == "eu-west-1"
    assert labels["aws_ecs_launchtype"] == "fargate"


# --- X-Ray -------------------------------------------------------------------------------------
def documents(ecs_task) -> dict[str, list[dict]]:
    """W3C trace id of each traced call -> the X-Ray documents of its trace."""
    got = ecs_task.xray.traces([xray_trace_id(t) for t in ecs_task.traced])
    docs = {t: got.get(xray_trace_id(t), []) for t in ecs_task.traced}
    record("xray_documents", docs)
    return docs


def is_segment(doc: dict) -> bool:
    return doc.get("type") != "subsegment"


def mcp_document(docs: list[dict]) -> dict:
    """The document of the MCP span: the one carrying the MCP method annotation."""
    found = [d for d in docs if any(k.startswith("mcp") for k in d.get("annotations", {}))]
    assert len(found) == 1, docs
    return found[0]


def documented_filter_keys() -> set[str]:
    """Annotation keys the docs tell users to filter X-Ray traces by (`annotation.KEY`)."""
    return {k for doc in DOCS for k in re.findall(r"annotation\.([A-Za-z0-9_.]*[A-Za-z0-9])", doc.read_text())}


def test_every_traced_call_reaches_xray(ecs_task):
    docs = documents(ecs_task)
    assert all(docs.values()), {t: len(d) for t, d in docs.items()}


def test_segments_carry_the_mcp_attributes_under_the_documented_filter_keys(ecs_task):
    seen = set()
    for trace_id, docs in documents(ecs_task).items():
        method, params = ecs_task.traced[trace_id]
        annotations = mcp_document(docs)["annotations"]
        assert annotations["mcp.method.name"] == method, annotations
        if method == "tools/call":
            assert annotations["gen_ai.tool.name"] == params["name"], annotations
        seen |= set(annotations)
    # The docs name exactly the keys the segments carry: a stale spelling there fails too.
    assert documented_filter_keys() == seen == {"mcp.method.name", "gen_ai.tool.name"}


def test_one_segment_per_request(ecs_task):
    """The traced calls and a sample of the load's requests (each its own trace)."""
    every = sorted(ecs_task.xray.trace_ids())
    sample = random.Random(7).sample(every, min(40, len(every)))
    docs = {**ecs_task.xray.traces(sample), **documents(ecs_task)}
    segments = {t: [(d["name"], d.get("http", {}).get("request", {}).get("method")) for d in trace if is_segment(d)]
                for t, trace in docs.items()}
    assert all(len(s) == 1 for s in segments.values()), segments


def test_a_downstream_call_is_one_remote_subsegment_under_the_tool_and_the_api_got_the_trace(ecs_task):
    weather = [t for t, (_, params) in ecs_task.traced.items() if params.get("name") == "weather"]
    if not weather:
        pytest.skip("the service does not list the example tool weather (generated without it)")
    trace_id = weather[0]
    docs = documents(ecs_task)[trace_id]
    record("weather_trace", docs)
    segment = mcp_document(docs)
    assert is_segment(segment) and segment["name"], segment
    by_id = {d["id"]: d for d in docs}
    remote = [d for d in docs if d.get("namespace") == "remote"]
    assert len(remote) == 1, docs
    call = remote[0]
    assert call["name"] == "127.0.0.1", "X-Ray draws the downstream by its host (peer.service)"
    assert call["http"]["request"]["method"] == "GET", call
    assert call["http"]["request"]["url"].startswith(ecs_task.weather_api.url + "v1/current?city="), call
    assert "REDACTED" in call["http"]["request"]["url"], "query values never reach a span"
    assert call["http"]["response"]["status"] == 200, call
    # The remote call hangs under the tool's own span, which hangs under the MCP segment.
    tool_span = by_id[call["parent_id"]]
    assert tool_span["name"] == "weather.current", tool_span
    assert tool_span["parent_id"] == segment["id"], (tool_span, segment)
    w3c = [tp for tp in ecs_task.weather_api.traceparents if tp.split("-")[1:2] == [trace_id]]
    assert w3c and w3c[0].split("-")[2] == call["id"], (ecs_task.weather_api.traceparents, call["id"])


def test_amp_gets_the_downstream_histogram_with_bounded_labels(ecs_task):
    if not any(p.get("name") == "weather" for _, p in ecs_task.traced.values()):
        pytest.skip("the service does not list the example tool weather (generated without it)")
    got = series(ecs_task.amp, f'http_client_request_duration_seconds_count{{job="{SERVICE_NAME}"}}')
    assert got, "the tool's downstream calls are measured"
    labels = {k for s in got for k in s} - IDENTITY - {"__name__"}
    assert labels <= {"server_address", "http_request_method", "http_response_status_code", "error_type"}, labels
    assert {s["server_address"] for s in got} == {"127.0.0.1"}, got


def test_segments_link_to_the_log_group(ecs_task):
    for docs in documents(ecs_task).values():
        segment = next(d for d in docs if is_segment(d))
        logs = segment.get("aws", {}).get("cloudwatch_logs", [])
        assert {"log_group": LOG_GROUP} in [{"log_group": l.get("log_group")} for l in logs], segment


def test_health_probes_make_no_traces(ecs_task):
    assert ecs_task.traces_before_first_call == set()
    got = ecs_task.xray.traces([xray_trace_id(t) for t in ecs_task.probe_trace_ids])
    assert got == {}, got


# --- The alert unit tests' fixtures -------------------------------------------------------------
def fixture_series() -> list[tuple[str, str, dict]]:
    """(file, metric name, labels) of every input series of the alert rules' unit tests."""
    out = []
    for path in sorted(dp.ALERTS_DIR.glob("*.test.yaml")):
        for test in yaml.safe_load(path.read_text())["tests"]:
            for s in test.get("input_series", []):
                name, _, body = s["series"].partition("{")
                labels = dict(re.findall(r'(\w+)="([^"]*)"', body))
                out.append((path.name, name, labels))
    return out


def test_alert_fixtures_carry_the_label_set_amp_gets(ecs_task):
    got = service_series(ecs_task.amp)
    names_by_metric: dict[str, set[frozenset]] = {}
    for s in got:
        names_by_metric.setdefault(s["__name__"], set()).add(frozenset(set(s) - {"__name__", "error_type"}))
    problems = []
    for file, name, labels in fixture_series():
        shape = frozenset(set(labels) - {"error_type"})
        if name in names_by_metric and shape not in names_by_metric[name]:
            problems.append(f"{file}: {name} {sorted(shape)} is none of {[sorted(n) for n in names_by_metric[name]]}")
        if not IDENTITY <= set(labels) or not re.fullmatch(r"arn:aws:ecs:[^:]+:\d{12}:task/.+", labels["instance"]):
            problems.append(f"{file}: {name} {labels} lacks the identity AMP gives (instance = task ARN)")
    assert not problems, "\n".join(problems)
