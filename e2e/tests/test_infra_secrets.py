"""The tools' secrets (infra/secrets.tf) as the real terraform core evaluates them: the variables
exactly as variables.tf declares them (types and validations) and the locals of secrets.tf, run in
a module of their own with one output per local; then how ecs.tf and iam.tf use those locals."""
from __future__ import annotations

import json
import re
import shutil

import pytest

from infra_hcl import INFRA, Module
from infra_terraform import evaluate, run

ACCOUNT = "123456789012"
SECRET = f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:weather/api-AbC123"
PARAMETER = f"arn:aws:ssm:us-east-1:{ACCOUNT}:parameter/lookup/token"
KEY = f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
# Two JSON keys of one secret, and a parameter in another region.
SAMPLE = {
    "weather.api_key": f"{SECRET}:api_key::",
    "weather.backup_key": f"{SECRET}:backup_key:AWSCURRENT:",
    "lookup.token": PARAMETER,
}


@pytest.fixture(scope="module")
def tf() -> Module:
    return Module.load()


@pytest.fixture
def secrets_module(tmp_path, tf):
    """Applies the variables (tool_secrets, the KMS keys, or a terraform.tfvars text) and gives
    terraform's result and, when it applied, each local of secrets.tf by name."""
    shutil.copy(INFRA / "variables.tf", tmp_path)
    shutil.copy(INFRA / "secrets.tf", tmp_path)
    names = [name for block in tf.files["secrets.tf"]["locals"] for name in block]
    (tmp_path / "outputs.tf").write_text("".join(
        f'output "{name}" {{\n  value = local.{name}\n}}\n' for name in names))

    def apply(tool_secrets: dict | None = None, kms_key_arns: list[str] | None = None,
              tfvars: str = ""):
        (tmp_path / "terraform.tfvars").write_text(tfvars)
        given = {"tool_secrets": tool_secrets, "tool_secrets_kms_key_arns": kms_key_arns}
        (tmp_path / "terraform.tfvars.json").write_text(
            json.dumps({k: v for k, v in given.items() if v is not None}))
        applied = run(tmp_path, "apply", "-auto-approve", "-no-color")
        if applied.returncode != 0:
            return applied, None
        outputs = json.loads(run(tmp_path, "output", "-json").stdout)
        return applied, {name: outputs[name]["value"] for name in names}

    return apply


def _container_secrets(tf: Module, app_secrets: list) -> list | None:
    """The app container's `secrets` as its task definition JSON (jsonencode) carries it, from
    the evaluated local."""
    expression = re.fullmatch(r"\$\{(.*)\}", tf.locals["app_container"]["secrets"], re.S).group(1)
    rendered = evaluate(f"jsonencode({{ secrets = {expression} }})", {"app_secrets": app_secrets})
    return json.loads(rendered)["secrets"]


def test_tool_secrets_become_the_app_containers_secrets_under_their_setting_names(
        tf, secrets_module):
    applied, values = secrets_module(SAMPLE, [KEY])
    assert values, applied.stderr
    assert _container_secrets(tf, values["app_secrets"]) == [
        {"name": "APP__TOOLS__LOOKUP__TOKEN", "valueFrom": PARAMETER},
        {"name": "APP__TOOLS__WEATHER__API_KEY", "valueFrom": f"{SECRET}:api_key::"},
        {"name": "APP__TOOLS__WEATHER__BACKUP_KEY", "valueFrom": f"{SECRET}:backup_key:AWSCURRENT:"},
    ]
    # The collector's config parameter stays the collector's own secret.
    assert tf.locals["collector_container"]["secrets"] == [
        {"name": "AOT_CONFIG_CONTENT", "valueFrom": "${aws_ssm_parameter.collector_config.arn}"}]


def test_the_execution_role_may_read_exactly_those_arns_and_decrypt_only_through_their_services(
        secrets_module):
    applied, values = secrets_module(SAMPLE, [KEY])
    assert values, applied.stderr
    assert values["tool_secret_grants"] == {
        # The secret itself, not its JSON keys, once.
        "ToolSecretsManagerSecrets": {"actions": ["secretsmanager:GetSecretValue"],
                                      "resources": [SECRET], "conditions": []},
        "ToolSsmParameters": {"actions": ["ssm:GetParameters"], "resources": [PARAMETER],
                              "conditions": []},
        "ToolSecretsDecrypt": {"actions": ["kms:Decrypt"], "resources": [KEY], "conditions": [
            {"test": "StringEquals", "variable": "kms:ViaService",
             "values": ["ssm.us-east-1.amazonaws.com", "secretsmanager.eu-west-1.amazonaws.com"]}]},
    }


