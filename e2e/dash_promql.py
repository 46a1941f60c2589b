"""Every PromQL query the dashboards and alert rules hold, and what they select.

Grafana variables are expanded the way Grafana would for "all tasks of the service's job", so the
same text can go to promtool and to a real Prometheus. The PromQL parser (promql-parser, the
Rust one that follows the Prometheus grammar) gives the selectors and grouping labels.
"""
from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import promql_parser as pq
import yaml

from support import SERVICE_NAME

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / f"dashboards/grafana/{SERVICE_NAME}.json"
ALERTS_DIR = ROOT / "dashboards/alerts"
JOB = SERVICE_NAME  # the scrape job is the service's name (otel-collector/*.yaml)


@dataclass(frozen=True)
class Query:
    kind: str  # "panel", "record" or "alert"
    name: str  # where it comes from, for messages
    expr: str


def load_dashboard(path: Path = DASHBOARD) -> dict:
    """The dashboard as Grafana reads it: without the template generator's `//` marker keys."""
    return {k: v for k, v in json.loads(path.read_text()).items() if not k.startswith("//")}


def panels(dashboard: dict) -> list[dict]:
    """Every panel that is not a row, including those inside (collapsed) rows."""
    out = []
    for p in dashboard["panels"]:
        if p["type"] == "row":
            out.extend(p.get("panels", []))
        else:
            out.append(p)
    return out


def expand(expr: str, rate_interval: str) -> str:
    values = {"__rate_interval": rate_interval, "job": JOB, "instance": ".*"}
    out = re.sub(r"\$\{?(\w+)\}?", lambda m: values[m.group(1)], expr)
    assert "$" not in out, f"unexpanded variable in {out}"
    return out


def panel_queries(dashboard: dict, rate_interval: str = "5m") -> list[Query]:
    return [Query("panel", f"panel {p['id']} {p['title']!r} {t['refId']}",
                  expand(t["expr"], rate_interval))
            for p in panels(dashboard) for t in p["targets"]]


def rule_files() -> list[Path]:
    return sorted(ALERTS_DIR.glob("*.rules.yaml"))


def rules(path: Path) -> list[dict]:
    return [r for g in yaml.safe_load(path.read_text())["groups"] for r in g["rules"]]


def rule_queries() -> list[Query]:
    return [Query("alert" if "alert" in r else "record", r.get("alert") or r["record"], r["expr"])
            for path in rule_files() for r in rules(path)]


def recorded_names() -> set[str]:
    return {q.name for q in rule_queries() if q.kind == "record"}


def promtool_check(queries: list[Query], tmp_path: Path) -> subprocess.CompletedProcess:
    """`promtool check rules` on the queries written as recording rules."""
    path = tmp_path / "queries.rules.yaml"
    records = [{"record": f"check:query_{i}", "expr": q.expr} for i, q in enumerate(queries)]
    path.write_text(yaml.safe_dump({"groups": [{"name": "queries", "rules": records}]}))
    return subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True)


# --- The syntax tree ----------------------------------------------------------------------------
def _children(node) -> list:
    kids = [getattr(node, a, None) for a in ("lhs", "rhs", "expr", "vector_selector", "param")]
    kids += list(getattr(node, "args", None) or [])
    return [k for k in kids if isinstance(k, pq.Expr)]


def walk(node, parents: tuple = ()):
    """(node, its ancestors nearest first) for every node of the tree."""
    yield node, parents
    for child in _children(node):
        yield from walk(child, (node, *parents))


def selectors(expr: str) -> list[pq.VectorSelector]:
    return [n for n, _ in walk(pq.parse(expr)) if isinstance(n, pq.VectorSelector)]


def matchers(selector: pq.VectorSelector) -> dict[str, tuple[str, str]]:
    return {m.name: (str(m.op), m.value) for m in selector.matchers.matchers}


def selector_text(selector: pq.VectorSelector) -> str:
    return selector.prettify()


def grouping(expr: str) -> list[tuple[list[str], list[pq.VectorSelector]]]:
    """For each `by (...)` aggregation: its labels and the selectors it aggregates."""
    out = []
    for node, _ in walk(pq.parse(expr)):
        if isinstance(node, pq.AggregateExpr) and node.modifier is not None \
                and node.modifier.type == pq.AggModifierType.By:
            inner = [n for n, _ in walk(node.expr) if isinstance(n, pq.VectorSelector)]
            out.append((list(node.modifier.labels), inner))
    return out


def lint(query: Query, dashboard_panel: bool) -> list[str]:
    """The dashboard-linter rules that matter here, as messages (empty when clean)."""
    problems = []
    tree = pq.parse(query.expr)
    recorded = recorded_names()
    for node, parents in walk(tree):
        if isinstance(node, pq.VectorSelector):
            m = matchers(node)
            if node.name is None:
                problems.append(f"selector without a metric name: {selector_text(node)}")
            if m.get("job") not in ((str(pq.MatchOp.Equal), JOB),):
                problems.append(f"no job=\"{JOB}\" matcher: {selector_text(node)}")
            if dashboard_panel and node.name not in recorded and "instance" not in m:
                problems.append(f"no per-task instance matcher: {selector_text(node)}")
        if isinstance(node, pq.Call) and node.func.name in ("rate", "irate", "increase"):
            if not any(isinstance(p, pq.AggregateExpr) for p in parents):
                problems.append(f"{node.func.name}() not aggregated: {node.prettify()}")
        if isinstance(node, pq.Call) and node.func.name == "histogram_quantile":
            for labels, _ in grouping(node.args[1].prettify()):
                if "le" not in labels:
                    problems.append(f"histogram_quantile aggregation drops le: {node.prettify()}")
    return problems


def unmatched(query, expr: str) -> list[str]:
    """What `expr` names that the data behind `query` (expr -> result list) does not have: each
    selector must match series, and each label it matches on or groups by must exist there.
    Names the rule files record are checked through their own expressions instead."""
    problems, recorded = [], recorded_names()
    for sel in selectors(expr):
        if sel.name in recorded:
            continue
        if not query(f"count({selector_text(sel)})"):
            problems.append(f"no series match {selector_text(sel)}")
            continue
        for label in matchers(sel):
            if not query(f'count({sel.name}{{job="{JOB}", {label}!=""}})'):
                problems.append(f"{sel.name} has no label {label}")
    for labels, inner in grouping(expr):
        for label in set(labels) - {"le"}:
            if not any(query(f'count({s.name}{{job="{JOB}", {label}!=""}})') for s in inner
                       if s.name not in recorded):
                problems.append(f"grouped by {label}, which no aggregated series has")
    return problems
