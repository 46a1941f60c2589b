#!/usr/bin/env python3
"""Writes the Grafana dashboard and the Prometheus rules of the service from one description.

    just dashboards            # rewrite grafana/<service>.json and alerts/<service>.rules.yaml
    generate.py --check        # exit 1 when the committed files differ from what this writes

The SLO targets are set here and nowhere else (the `SLO` block below): the recording rules, the
burn-rate alerts and the dashboard thresholds all derive from them. Edit this file rather than
the generated ones; a test fails when they drift apart.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

# The service's name, the dashboards' one source of it: the Prometheus scrape job
# (otel-collector/*.yaml use the same), the dashboard's uid and title, the alert names and the
# output files. `cargo generate` writes a new service's name here.
# {% capture identity %}
SERVICE = "mcp-server"
WITH_LIQUID_TAGS = True  # only the template's outputs need them
# {% endcapture %}{{ identity | replace: "mcp-server", project-name | replace: "WITH_LIQUID_TAGS = True", "WITH_LIQUID_TAGS = False" }}{% raw %} (the rest is not rendered)
JOB = SERVICE
ALERT_PREFIX = "".join(word.capitalize() for word in SERVICE.split("-"))  # McpServer...

HERE = Path(__file__).resolve().parent
DASHBOARD_PATH = HERE / "grafana" / f"{SERVICE}.json"
RULES_PATH = HERE / "alerts" / f"{SERVICE}.rules.yaml"
RUNBOOK = "dashboards/README.md"

# --- SLO targets: the one place they are defined --------------------------------------------
SLO = {
    # Share of `POST /mcp` requests not answered with a 5xx, over 30 days.
    "availability": 0.999,
    # Share of `POST /mcp` requests answered within LATENCY_THRESHOLD_S, over 30 days.
    "latency": 0.99,
}
LATENCY_THRESHOLD_S = "0.5"  # must be a bucket bound of http_server_request_duration_seconds
HTTP_BUCKETS = ("0.005", "0.01", "0.025", "0.05", "0.075", "0.1", "0.25", "0.5", "0.75", "1",
                "2.5", "5", "7.5", "10")
# Multi-window, multi-burn-rate (Google SRE workbook, ch. 5): (name, burn rate, long window,
# short window, for, severity). 14.4x spends 2% of a 30-day budget in 1 h; 6x spends 5% in 6 h.
BURN_RATES = (
    ("FastBurn", 14.4, "1h", "5m", "2m", "critical"),
    ("SlowBurn", 6, "6h", "30m", "15m", "warning"),
)
SHED_RATIO = 0.01  # sustained share of requests refused with 503 before someone should look

HTTP = "http_server_request_duration_seconds"
MCP = "mcp_server_operation_duration_seconds"
CLIENT = "http_client_request_duration_seconds"
TASK = "mcp_server_task_duration_seconds"
TASKS = "mcp_server_tasks"
TASK_FAILURE_RATIO = 0.1  # sustained share of tasks ending failed before someone should look
TASKS_PILING_UP = 100  # tasks running at once across the service, for 15 minutes


def budget(slo: str) -> float:
    return round(1 - SLO[slo], 10)


def pct(share: float) -> str:
    return f"{share * 100:g}%"


def sli_record(slo: str, window: str) -> str:
    return f"job:mcp_server_{slo}_errors:ratio_rate{window}"


# --- Recording rules and alerts ----------------------------------------------------------------
def sli_expr(slo: str, window: str) -> str:
    """Share of bad `/mcp` requests as 1 - good/total, so a service with no errors records 0
    instead of no sample at all."""
    mcp = f'job="{JOB}", http_route="/mcp"'
    good = {
        "availability": f'{HTTP}_count{{{mcp}, http_response_status_code!~"5.."}}',
        "latency": f'{HTTP}_bucket{{{mcp}, le="{LATENCY_THRESHOLD_S}"}}',
    }[slo]
    return (f"1 - (\n  sum by (job) (rate({good}[{window}]))\n/\n"
            f"  sum by (job) (rate({HTTP}_count{{{mcp}}}[{window}]))\n)")


SLO_TEXT = {
    "availability": ("5xx answers on POST /mcp",
                     "Check the 5xx status mix: 503 shedding, 500 bugs, 504 timeouts."),
    "latency": (f"POST /mcp answers slower than {LATENCY_THRESHOLD_S}s",
                "Find the slow method or tool on the dashboard, then check CPU and in-flight "
                "requests per task."),
}


def burn_alerts(slo: str) -> list[dict]:
    what, check = SLO_TEXT[slo]
    rules = []
    for kind, burn, long_w, short_w, for_, severity in BURN_RATES:
        limit = f"({burn} * {budget(slo)})"
        alert = f"{slo.capitalize()}{kind}"
        rules.append({
            "alert": ALERT_PREFIX + alert,
            "expr": (f'{sli_record(slo, long_w)}{{job="{JOB}"}} > {limit}\nand\n'
                     f'{sli_record(slo, short_w)}{{job="{JOB}"}} > {limit}'),
            "for": for_,
            "labels": {"severity": severity, "slo": slo},
            "annotations": {
                "summary": (f"{{{{ $labels.job }}}}: {what} are spending the 30-day {slo} error "
                            f"budget {burn}x too fast ({{{{ $value | humanizePercentage }}}} of "
                            f"requests over the last {long_w})"),
                "description": (f"Both the {long_w} and {short_w} windows exceed {burn}x the "
                                f"{pct(budget(slo))} error budget of the {pct(SLO[slo])} SLO. {check}"),
                "runbook": f"{RUNBOOK}#{alert.lower()}",
            },
        })
    return rules


def alert(name: str, expr: str, for_: str, severity: str, summary: str, description: str) -> dict:
    return {"alert": ALERT_PREFIX + name, "expr": expr, "for": for_, "labels": {"severity": severity},
            "annotations": {"summary": summary, "description": description,
                            "runbook": f"{RUNBOOK}#{name.lower()}"}}


def rules() -> dict:
    seconds = {"m": 60, "h": 3600}
    windows = sorted({w for b in BURN_RATES for w in b[2:4]}, key=lambda w: int(w[:-1]) * seconds[w[-1]])
    records = [{"record": sli_record(slo, w), "expr": sli_expr(slo, w)}
               for slo in SLO for w in windows]
    task = "{{ $labels.instance }}"
    # Burn-rate alerts share the group of the records they read: rules in a group run in order,
    # so each alert sees the records of the same evaluation.
    burn = burn_alerts("availability") + burn_alerts("latency")
    alerts = [
        alert("LoadShedding",
              f'sum by (job, instance) (rate(http_server_shed_requests_total{{job="{JOB}"}}[5m]))\n/\n'
              f'sum by (job, instance) (rate({HTTP}_count{{job="{JOB}"}}[5m]))\n> {SHED_RATIO}',
              "10m", "warning",
              f"Task {task} refuses {{{{ $value | humanizePercentage }}}} of requests with 503 "
              "(over max in-flight)",
              "The task has been at APP__HTTP__MAX_IN_FLIGHT for 10 minutes. Check autoscaling "
              "limits, slow tools holding requests open, and CPU per task."),
        alert("SpansDropped",
              f'sum by (job, instance) (rate(otel_spans_dropped_total{{job="{JOB}"}}[10m])) > 0',
              "10m", "warning",
              f"Task {task} drops {{{{ $value | humanize }}}} spans/s: traces are incomplete",
              "The span export queue is full: the collector sidecar is slow, down or rejecting "
              "data. Check the collector's health and log group."),
        # Aggregated to the task: in AMP `up` also carries the collector's otel_scope_* labels,
        # whose version would otherwise change the alert's identity on every collector upgrade.
        alert("TargetDown",
              f'max by (job, instance) (up{{job="{JOB}"}}) == 0',
              "5m", "warning",
              f"Task {task} does not answer metric scrapes",
              "The collector cannot read 127.0.0.1:9464/metrics in this task: the process is hung "
              "or its admin listener is down. Check the app container's logs and health."),
        alert("MetricsAbsent",
              f'absent(up{{job="{JOB}"}})',
              "10m", "critical",
              "No task of the service reports metrics",
              "No task runs, or the collectors cannot write to Amazon Managed Prometheus. Check "
              "the ECS service's running count and events, then the collector log group."),
        alert("TasksFailing",
              f'1 - (\n  sum by (job) (rate({TASK}_count{{job="{JOB}", mcp_task_status!="failed"}}[15m]))\n/\n'
              f'  sum by (job) (rate({TASK}_count{{job="{JOB}"}}[15m]))\n) > {TASK_FAILURE_RATIO}',
              "15m", "warning",
              "{{ $value | humanizePercentage }} of the tasks (long-running tool calls) that ended failed",
              "Tasks end failed when their tool answers a JSON-RPC error, when they outlive "
              "APP__TASKS__TTL_MS, or when the replica running them shuts down before they finish "
              "(deployments, scale-in). Check the app's \"task ended\" log lines and the task "
              "store's errors."),
        alert("TasksPilingUp",
              f'sum by (job) ({TASKS}{{job="{JOB}"}}) > {TASKS_PILING_UP}',
              "15m", "warning",
              "{{ $value }} tasks (long-running tool calls) are running at once",
              "Tasks start faster than they end, or are stuck waiting for input. Check the task "
              "duration and status panels, the tools' downstream calls, and the clients that "
              "start them."),
        alert("NoTraffic",
              f'sum by (job) (rate({HTTP}_count{{job="{JOB}", http_route="/mcp"}}[15m])) == 0',
              "30m", "warning",
              "{{ $labels.job }} received no POST /mcp request for 45 minutes",
              "Tasks are up but no client reaches /mcp. Check the ALB's requests and healthy "
              "hosts on the CloudWatch dashboard, then DNS and the listener rules."),
    ]
    return {"groups": [{"name": f"{SERVICE}-slo", "rules": records + burn},
                       {"name": f"{SERVICE}-alerts", "rules": alerts}]}


# --- Grafana dashboard ---------------------------------------------------------------------------
DS = {"type": "prometheus", "uid": "${datasource}"}
SEL = f'job="$job", instance=~"$instance"'
RI = "$__rate_interval"

GREEN, YELLOW, RED = "green", "#EAB839", "red"


def steps(*pairs) -> dict:
    """Thresholds from (value, colour) pairs; the first step starts at -Infinity (null)."""
    return {"mode": "absolute",
            "steps": [{"color": c, "value": v} for v, c in ((None, GREEN), *pairs)]}


def target(expr: str, legend: str, ref: str = "A") -> dict:
    return {"datasource": DS, "expr": expr, "legendFormat": legend, "range": True, "refId": ref}


def panel(kind: str, title: str, description: str, targets: list[dict], unit: str,
          thresholds: dict, width: int = 8, no_value: str | None = None) -> dict:
    defaults = {"unit": unit, "thresholds": thresholds, "color": {"mode": "palette-classic"}}
    if kind == "stat":
        defaults["color"] = {"mode": "thresholds"}
        options = {"colorMode": "value", "graphMode": "area", "justifyMode": "auto",
                   "orientation": "auto", "percentChangeColorMode": "standard",
                   "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                   "showPercentChange": False, "textMode": "auto", "wideLayout": True}
    else:
        # Threshold lines only where the thresholds mean something (an SLO or a limit).
        shown = "line" if len(thresholds["steps"]) > 1 else "off"
        defaults["custom"] = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10,
                              "showPoints": "never", "spanNulls": False,
                              "thresholdsStyle": {"mode": shown}}
        options = {"legend": {"calcs": ["lastNotNull", "max"], "displayMode": "table",
                              "placement": "bottom", "showLegend": True},
                   "tooltip": {"mode": "multi", "sort": "desc"}}
    if no_value:
        defaults["noValue"] = no_value
    return {"type": kind, "title": title, "description": description, "datasource": DS,
            "targets": targets, "fieldConfig": {"defaults": defaults, "overrides": []},
            "options": options, "_width": width}


def quantiles(metric: str, matchers: str, by: str) -> list[dict]:
    """p50/p95/p99 of a histogram, one query each, grouped by `by`."""
    group = f"le, {by}" if by else "le"
    name = f" {{{{{by}}}}}" if by else ""
    return [target(f"histogram_quantile({q}, sum by ({group}) "
                   f"(rate({metric}_bucket{{{matchers}}}[{RI}])))", f"p{int(q * 100)}{name}", ref)
            for q, ref in ((0.5, "A"), (0.95, "B"), (0.99, "C"))]


def rate(metric: str, matchers: str = SEL, by: str = "") -> str:
    group = f"sum by ({by}) " if by else "sum "
    return f"{group}(rate({metric}{{{matchers}}}[{RI}]))"


def ratio_bad(metric: str, all_: str, good: str, by: str = "") -> str:
    """Share of bad events as 1 - good/all: 0 rather than "no data" when nothing failed."""
    return f"1 - ({rate(metric, good, by)} / {rate(metric, all_, by)})"


def layout() -> list[tuple[str, list[dict]]]:
    avail_budget, lat_budget = budget("availability"), budget("latency")
    slo_ratio = steps((avail_budget, YELLOW), (BURN_RATES[0][1] * avail_budget, RED))
    err_ratio = steps((0.01, YELLOW), (0.05, RED))
    latency = steps((float(LATENCY_THRESHOLD_S), RED))
    none = steps()
    mcp_count = f"{MCP}_count"
    tools = f'{SEL}, mcp_method_name="tools/call"'
    http_mcp = f'{SEL}, http_route="/mcp"'
    return [
        ("Overview", [
            panel("stat", "Tasks reporting",
                  "Tasks whose metrics endpoint answered the last scrape. Fewer than the ECS "
                  "desired count means tasks are failing or starting.",
                  [target(f"count(up{{{SEL}}} == 1) or vector(0)", "tasks")], "none",
                  steps((0, RED), (1, GREEN)), width=4),
            panel("stat", "MCP operations / s",
                  "All JSON-RPC operations handled, every method, every task selected.",
                  [target(rate(mcp_count), "ops/s")], "reqps", none, width=4),
            panel("stat", "MCP error ratio",
                  "Share of MCP operations that ended with a JSON-RPC error or a tool error "
                  "(including the callers' bad arguments).",
                  [target(ratio_bad(mcp_count, SEL, f'{SEL}, error_type=""'), "errors")],
                  "percentunit", err_ratio, width=4),
            panel("stat", "5xx on /mcp (availability SLI)",
                  f"Share of POST /mcp answered with a 5xx; the availability SLO allows "
                  f"{pct(avail_budget)} over 30 days.",
                  [target(ratio_bad(f"{HTTP}_count", http_mcp,
                                    f'{http_mcp}, http_response_status_code!~"5.."'), "5xx")],
                  "percentunit", slo_ratio, width=4),
            panel("stat", "p95 MCP operation latency",
                  f"95th percentile over all MCP methods; the latency SLO is "
                  f"{pct(SLO['latency'])} of /mcp requests within {LATENCY_THRESHOLD_S}s.",
                  [target(f"histogram_quantile(0.95, sum by (le) (rate({MCP}_bucket{{{SEL}}}[{RI}])))",
                          "p95")], "s", latency, width=4),
            panel("stat", "Tasks per build version",
                  "Running tasks by version and git commit: two versions at once means a "
                  "deployment is rolling (or stuck).",
                  [target(f"count by (version, git_sha) (mcp_server_build_info{{{SEL}}})",
                          "{{version}} @ {{git_sha}}")], "none", none, width=4),
        ]),
        ("MCP operations (mcp_server_operation_duration_seconds)", [
            panel("timeseries", "Operations / s by MCP method",
                  "Request rate per JSON-RPC method (tools/call, tools/list, initialize, ...).",
                  [target(rate(mcp_count, by="mcp_method_name"), "{{mcp_method_name}}")],
                  "reqps", none),
            panel("timeseries", "Tool calls / s by tool",
                  "tools/call rate per registered tool; _OTHER counts calls to unknown tools.",
                  [target(rate(mcp_count, tools, "gen_ai_tool_name"), "{{gen_ai_tool_name}}")],
                  "reqps", none),
            panel("timeseries", "Operations / s by protocol version",
                  "Which MCP protocol versions clients speak: watch this before dropping one.",
                  [target(rate(mcp_count, by="mcp_protocol_version"), "{{mcp_protocol_version}}")],
                  "reqps", none),
            panel("timeseries", "MCP errors / s by method and error type",
                  "error_type is the JSON-RPC error code (-32602 invalid params or unknown tool, "
                  "-32603 internal) or tool_error (the tool answered isError=true).",
                  [target(rate(mcp_count, f'{SEL}, error_type!=""', "mcp_method_name, error_type"),
                          "{{mcp_method_name}} {{error_type}}")],
                  "reqps", none, no_value="No errors"),
            panel("timeseries", "Tool error ratio by tool",
                  "Share of calls per tool that ended with an error of any kind.",
                  [target(ratio_bad(mcp_count, tools, f'{tools}, error_type=""', "gen_ai_tool_name"),
                          "{{gen_ai_tool_name}}")],
                  "percentunit", err_ratio),
            panel("timeseries", "Latency by MCP method (p50 / p95 / p99)",
                  "Server-side duration of each JSON-RPC operation, from the histogram.",
                  quantiles(MCP, SEL, "mcp_method_name"), "s", latency),
            panel("timeseries", "Tool latency (p50 / p95 / p99) by tool",
                  "Duration of tools/call per tool: the first place to look when latency rises.",
                  quantiles(MCP, tools, "gen_ai_tool_name"), "s", latency, width=16),
        ]),
        ("HTTP (http_server_request_duration_seconds)", [
            panel("timeseries", "HTTP requests / s by route and status",
                  "Status mix per route, including the ALB's /readyz health checks.",
                  [target(rate(f"{HTTP}_count", by="http_route, http_response_status_code"),
                          "{{http_route}} {{http_response_status_code}}")], "reqps", none),
            panel("timeseries", "HTTP 5xx ratio on /mcp",
                  f"The availability SLI. Yellow: above the SLO's budget ({pct(avail_budget)}); "
                  f"red: above the fast-burn alert's threshold.",
                  [target(ratio_bad(f"{HTTP}_count", http_mcp,
                                    f'{http_mcp}, http_response_status_code!~"5.."'), "5xx ratio")],
                  "percentunit", slo_ratio),
            panel("timeseries", "HTTP latency on /mcp (p50 / p95 / p99)",
                  "Whole-request duration as the middleware sees it (body read to response).",
                  quantiles(HTTP, http_mcp, ""), "s", latency),
        ]),
        ("Downstream calls of the tools (http_client_request_duration_seconds)", [
            panel("timeseries", "Downstream requests / s by server and status",
                  "Every request a tool sends through the platform's HTTP client (each retry "
                  "counts), by the server it went to and the status it got; none when the tools "
                  "call nothing.",
                  [target(rate(f"{CLIENT}_count", by="server_address, http_response_status_code"),
                          "{{server_address}} {{http_response_status_code}}")], "reqps", none),
            panel("timeseries", "Downstream error ratio by server",
                  "Share of downstream requests that failed: a 4xx/5xx answer or no answer "
                  "(error_type: timeout, connect, ...). A tool's errors often start here.",
                  [target(ratio_bad(f"{CLIENT}_count", SEL, f'{SEL}, http_response_status_code=~"1..|2..|3.."',
                                    "server_address"), "{{server_address}}")],
                  "percentunit", err_ratio),
            panel("timeseries", "Downstream latency (p50 / p95 / p99) by server",
                  "Time to the response head of each downstream request: when a tool is slow, "
                  "compare with its own latency above.",
                  quantiles(CLIENT, SEL, "server_address"), "s", latency),
        ]),
        ("Tasks: long-running tool calls (mcp_server_tasks, mcp_server_task_duration_seconds)", [
            panel("timeseries", "Tasks running by status",
                  "Tasks running on the selected ECS tasks: working, or waiting for the client's "
                  "answer (input_required). A line that only grows means tasks pile up.",
                  [target(f"sum by (mcp_task_status) ({TASKS}{{{SEL}}})", "{{mcp_task_status}}")],
                  "none", steps((TASKS_PILING_UP, RED)), width=6),
            panel("timeseries", "Tasks ended / s by tool and status",
                  "completed (the tool answered, also with isError), failed (a JSON-RPC error, "
                  "expiry, or the replica shut down first), cancelled (tasks/cancel).",
                  [target(rate(f"{TASK}_count", by="gen_ai_tool_name, mcp_task_status"),
                          "{{gen_ai_tool_name}} {{mcp_task_status}}")], "ops", none, width=6),
            panel("timeseries", "Task failure ratio by tool",
                  f"Share of the tasks that ended failed; the alert fires above "
                  f"{pct(TASK_FAILURE_RATIO)} for 15 minutes.",
                  [target(ratio_bad(f"{TASK}_count", SEL, f'{SEL}, mcp_task_status!="failed"',
                                    "gen_ai_tool_name"), "{{gen_ai_tool_name}}")],
                  "percentunit", steps((TASK_FAILURE_RATIO, RED)), width=6),
            panel("timeseries", "Task duration (p50 / p95 / p99) by tool",
                  "From a task's creation to its final status, on the replica that ran it.",
                  quantiles(TASK, SEL, "gen_ai_tool_name"), "s", none, width=6),
        ]),
        ("SLO burn rate (all tasks)", [
            panel("timeseries", f"Availability: error budget burn rate ({pct(SLO['availability'])} SLO)",
                  "1 = spending the 30-day budget exactly; the alerts page at 14.4 (1h and 5m) "
                  "and warn at 6 (6h and 30m). From the recording rules, so not per task.",
                  [target(f'{sli_record("availability", w)}{{job="$job"}} / {avail_budget}', w, r)
                   for w, r in (("1h", "A"), ("6h", "B"))],
                  "none", steps((BURN_RATES[1][1], YELLOW), (BURN_RATES[0][1], RED)), width=12),
            panel("timeseries", f"Latency: error budget burn rate ({pct(SLO['latency'])} within "
                                f"{LATENCY_THRESHOLD_S}s)",
                  "Share of /mcp requests slower than the SLO threshold, divided by the budget.",
                  [target(f'{sli_record("latency", w)}{{job="$job"}} / {lat_budget}', w, r)
                   for w, r in (("1h", "A"), ("6h", "B"))],
                  "none", steps((BURN_RATES[1][1], YELLOW), (BURN_RATES[0][1], RED)), width=12),
        ]),
        ("Saturation and telemetry", [
            panel("timeseries", "In-flight requests per task",
                  "Requests being served right now; shedding starts at APP__HTTP__MAX_IN_FLIGHT.",
                  [target(f"sum by (instance) (http_server_active_requests{{{SEL}}})",
                          "{{instance}}")], "none", none, width=6),
            panel("timeseries", "Shed requests / s per task (503)",
                  "Requests refused at once because the task was at its in-flight limit.",
                  [target(rate("http_server_shed_requests_total", by="instance"), "{{instance}}")],
                  "reqps", steps((0.1, RED)), width=6),
            panel("timeseries", "Request timeouts / s per task",
                  "Requests cut at APP__HTTP__REQUEST_TIMEOUT_MS and answered with an error.",
                  [target(rate("http_server_request_timeouts_total", by="instance"),
                          "{{instance}}")], "reqps", steps((0.1, RED)), width=6),
            panel("timeseries", "Dropped spans / s per task",
                  "Spans lost because the export queue was full: the collector is slow or down.",
                  [target(rate("otel_spans_dropped_total", by="instance"), "{{instance}}")],
                  "short", steps((0.1, RED)), width=6),
        ]),
        ("Tasks (process)", [
            panel("timeseries", "Scrape health per task (1 = up)",
                  "0 means the collector could not read this task's metrics endpoint.",
                  [target(f"max by (instance) (up{{{SEL}}})", "{{instance}}")],
                  "none", steps((0, RED), (1, GREEN)), width=6),
            panel("timeseries", "CPU per task (1.0 = one vCPU)",
                  "CPU seconds used per second; compare with the task's vCPU size.",
                  [target(rate("process_cpu_seconds_total", by="instance"), "{{instance}}")],
                  "percentunit", none, width=6),
            panel("timeseries", "Resident memory per task",
                  "Compare with the task's memory size; a steady climb suggests a leak.",
                  [target(f"sum by (instance) (process_resident_memory_bytes{{{SEL}}})",
                          "{{instance}}")], "bytes", none, width=6),
            panel("timeseries", "File descriptors in use (share of limit) per task",
                  "Open sockets and files over the process limit; at 100% new connections fail.",
                  [target(f"max by (instance) (process_open_fds{{{SEL}}} / process_max_fds{{{SEL}}})",
                          "{{instance}}")], "percentunit", steps((0.8, RED)), width=6),
        ]),
    ]


def variables() -> list[dict]:
    query = {"type": "prometheus", "uid": "${datasource}"}
    return [
        {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
         "hide": 0, "refresh": 1, "regex": "", "skipUrlSync": False},
        {"name": "job", "label": "Job", "type": "query", "datasource": query,
         "query": {"query": "label_values(mcp_server_build_info, job)", "refId": "job"},
         "current": {"text": JOB, "value": JOB}, "hide": 0, "refresh": 2, "sort": 1,
         "includeAll": False, "multi": False},
        {"name": "instance", "label": "Task", "type": "query", "datasource": query,
         "description": "One ECS task (task ARN in AMP, scrape address locally).",
         "query": {"query": 'label_values(mcp_server_build_info{job="$job"}, instance)',
                   "refId": "instance"},
         "current": {"text": "All", "value": "$__all"}, "hide": 0, "refresh": 2, "sort": 1,
         "includeAll": True, "allValue": ".*", "multi": True},
    ]


def dashboard() -> dict:
    panels, y, next_id = [], 0, 1
    for row_title, row_panels in layout():
        panels.append({"type": "row", "id": next_id, "title": row_title, "collapsed": False,
                       "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "panels": []})
        next_id, y, x = next_id + 1, y + 1, 0
        height = 4 if row_panels[0]["type"] == "stat" else 8
        for p in row_panels:
            w = p.pop("_width")
            if x + w > 24:
                x, y = 0, y + height
            p["id"], p["gridPos"] = next_id, {"h": height, "w": w, "x": x, "y": y}
            panels.append(p)
            next_id, x = next_id + 1, x + w
        y += height
    return {
        "uid": SERVICE, "title": f"{SERVICE} (MCP service)", "editable": True,
        "description": "RED metrics of the MCP service by method and tool, saturation and "
                       "process health per ECS task. Generated by dashboards/generate.py.",
        "tags": ["mcp", "generated"], "schemaVersion": 41, "version": 1, "graphTooltip": 1,
        "time": {"from": "now-1h", "to": "now"}, "refresh": "30s", "timezone": "browser",
        "annotations": {"list": []}, "links": [],
        "templating": {"list": variables()},
        "panels": panels,
    }


# --- Output --------------------------------------------------------------------------------------
class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper, value: str):
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


# `cargo generate` renames the service in the template's outputs too: each carries a Liquid
# capture of its whole text (raw, so Grafana's and Prometheus' own `{{ }}` stay) and a rename of
# SERVICE. The tags are spelt in two pieces so that rendering this file leaves them alone; a
# generated service's outputs keep their (then empty) places.
LIQUID_OPEN = "{" "% capture identity %" "}{" "% raw %" "}" if WITH_LIQUID_TAGS else ""
LIQUID_CLOSE = ("{" "% endraw %" "}{" "% endcapture %" "}{" "{ identity | replace: '" + SERVICE
                + "', project-name | replace: '" + ALERT_PREFIX + "', service_pascal }" "}"
                if WITH_LIQUID_TAGS else "")


def render() -> dict[Path, str]:
    header = "# Generated by dashboards/generate.py from its SLO block: edit that, then `just dashboards`.\n"
    board = {"//": LIQUID_OPEN, **dashboard(), "//end": LIQUID_CLOSE}
    rules_text = yaml.dump(rules(), Dumper=_Dumper, sort_keys=False, width=100)
    return {
        DASHBOARD_PATH: json.dumps(board, indent=2) + "\n",
        RULES_PATH: f"{header}# {LIQUID_OPEN}\n{rules_text}# {LIQUID_CLOSE}\n",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare, write nothing")
    args = parser.parse_args()
    assert LATENCY_THRESHOLD_S in HTTP_BUCKETS, "the latency threshold must be a bucket bound"
    stale = []
    for path, text in render().items():
        if path.exists() and path.read_text() == text:
            continue
        stale.append(path.relative_to(HERE.parent))
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if args.check and stale:
        print("out of date (run `just dashboards`): " + ", ".join(map(str, stale)), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
# {% endraw %}
