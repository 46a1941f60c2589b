"""Every number and name that must agree across infra/, otel-collector/ecs.yaml, the Dockerfile,
the dashboards and the service's defaults agrees. Terraform expressions are evaluated from the
variable defaults (and from overrides, to show the wiring follows the variables)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

import dash_cloudwatch
from infra_adot import ADOT_TAG, COMPONENTS, DEPRECATED
from infra_hcl import INFRA, Module, Unknown, references
from infra_terraform import evaluate
from infra_tools import ROOT, budget_fraction, service_defaults

COLLECTOR = ROOT / "otel-collector/ecs.yaml"
FLUSH_BUDGET_S = 5  # what the service allows itself for the final telemetry flush
FARGATE_MAX_STOP_TIMEOUT_S = 120


@pytest.fixture(scope="module")
def tf() -> Module:
    return Module.load()


@pytest.fixture(scope="module")
def collector() -> dict:
    return yaml.safe_load(COLLECTOR.read_text())


def _port(addr: str) -> int:
    return int(addr.rsplit(":", 1)[1])


def _dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


# --- defaults shared with the service ---------------------------------------------------------

def test_terraform_defaults_equal_the_service_defaults(tf):
    svc = service_defaults()
    variables = tf.variables
    assert variables["container_port"]["default"] == _port(svc["http"]["addr"])
    assert variables["drain_delay_ms"]["default"] == svc["shutdown"]["drain_delay_ms"]
    assert variables["shutdown_grace_ms"]["default"] == svc["shutdown"]["grace_ms"]
    assert variables["request_timeout_ms"]["default"] == svc["http"]["request_timeout_ms"]
    assert variables["task_ttl_ms"]["default"] == svc["tasks"]["ttl_ms"]
    assert variables["task_store_timeout_ms"]["default"] == svc["tasks"]["store_timeout_ms"]


def test_container_port_target_group_and_service_default_agree(tf):
    ev = tf.evaluator()
    port = _port(service_defaults()["http"]["addr"])
    app = ev.value(tf.locals["app_container"]["portMappings"])
    assert [m["containerPort"] for m in app] == [port]
    assert ev.value(tf.resource("aws_lb_target_group", "app")["port"]) == port
    [lb] = tf.resource("aws_ecs_service", "this")["load_balancer"]
    assert ev.value(lb["container_port"]) == port
    assert ev.value(tf.locals["app_container"]["name"]) == ev.value(lb["container_name"])
    assert _port(ev.value(tf.locals["app_environment"]["APP__HTTP__ADDR"])) == port
    for rule in ("tasks_from_alb", "alb_to_tasks"):
        kind = "ingress" if rule.startswith("tasks") else "egress"
        body = tf.resource(f"aws_vpc_security_group_{kind}_rule", rule)
        assert ev.value(body["from_port"]) == ev.value(body["to_port"]) == port, rule
    assert re.search(rf"(?m)^EXPOSE {port}$", _dockerfile())


def test_port_wiring_follows_the_variable(tf):
    ev = tf.evaluator(container_port=9000)
    assert ev.value(tf.resource("aws_lb_target_group", "app")["port"]) == 9000
    assert ev.value(tf.locals["app_environment"]["APP__HTTP__ADDR"]) == "0.0.0.0:9000"


# --- shutdown timing --------------------------------------------------------------------------

LIFECYCLES = [
    {},  # the defaults
    {"drain_delay_ms": 0, "shutdown_grace_ms": 5000, "request_timeout_ms": 60000},
    {"drain_delay_ms": 15000, "shutdown_grace_ms": 80500, "request_timeout_ms": 10000,
     "task_store_timeout_ms": 10000},
]


@pytest.mark.parametrize("overrides", LIFECYCLES)
def test_stop_timeout_covers_drain_grace_and_flush(tf, overrides):
    ev = tf.evaluator(**overrides)
    drain, grace = ev.vars["drain_delay_ms"] / 1000, ev.vars["shutdown_grace_ms"] / 1000
    # Tasks still running at the end of the grace are marked failed: one store call.
    last_write = ev.vars["task_store_timeout_ms"] / 1000
    stop_timeout = ev.value(tf.locals["app_container"]["stopTimeout"])
    assert stop_timeout > drain + grace + last_write + FLUSH_BUDGET_S
    assert stop_timeout <= FARGATE_MAX_STOP_TIMEOUT_S
    env = tf.locals["app_environment"]
    assert ev.value(env["APP__SHUTDOWN__DRAIN_DELAY_MS"]) == str(ev.vars["drain_delay_ms"])
    assert ev.value(env["APP__SHUTDOWN__GRACE_MS"]) == str(ev.vars["shutdown_grace_ms"])
    assert ev.value(env["APP__HTTP__REQUEST_TIMEOUT_MS"]) == str(ev.vars["request_timeout_ms"])
    assert ev.value(env["APP__TASKS__STORE_TIMEOUT_MS"]) == str(ev.vars["task_store_timeout_ms"])


def test_plan_refuses_a_stop_timeout_fargate_cannot_honour(tf):
    [lifecycle] = tf.resource("aws_ecs_task_definition", "this")["lifecycle"]
    conditions = [p["condition"] for p in lifecycle["precondition"]]
    assert all(tf.evaluator(image_tag="v1").value(c) for c in conditions)
    too_long = tf.evaluator(image_tag="v1", shutdown_grace_ms=110000)
    assert not all(too_long.value(c) for c in conditions)


def test_plan_refuses_to_roll_the_service_onto_an_image_nobody_pushed(tf):
    """`just publish` pushes the commit's tag and ECR tags are immutable: a default tag would be
    one that does not exist, and an apply would stop every task."""
    [lifecycle] = tf.resource("aws_ecs_task_definition", "this")["lifecycle"]
    conditions = [p["condition"] for p in lifecycle["precondition"]]
    assert tf.variables["image_tag"]["default"] == ""
    assert not all(tf.evaluator().value(c) for c in conditions)
    assert all(tf.evaluator(app_image="registry.example/app:v1").value(c) for c in conditions)


@pytest.mark.parametrize("overrides", LIFECYCLES)
def test_deregistration_delay_follows_the_drain_rule(tf, overrides):
    """ECS deregisters before SIGTERM, so the ALB's wait covers the longest routed request; and
    when both happen together the app serves drain + grace, which the ALB must not cut short."""
    ev = tf.evaluator(**overrides)
    delay = ev.value(tf.resource("aws_lb_target_group", "app")["deregistration_delay"])
    assert delay >= ev.vars["request_timeout_ms"] / 1000
    assert delay >= (ev.vars["drain_delay_ms"] + ev.vars["shutdown_grace_ms"]) / 1000
    # No slower than needed: AWS's default of 300 s would stall every deployment.
    assert delay < max(ev.vars["request_timeout_ms"],
                       ev.vars["drain_delay_ms"] + ev.vars["shutdown_grace_ms"]) / 1000 + 1


def test_alb_idle_timeout_outlasts_the_request_timeout(tf):
    ev = tf.evaluator()
    assert ev.value(tf.resource("aws_lb", "this")["idle_timeout"]) * 1000 > ev.vars["request_timeout_ms"]
    [lifecycle] = tf.resource("aws_lb", "this")["lifecycle"]
    guard = [p["condition"] for p in lifecycle["precondition"] if "idle" in p["condition"]]
    assert guard and not tf.evaluator(alb_idle_timeout_s=30, request_timeout_ms=60000).value(guard[0])


def test_kept_alive_connections_outlive_the_alb_idle_timeout(tf):
    # The service's header-read timer also closes idle kept-alive connections
    # (platform/tests/it/limits.rs shows it); closing before the ALB does races its reuse.
    for idle_s in (60, 120, 4000):
        ev = tf.evaluator(alb_idle_timeout_s=idle_s)
        timeout_ms = ev.value(tf.locals["app_environment"]["APP__HTTP__HEADER_READ_TIMEOUT_MS"])
        assert int(timeout_ms) > idle_s * 1000, (idle_s, timeout_ms)


# --- edge -------------------------------------------------------------------------------------

def test_http_redirects_unless_insecure_is_opted_in(tf):
    [action] = tf.resource("aws_lb_listener", "http")["default_action"]
    assert action["type"] == '${local.http_redirects ? "redirect" : "forward"}'
    assert tf.evaluator().local("http_redirects") is True
    assert tf.evaluator(allow_insecure_http=True).local("http_redirects") is False
    https = tf.resource("aws_lb_listener", "https")
    assert https["protocol"] == "HTTPS" and re.search(r"TLS13|TLS-1-2", https["ssl_policy"])
    alb = tf.resource("aws_lb", "this")
    assert alb["drop_invalid_header_fields"] is True


def test_target_health_check_is_readyz(tf):
    [check] = tf.resource("aws_lb_target_group", "app")["health_check"]
    assert check["path"] == "/readyz" and check["matcher"] == "200"


def test_only_the_alb_listener_ports_are_open_to_the_world(tf):
    world = {"0.0.0.0/0", "::/0"}
    listener_ports = {tf.evaluator().value(body["port"])
                      for body in tf.resources()["aws_lb_listener"].values()}
    open_rules = []
    for name, rule in tf.resources().get("aws_vpc_security_group_ingress_rule", {}).items():
        if {rule.get("cidr_ipv4"), rule.get("cidr_ipv6")} & world:
            open_rules.append(name)
            assert rule["security_group_id"] == "${aws_security_group.alb.id}", name
            assert rule["from_port"] == rule["to_port"] and rule["to_port"] in listener_ports, name
    assert sorted(open_rules) == ["alb_http", "alb_https"]
    # Rules belong in the separate rule resources, where the loop above sees them.
    for name, sg in tf.resources()["aws_security_group"].items():
        assert "ingress" not in sg and "egress" not in sg, name
    assert "aws_security_group_rule" not in tf.resources()
    for name, rule in tf.resources().get("aws_vpc_security_group_egress_rule", {}).items():
        if "referenced_security_group_id" not in rule:
            assert rule["from_port"] == rule["to_port"] == 443, name


# --- task definition --------------------------------------------------------------------------

def test_app_container_matches_the_image(tf):
    ev = tf.evaluator()
    app = tf.locals["app_container"]
    docker = _dockerfile()
    entrypoint = re.search(r'(?m)^ENTRYPOINT \["([^"]+)"\]', docker).group(1)
    assert app["healthCheck"]["command"] == ["CMD", entrypoint, "healthcheck"]
    assert re.search(rf'HEALTHCHECK .*\\\n\s+CMD \["{re.escape(entrypoint)}", "healthcheck"\]', docker)
    user = re.search(r"(?m)^USER (\S+)$", docker.split("FROM ")[-1]).group(1)
    assert app["user"] == user and not user.startswith("0")
    assert app["readonlyRootFilesystem"] is True
    assert ev.value(app["dependsOn"]) == [{"containerName": "otel-collector", "condition": "HEALTHY"}]
    assert ev.value(tf.locals["collector_container"]["name"]) == "otel-collector"
    assert tf.locals["collector_container"]["healthCheck"]["command"] == ["CMD", "/healthcheck"]


def test_app_environment_carries_the_contract(tf):
    env = tf.locals["app_environment"]
    ev = tf.evaluator(environment="staging")
    assert env["APP__HTTP__ALLOWED_HOSTS"] == "${local.public_host}"
    assert ev.value(env["APP__LOG__FORMAT"]) == "json"
    assert ev.value(env["OTEL_SERVICE_NAME"]) == ev.vars["name"]
    assert ev.value(env["OTEL_RESOURCE_ATTRIBUTES"]) == "deployment.environment.name=staging"
    assert ev.value(env["OTEL_EXPORTER_OTLP_PROTOCOL"]) == "http/protobuf"
    for key in ("MODE", "RESOURCE", "ISSUER", "JWKS_URL", "REQUIRED_SCOPES"):
        assert f"APP__AUTH__{key}" in env
    assert ev.value(env["APP__AUTH__MODE"]) == "none"


def test_empty_environment_values_are_not_sent(tf):
    """ECS stores no empty-valued entry, so sending one makes every plan differ and every apply
    register a new revision and redeploy. The service reads an unset variable as empty."""
    env, ev = tf.locals["app_environment"], tf.evaluator()
    empty = {k for k, v in env.items() if _value_or_none(ev, v) == ""}
    assert empty >= {"APP__AUTH__ISSUER", "APP__AUTH__JWKS_URL", "APP__AUTH__REQUIRED_SCOPES"}
    sent = evaluate(tf.locals["app_container"]["environment"],
                    {"app_environment": {"APP__LOG__FORMAT": "json", **dict.fromkeys(empty, "")}})
    assert sent == [{"name": "APP__LOG__FORMAT", "value": "json"}]


def _value_or_none(ev, node):
    try:
        return ev.value(node)
    except Unknown:
        return None


def test_trace_sampler_is_a_ratio_by_default_and_follows_its_variables(tf):
    env, variables = tf.locals["app_environment"], tf.variables
    assert env["OTEL_TRACES_SAMPLER"] == "${var.trace_sampler}"
    assert variables["trace_sampler"]["default"] == "parentbased_traceidratio"
    assert 0 < variables["trace_sample_ratio"]["default"] <= 0.1
    cases = {"parentbased_traceidratio": 0.05, "traceidratio": 1, "always_on": 0.5}
    args = evaluate(f"{{for sampler, ratio in local.cases : sampler => "
                    f"{_in_loop(env['OTEL_TRACES_SAMPLER_ARG'], sampler='sampler', ratio='ratio')}}}",
                    {"cases": cases})
    # Empty (not sent, see above) where the sampler takes no argument.
    assert args == {"parentbased_traceidratio": "0.05", "traceidratio": "1", "always_on": ""}


def _in_loop(expression: str, sampler: str, ratio: str) -> str:
    """An expression on var.trace_sampler/var.trace_sample_ratio, on loop variables instead."""
    inner = re.fullmatch(r"\$\{(.*)\}", expression, re.S).group(1)
    return inner.replace("var.trace_sampler", sampler).replace("var.trace_sample_ratio", ratio)


def test_otlp_endpoint_is_the_sidecar_http_receiver(tf, collector):
    endpoint = tf.evaluator().value(tf.locals["app_environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"])
    receiver = collector["receivers"]["otlp"]["protocols"]["http"]["endpoint"]
    assert endpoint == f"http://{receiver}"
    assert receiver.startswith("127.0.0.1:")


def test_collector_scrapes_the_service_admin_address(tf, collector):
    [job] = collector["receivers"]["prometheus"]["config"]["scrape_configs"]
    [static] = job["static_configs"]
    assert static["targets"] == [service_defaults()["admin"]["addr"]]
    assert job["metrics_path"] == "/metrics" and job["scrape_interval"] == "15s"
    # The task must not move the admin listener away from what the collector scrapes.
    assert "APP__ADMIN__ADDR" not in tf.locals["app_environment"]


def test_alert_rules_select_the_scrape_job(collector):
    [job] = collector["receivers"]["prometheus"]["config"]["scrape_configs"]
    selectors = set()
    for path in (ROOT / "dashboards/alerts").glob("*.rules.yaml"):
        selectors |= set(re.findall(r'\bjob="([^"]+)"', path.read_text()))
    assert selectors == {job["job_name"]}


def test_ssm_parameter_is_exactly_the_collector_config(tf):
    param = tf.resource("aws_ssm_parameter", "collector_config")
    assert param["value"] == "${local.collector_config}"
    [path] = re.findall(r'^\$\{file\("\$\{path\.module\}/([^"]+)"\)\}$', tf.locals["collector_config"])
    assert (INFRA / path).resolve() == COLLECTOR
    # Standard parameters hold 4 KiB (the tier switches to Advanced above that), Advanced 8 KiB.
    assert len(COLLECTOR.read_bytes()) <= 8192
    [secret] = tf.locals["collector_container"]["secrets"]
    assert secret == {"name": "AOT_CONFIG_CONTENT",
                      "valueFrom": "${aws_ssm_parameter.collector_config.arn}"}


def test_collector_env_references_are_provided(tf, collector):
    wanted = set(re.findall(r"\$\{env:([A-Z0-9_]+)\}", COLLECTOR.read_text()))
    assert wanted, "ecs.yaml reads its region and AMP URL from the environment"
    assert wanted <= tf.locals["collector_environment"].keys()


def test_collector_uses_components_of_the_pinned_image(tf, collector):
    image = tf.variables["collector_image"]["default"]
    assert image.endswith(f":{ADOT_TAG}"), f"{image}: regenerate e2e/infra_adot.py for this tag"
    defined = {}
    for kind in COMPONENTS:
        for name in collector.get(kind, {}):
            ctype = name.split("/")[0]
            assert ctype in COMPONENTS[kind], f"{kind}.{name}: not in ADOT {ADOT_TAG}"
            assert ctype not in DEPRECATED[kind], f"{kind}.{name}: deprecated spelling"
            defined[(kind, name)] = False
    service = collector["service"]
    for name in service["extensions"]:
        defined[("extensions", name)] = True
    for pipeline, body in service["pipelines"].items():
        assert body["processors"][0] == "memory_limiter", pipeline
        for kind in ("receivers", "processors", "exporters"):
            for name in body[kind]:
                assert (kind, name) in defined, f"{pipeline} uses undefined {kind}.{name}"
                defined[(kind, name)] = True
    assert all(defined.values()), [k for k, used in defined.items() if not used]


def test_collector_exports_what_the_issue_asks(collector):
    assert set(collector["exporters"]["awsxray"]["indexed_attributes"]) >= {"mcp.method.name",
                                                                           "gen_ai.tool.name"}
    prw = collector["exporters"]["prometheus_remote_write"]
    assert prw["auth"]["authenticator"] == "sigv4auth"
    instance = collector["processors"]["resource/instance"]["attributes"]
    assert {"key": "service.instance.id", "from_attribute": "aws.ecs.task.arn",
            "action": "upsert"} in instance
    # /healthcheck in the ADOT image polls 127.0.0.1:13133.
    assert collector["extensions"]["health_check"]["endpoint"] == "127.0.0.1:13133"


def test_task_role_grants_exactly_what_the_exporters_need(tf, collector):
    needs = {"awsxray": {"xray:PutTraceSegments"}, "prometheus_remote_write": {"aps:RemoteWrite"}}
    exporters = {name.split("/")[0] for name in collector["exporters"]}
    assert exporters <= needs.keys(), f"add IAM for {exporters - needs.keys()}"
    wanted = set().union(*(needs[e] for e in exporters))
    statements = tf.resources("data")["aws_iam_policy_document"]["task"]["statement"]
    granted = {a for s in statements for a in s["actions"]}
    assert granted == wanted


# --- edge, alerts, deployment -------------------------------------------------------------------

# Opened since August 2022: ALB access logs there come only from the log-delivery service, and
# the provider's aws_elb_service_account fails for them.
REGIONS_WITHOUT_ELB_ACCOUNT = ["me-central-1", "eu-central-2", "eu-south-2", "ap-south-2",
                               "ap-southeast-4", "ap-southeast-5", "ca-west-1", "il-central-1",
                               "mx-central-1"]


def test_alb_access_logs_can_be_delivered_in_every_region(tf):
    elb_account = tf.resources("data")["aws_elb_service_account"]["this"]
    regions = ["us-east-1", "eu-west-1", "ap-southeast-3", *REGIONS_WITHOUT_ELB_ACCOUNT]
    count = re.fullmatch(r"\$\{(.*)\}", elb_account["count"]).group(1)
    counts = evaluate(f"{{for region in local.regions : region => "
                      f"{count.replace('var.region', 'region')}}}",
                      {"regions": regions,
                       "elb_account_regions": tf.evaluator().local("elb_account_regions")})
    assert counts == {r: 0 if r in REGIONS_WITHOUT_ELB_ACCOUNT else 1 for r in regions}

    [statement] = [s for s in tf.resources("data")["aws_iam_policy_document"]["logs_bucket"]["statement"]
                   if s.get("sid") == "AlbAccessLogs"]
    assert statement["principals"] == [
        {"type": "Service", "identifiers": ["logdelivery.elasticloadbalancing.amazonaws.com"]}]
    [account] = statement["dynamic"]
    assert account["principals"]["for_each"] == "${data.aws_elb_service_account.this}"
    assert account["principals"]["content"] == [{"type": "AWS", "identifiers": ["${principals.value.arn}"]}]


def test_amp_alert_manager_may_read_and_publish_to_the_topic_from_this_workspace_only(tf):
    statements = tf.resources("data")["aws_iam_policy_document"]["alarms_topic"]["statement"]
    by_principal = {ident: s for s in statements for p in s["principals"] for ident in p["identifiers"]}
    amp = by_principal["aps.amazonaws.com"]
    assert set(amp["actions"]) == {"sns:Publish", "sns:GetTopicAttributes"}
    assert {(c["test"], c["variable"]): c["values"] for c in amp["condition"]} == {
        ("ArnEquals", "aws:SourceArn"): ["${aws_prometheus_workspace.this.arn}"],
        ("StringEquals", "aws:SourceAccount"): ["${data.aws_caller_identity.current.account_id}"],
    }
    assert by_principal["cloudwatch.amazonaws.com"]["actions"] == ["sns:Publish"]


def test_first_tasks_start_after_their_role_policies_exist(tf):
    service = tf.resource("aws_ecs_service", "this")
    policies = {f"${{aws_iam_role_policy.{name}}}" for name in tf.resources()["aws_iam_role_policy"]}
    assert policies and policies <= set(service["depends_on"])


def test_deployment_rolls_back_when_the_5xx_or_latency_alarm_fires(tf):
    [alarms] = tf.resource("aws_ecs_service", "this")["alarms"]
    assert alarms["enable"] is True and alarms["rollback"] is True
    assert alarms["alarm_names"] == [
        "${aws_cloudwatch_metric_alarm.http_5xx_rate.alarm_name}",
        '${aws_cloudwatch_metric_alarm.metric["p99-latency"].alarm_name}',
    ]
    assert "p99-latency" in tf.locals["metric_alarms"]
    [breaker] = tf.resource("aws_ecs_service", "this")["deployment_circuit_breaker"]
    assert breaker == {"enable": True, "rollback": True}


def test_no_dependency_cycle(tf):
    """terraform refuses to plan a cycle; the service naming its alarms makes one easy to add."""
    assert tf.dependency_cycle() is None


# --- Terraform hygiene ------------------------------------------------------------------------

def test_every_variable_is_declared_and_used(tf):
    declared = set(tf.variables)
    used = references(tf.text(), "var")
    assert used - declared == set(), "used but not declared"
    assert declared - used == set(), "declared but never used"
    example = (INFRA / "terraform.tfvars.example").read_text()
    assigned = set(re.findall(r"(?m)^#?\s*([a-z_0-9]+)\s*=", example))
    assert assigned and assigned <= declared, assigned - declared


def test_every_local_is_defined_and_used(tf):
    defined = set(tf.locals)
    used = references(tf.text(), "local")
    assert used - defined == set(), "used but not defined"
    assert defined - used == set(), "defined but never used"


def test_dashboard_and_alert_files_are_where_terraform_reads_them(tf):
    dashboard = tf.resource("aws_cloudwatch_dashboard", "this")["dashboard_body"]
    m = re.search(r'templatefile\("\$\{path\.module\}/([^"]+)", \{(.*)\}\)', dashboard, re.S)
    template = (INFRA / m.group(1)).resolve()
    passed = set(re.findall(r"(\w+)\s*=", m.group(2)))
    assert passed == dash_cloudwatch.VARIABLES
    assert template.is_file(), f"missing {template}"
    used = set(re.findall(r"\$\{(\w+)\}", template.read_text()))
    assert used <= passed, f"template needs {used - passed}"

    alerts = tf.resource("aws_prometheus_rule_group_namespace", "alerts")
    assert alerts["for_each"] == '${fileset(local.alerts_dir, "*.rules.yaml")}'
    alerts_dir = (INFRA / tf.locals["alerts_dir"].replace("${path.module}/", "")).resolve()
    files = sorted(alerts_dir.glob("*.rules.yaml"))
    assert files, f"no alert rule files in {alerts_dir}"
    for path in files:
        assert yaml.safe_load(path.read_text())["groups"], path


def test_outputs_the_issue_names(tf):
    outputs = {name for block in tf.blocks("output") for name in block}
    assert {"mcp_endpoint", "amp_workspace_id", "dashboard_url", "ecr_repository_url",
            "region"} <= outputs


# --- memory and logs under load ---------------------------------------------------------------

MIB = 1 << 20


@pytest.mark.parametrize("overrides", [{}, {"task_memory": 2048, "collector_memory": 512}])
def test_app_memory_collector_memory_and_the_budget_agree(tf, overrides):
    ev = tf.evaluator(**overrides)
    app = ev.value(tf.locals["app_container"]["memory"])
    collector = ev.value(tf.locals["collector_container"]["memory"])
    task = ev.value(tf.resource("aws_ecs_task_definition", "this")["memory"])
    assert app + collector == task, "the app's hard limit is the task's memory less the collector's"
    budget = int(ev.value(tf.locals["app_environment"]["APP__HTTP__MEMORY_BUDGET_BYTES"]))
    assert budget == int(app * MIB * budget_fraction()), "the binary's own default for that limit"


@pytest.mark.parametrize("overrides", [{}, {"alarm_memory_percent": 95}, {"collector_memory": 128}])
def test_memory_alarm_fires_before_the_app_reaches_its_hard_limit(tf, overrides):
    ev = tf.evaluator(**overrides)
    alarm = ev.value(tf.locals["metric_alarms"]["memory"]["threshold"])
    app = ev.value(tf.locals["app_container"]["memory"])
    task = ev.vars["task_memory"]
    # The task's use is at least the app's: an app at 90 % of its limit puts the task above the alarm.
    assert alarm <= 90 * app / task
    assert ev.value(tf.locals["metric_alarms"]["memory"]["statistic"]) == "Maximum"
    assert ev.value(tf.locals["metric_alarms"]["memory"]["datapoints"]) == 1


def test_both_log_drivers_drop_instead_of_blocking_stdout(tf):
    ev = tf.evaluator()
    for container in ("app_container", "collector_container"):
        options = tf.locals[container]["logConfiguration"]["options"]
        assert ev.value(options["mode"]) == "non-blocking", container
        size = ev.value(options["max-buffer-size"])
        assert re.fullmatch(r"\d+m", size) and int(size[:-1]) >= 4, f"{container}: {size}"
