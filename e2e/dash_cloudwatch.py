"""The CloudWatch dashboard body: rendered as Terraform's templatefile() would, and checked
against the metric names and dimension sets the AWS namespaces publish.

Dimension sets are those of the AWS docs ("CloudWatch metrics for your Application Load
Balancer", "Amazon ECS CloudWatch metrics", "Amazon ECS Container Insights metrics").
"""
from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "dashboards/cloudwatch/dashboard.json.tftpl"
INFRA = ROOT / "infra/observability.tf"

# Exactly what infra/ passes to templatefile().
VARIABLES = {"region", "alb_arn_suffix", "target_group_arn_suffix", "cluster_name",
             "service_name", "app_log_group", "collector_log_group", "tasks_table"}
# Which variable each dimension's value must be.
DIMENSION_VARIABLE = {"LoadBalancer": "alb_arn_suffix", "TargetGroup": "target_group_arn_suffix",
                      "ClusterName": "cluster_name", "ServiceName": "service_name",
                      "TableName": "tasks_table"}
# The item actions the service calls on the tasks table (and the only ones its IAM role allows).
TABLE_OPERATIONS = {"GetItem", "PutItem", "UpdateItem"}
# The values each dimension may take: its variable, or (Operation) the calls the service makes.
DIMENSION_VALUES = {**{dim: {f"${{{var}}}"} for dim, var in DIMENSION_VARIABLE.items()},
                    "Operation": TABLE_OPERATIONS}

_LB, _TG = frozenset({"LoadBalancer"}), frozenset({"TargetGroup"})
_LB_TG = _LB | _TG
_CLUSTER = frozenset({"ClusterName"})
_SERVICE = _CLUSTER | {"ServiceName"}
_TABLE_OPERATION = frozenset({"TableName", "Operation"})
ALB, ECS, INSIGHTS, DYNAMODB = "AWS/ApplicationELB", "AWS/ECS", "ECS/ContainerInsights", "AWS/DynamoDB"
CATALOG = {
    (ALB, "RequestCount"): {_LB, _LB_TG},
    (ALB, "RequestCountPerTarget"): {_TG, _LB_TG},
    (ALB, "HTTPCode_Target_2XX_Count"): {_LB, _LB_TG},
    (ALB, "HTTPCode_Target_4XX_Count"): {_LB, _LB_TG},
    (ALB, "HTTPCode_Target_5XX_Count"): {_LB, _LB_TG},
    (ALB, "HTTPCode_ELB_4XX_Count"): {_LB},
    (ALB, "HTTPCode_ELB_5XX_Count"): {_LB},
    (ALB, "TargetResponseTime"): {_LB, _LB_TG},
    (ALB, "HealthyHostCount"): {_LB_TG},
    (ALB, "UnHealthyHostCount"): {_LB_TG},
    (ECS, "CPUUtilization"): {_CLUSTER, _SERVICE},
    (ECS, "MemoryUtilization"): {_CLUSTER, _SERVICE},
    (INSIGHTS, "RunningTaskCount"): {_SERVICE},
    (INSIGHTS, "DesiredTaskCount"): {_SERVICE},
    (INSIGHTS, "PendingTaskCount"): {_SERVICE},
    (DYNAMODB, "ThrottledRequests"): {_TABLE_OPERATION},
    (DYNAMODB, "SystemErrors"): {_TABLE_OPERATION},
    (DYNAMODB, "SuccessfulRequestLatency"): {_TABLE_OPERATION},
}
STAT = re.compile(r"^(Sum|Average|Minimum|Maximum|SampleCount|p\d{1,2}(\.\d+)?)$")
_REF = re.compile(r"\$\{([^}]*)\}")


def references(text: str) -> set[str]:
    return set(_REF.findall(text))


def render(text: str, values: dict[str, str]) -> str:
    """templatefile(): every ${name} replaced; a name it was not given is an error."""
    return _REF.sub(lambda m: values[m.group(1)], text)


def infra_variables(tf: str) -> set[str]:
    """The keys of the object infra/ passes to templatefile() for this template."""
    call = re.search(r"templatefile\([^,]*dashboard\.json\.tftpl\",\s*\{(.*?)\}\)", tf, re.S)
    assert call, "no templatefile() call for the dashboard body"
    return set(re.findall(r"^\s*(\w+)\s*=", call.group(1), re.M))


def _metric_row_problems(where: str, row: list, ids: set[str]) -> list[str]:
    if len(row) == 1 and isinstance(row[0], dict):
        expr = row[0].get("expression", "")
        unknown = {w for w in re.findall(r"\b[a-z]\w*\b", expr) if w.islower()} - ids
        return [f"{where}: expression {expr!r} uses unknown ids {sorted(unknown)}"] if unknown else []
    options = row[-1] if isinstance(row[-1], dict) else {}
    names = row[:-1] if options else row
    if len(names) < 2 or len(names) % 2:
        return [f"{where}: not [namespace, metric, (dimension, value)*]: {row}"]
    namespace, metric, pairs = names[0], names[1], names[2:]
    dims = dict(zip(pairs[::2], pairs[1::2]))
    problems = []
    allowed = CATALOG.get((namespace, metric))
    if allowed is None:
        problems.append(f"{where}: unknown metric {namespace} {metric}")
    elif frozenset(dims) not in allowed:
        problems.append(f"{where}: {metric} has no dimension set {sorted(dims)}")
    for dim, value in dims.items():
        allowed_values = DIMENSION_VALUES.get(dim, set())
        if value not in allowed_values:
            problems.append(f"{where}: dimension {dim} = {value!r}, expected one of {sorted(allowed_values)}")
    return problems


def problems(body: dict) -> list[str]:
    """Everything wrong with the (unrendered) dashboard body, as messages."""
    out, cells = [], {}
    for i, w in enumerate(body["widgets"]):
        where = f"widget {i} {w.get('properties', {}).get('title', w['type'])!r}"
        if w["type"] not in ("metric", "log", "text"):
            out.append(f"{where}: unexpected type {w['type']}")
        if not (0 <= w["x"] and w["x"] + w["width"] <= 24 and w["height"] > 0):
            out.append(f"{where}: outside the 24-column grid")
        for x in range(w["x"], w["x"] + w["width"]):
            for y in range(w["y"], w["y"] + w["height"]):
                if (x, y) in cells:
                    out.append(f"{where}: overlaps {cells[(x, y)]}")
                cells[(x, y)] = where
        props = w["properties"]
        if w["type"] in ("metric", "log"):
            if not props.get("title") or props.get("region") != "${region}":
                out.append(f"{where}: needs a title and region ${{region}}")
        if w["type"] == "log" and not re.match(r"^SOURCE '\$\{(app|collector)_log_group\}' \|",
                                                props["query"]):
            out.append(f"{where}: query must start from one of the service's log groups")
        if w["type"] == "metric":
            rows = props["metrics"]
            ids = {r[-1]["id"] for r in rows if isinstance(r[-1], dict) and "id" in r[-1]}
            for row in rows:
                out += _metric_row_problems(where, row, ids)
                options = row[-1] if isinstance(row[-1], dict) else {}
                stat = options.get("stat", props.get("stat"))
                if "expression" not in options and not (stat and STAT.match(stat)):
                    out.append(f"{where}: row {row[:2]} has no valid stat ({stat})")
    return out


def load_template() -> tuple[str, dict]:
    text = TEMPLATE.read_text()
    return text, json.loads(text)
