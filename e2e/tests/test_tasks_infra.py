"""The tasks table in infra/tasks.tf agrees with the service: the key and TTL attribute the store
writes, the table name and TTL the container gets, IAM for exactly the item calls the store
makes on exactly that table (through the stack's KMS key, only via DynamoDB), and the CloudWatch
dashboard's tasks widgets watch those calls on that table and the line the runtime logs."""
from __future__ import annotations

import re

import pytest

import dash_cloudwatch as cw
from infra_hcl import Module
from infra_tools import ROOT

DYNAMO_RS = (ROOT / "platform/src/tasks/dynamo.rs").read_text()
RUNTIME_RS = (ROOT / "platform/src/tasks/runtime.rs").read_text()


def store_calls() -> set[str]:
    """The DynamoDB actions the store's code makes (`.client.get_item()` is GetItem)."""
    calls = re.findall(r"\.client\s*\.(\w+)\(\)", DYNAMO_RS)
    return {re.sub(r"(?:^|_)(\w)", lambda g: g[1].upper(), c) for c in calls}


@pytest.fixture(scope="module")
def tf() -> Module:
    return Module.load()


def test_the_table_has_the_store_key_ttl_pitr_and_the_stack_key(tf):
    table = tf.resource("aws_dynamodb_table", "tasks")
    key = re.search(r'const KEY: &str = "(\w+)"', DYNAMO_RS)[1]
    ttl = re.search(r'pub const TTL_ATTRIBUTE: &str = "(\w+)"', DYNAMO_RS)[1]
    assert table["hash_key"] == key
    assert table["attribute"] == [{"name": key, "type": "S"}]
    assert table["billing_mode"] == "PAY_PER_REQUEST"
    assert table["ttl"] == [{"attribute_name": ttl, "enabled": True}]
    assert table["point_in_time_recovery"] == [{"enabled": True}]
    assert table["server_side_encryption"] == [{"enabled": True, "kms_key_arn": "${aws_kms_key.this.arn}"}]


def test_the_task_role_may_make_exactly_the_store_calls_on_that_table(tf):
    calls = {f"dynamodb:{c}" for c in store_calls()}
    assert calls == {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"}
    statements = tf.resources("data")["aws_iam_policy_document"]["tasks_table"]["statement"]
    items, key = statements
    assert set(items["actions"]) == calls and items["resources"] == ["${aws_dynamodb_table.tasks.arn}"]
    assert key["resources"] == ["${aws_kms_key.this.arn}"]
    assert key["condition"][0]["variable"] == "kms:ViaService"
    policy = tf.resource("aws_iam_role_policy", "tasks_table")
    assert policy["role"] == "${aws_iam_role.task.id}"


def test_the_container_uses_the_table(tf):
    env = tf.locals["app_environment"]
    ev = tf.evaluator()
    assert ev.value(env["APP__TASKS__STORE"]) == "dynamodb"
    assert env["APP__TASKS__TABLE"] == "${aws_dynamodb_table.tasks.name}"
    assert ev.value(env["APP__TASKS__TTL_MS"]) == str(ev.vars["task_ttl_ms"])


def test_the_cloudwatch_dashboard_watches_the_store_calls_and_the_task_ends(tf):
    assert cw.TABLE_OPERATIONS == store_calls()
    assert "tasks_table = aws_dynamodb_table.tasks.name" in re.sub(r"\s+", " ", cw.INFRA.read_text())
    _, body = cw.load_template()
    watched = {row[5] for w in body["widgets"] if w["type"] == "metric"
               for row in w["properties"]["metrics"] if row[:1] == ["AWS/DynamoDB"]}
    assert watched == store_calls()
    ended = [w["properties"]["query"] for w in body["widgets"]
             if w["type"] == "log" and "task ended" in w["properties"]["query"]]
    assert len(ended) == 1 and "by status" in ended[0]
    # The runtime's line, with the status field the widget groups by.
    assert re.search(r'status = status_name\(status\),\s*duration_ms = [^,]*,\s*"task ended"', RUNTIME_RS)