def test_without_tool_secrets_there_is_no_grant_and_no_container_secrets(tf, secrets_module):
    # A KMS key alone grants nothing.
    applied, values = secrets_module({}, [KEY])
    assert values, applied.stderr
    assert values["tool_secret_grants"] == {} and values["app_secrets"] == []
    assert _container_secrets(tf, values["app_secrets"]) is None
    # Without a customer-managed key, no kms statement.
    applied, values = secrets_module({"lookup.token": PARAMETER})
    assert values, applied.stderr
    assert list(values["tool_secret_grants"]) == ["ToolSsmParameters"]


def test_the_execution_policy_writes_one_statement_per_grant_and_nothing_more(tf):
    document = tf.resources("data")["aws_iam_policy_document"]["execution"]
    [dynamic] = [d["statement"] for d in document["dynamic"] if "statement" in d]
    assert dynamic["for_each"] == "${local.tool_secret_grants}"
    [content] = dynamic["content"]
    [condition] = content.pop("dynamic")
    assert content == {"sid": "${statement.key}", "actions": "${statement.value.actions}",
                       "resources": "${statement.value.resources}"}
    assert condition["condition"]["for_each"] == "${statement.value.conditions}"
    assert condition["condition"]["content"] == [{
        "test": "${condition.value.test}", "variable": "${condition.value.variable}",
        "values": "${condition.value.values}"}]
    # The fixed statements read nothing of the tools'.
    fixed = [a for s in document["statement"] for a in s["actions"]]
    assert not any(a.startswith("secretsmanager:") for a in fixed)
    assert [s["resources"] for s in document["statement"] if "ssm:GetParameters" in s["actions"]] == [
        ["${aws_ssm_parameter.collector_config.arn}"]]


@pytest.mark.parametrize("tool_secrets", [
    {"weather.api_key": f"{SECRET}"},  # no JSON key: the whole secret string
    {"weather.api_key": f"{SECRET}:api_key::"},
    {"a1.b_2.c3": PARAMETER},
    {"api_key": f"arn:aws-us-gov:ssm:us-gov-west-1:{ACCOUNT}:parameter/a/b.c-d_e"},
])
def test_valid_settings_and_arns_plan(secrets_module, tool_secrets):
    applied, values = secrets_module(tool_secrets)
    assert values, applied.stderr


NAME_RULE = "setting names are dotted paths below [tools] in lower case"
ARN_RULE = "values are the full ARN of a Secrets Manager secret"
KEY_RULE = "tool_secrets_kms_key_arns: key ARNs"


@pytest.mark.parametrize("tool_secrets, kms_key_arns, rule", [
    ({"Weather.api_key": PARAMETER}, [], NAME_RULE),
    ({"weather-api.key": PARAMETER}, [], NAME_RULE),
    ({"weather.api__key": PARAMETER}, [], NAME_RULE),  # would read as weather.api.key
    ({"weather..key": PARAMETER}, [], NAME_RULE),
    ({"tools.weather.": PARAMETER}, [], NAME_RULE),
    # A partial ARN (no six-character suffix), which IAM would not match.
    ({"weather.api_key": f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:weather"}, [], ARN_RULE),
    ({"weather.api_key": f"{SECRET}:api_key"}, [], ARN_RULE),  # ECS needs all three fields
    ({"weather.api_key": "/lookup/token"}, [], ARN_RULE),  # a name: IAM needs the ARN
    ({"weather.api_key": f"{PARAMETER}:3"}, [], ARN_RULE),
    ({"weather.api_key": PARAMETER}, [f"arn:aws:kms:eu-west-1:{ACCOUNT}:alias/tools"], KEY_RULE),
])
def test_plan_refuses_setting_names_and_arns_that_would_not_work(
        secrets_module, tool_secrets, kms_key_arns, rule):
    applied, values = secrets_module(tool_secrets, kms_key_arns)
    assert values is None
    message = " ".join(re.sub(r"[│╷╵]", " ", applied.stderr).split())
    assert "Invalid value for variable" in message and rule in message, message


def test_the_documented_example_plans(secrets_module):
    example = (INFRA / "terraform.tfvars.example").read_text()
    block = re.search(r"(?ms)^# tool_secrets = \{$.*?^# \}$", example).group(0)
    applied, values = secrets_module(tfvars=re.sub(r"(?m)^# ?", "", block))
    assert values, applied.stderr
    assert "APP__TOOLS__WEATHER__API_KEY" in [s["name"] for s in values["app_secrets"]]
