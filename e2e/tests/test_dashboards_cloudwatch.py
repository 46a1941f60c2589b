"""The CloudWatch dashboard body that Terraform renders with templatefile()."""
import copy
import json

import dash_cloudwatch as cw


def test_template_uses_exactly_the_variables_infra_passes():
    text, _ = cw.load_template()
    assert cw.infra_variables(cw.INFRA.read_text()) == cw.VARIABLES
    # templatefile() fails on a name it was not given; an unused one is a forgotten widget.
    assert cw.references(text) == cw.VARIABLES
    assert "%{" not in text, "template directives are not expected in a JSON body"


def test_rendered_body_is_json_with_the_values_in_place():
    text, _ = cw.load_template()
    values = {v: f"value-of-{v}" for v in cw.VARIABLES}
    body = json.loads(cw.render(text, values))
    rendered = json.dumps(body)
    assert "${" not in rendered
    for v in cw.VARIABLES:
        assert f"value-of-{v}" in rendered, v


def test_widgets_use_real_metrics_dimensions_and_statistics():
    _, body = cw.load_template()
    assert cw.problems(body) == []


def test_body_covers_the_alb_ecs_and_collector():
    _, body = cw.load_template()
    metrics = {row[1] for w in body["widgets"] if w["type"] == "metric"
               for row in w["properties"]["metrics"] if isinstance(row[0], str)}
    for needed in ("RequestCount", "HTTPCode_Target_4XX_Count", "HTTPCode_Target_5XX_Count",
                   "HTTPCode_ELB_5XX_Count", "TargetResponseTime", "HealthyHostCount",
                   "CPUUtilization", "MemoryUtilization", "RunningTaskCount"):
        assert needed in metrics, needed
    percentiles = {row[-1].get("stat") for w in body["widgets"] if w["type"] == "metric"
                   for row in w["properties"]["metrics"] if row[1:2] == ["TargetResponseTime"]}
    assert {"p50", "p99"} <= percentiles
    queries = " ".join(w["properties"]["query"] for w in body["widgets"] if w["type"] == "log")
    assert "${collector_log_group}" in queries and "${app_log_group}" in queries


def test_checker_catches_wrong_dimensions_and_unknown_metrics():
    _, body = cw.load_template()
    broken = copy.deepcopy(body)
    rows = [w["properties"]["metrics"] for w in broken["widgets"] if w["type"] == "metric"]
    rows[0][0][1] = "RequestsCount"  # no such ALB metric
    healthy = next(r for rs in rows for r in rs if r[1:2] == ["HealthyHostCount"])
    del healthy[2:6]  # HealthyHostCount needs TargetGroup and LoadBalancer
    cpu = next(r for rs in rows for r in rs if r[1:2] == ["CPUUtilization"])
    cpu[3] = "${service_name}"  # ClusterName fed the wrong variable
    found = "\n".join(cw.problems(broken))
    assert "unknown metric AWS/ApplicationELB RequestsCount" in found
    assert "HealthyHostCount has no dimension set" in found
    assert "dimension ClusterName" in found
