"""Every resource, data source and provider block in infra/ against the AWS provider's real schema (from its
generated bindings, see e2e/infra_schema.py): no unknown argument, no missing required one, and
blocks written as blocks, attributes as attributes."""
from __future__ import annotations

import re

import pytest

from infra_hcl import INFRA, declared_blocks
from infra_schema import ProviderSchema


@pytest.fixture(scope="module")
def provider() -> ProviderSchema:
    return ProviderSchema.load()


def test_every_infra_resource_and_data_source_matches_the_provider_schema(provider):
    checked, problems, kinds = 0, [], set()
    for path in sorted(INFRA.glob("*.tf")):
        for kind, rtype, name, body in declared_blocks(path.read_text()):
            problems += [f"{path.name}: {p}" for p in provider.problems(kind, rtype, body)]
            checked += 1
            kinds.add((kind, rtype))
    assert checked > 50 and ("provider", "aws") in kinds
    assert problems == []


def test_the_schema_is_of_the_provider_major_versions_tf_asks_for(provider):
    constraint = re.search(r'version\s*=\s*"~> (\d+)\.0"', (INFRA / "versions.tf").read_text())
    assert provider.schema["provider_version"].split(".")[0] == constraint.group(1)


MISTAKES = '''
resource "aws_ecs_service" "s" {
  name            = "x"
  launch_typo     = "FARGATE"
  deployment_circuit_breaker = { enable = true, rollback = true }
  alarms {
    alarm_names = ["a"]
    enable      = true
  }
  tags { a = "b" }
  dynamic "cluster" {
    for_each = [1]
    content {}
  }
  lifecycle { ignore_changes = [desired_count] }
}

data "aws_iam_policy_document" "d" {
  statement {
    actions = ["s3:GetObject"]
    principals {
      identifiers = ["*"]
    }
  }
}

resource "aws_ecs_cluster_typo" "c" {}

provider "aws" {
  regoin = "eu-west-1"
  default_tags = { tags = {} }
}
'''


def test_the_check_reports_each_kind_of_mistake(provider):
    problems = [p for kind, rtype, name, body in declared_blocks(MISTAKES)
                for p in provider.problems(kind, rtype, body)]
    assert sorted(problems) == sorted([
        "aws_ecs_service: unknown argument or block 'launch_typo'",
        "aws_ecs_service: deployment_circuit_breaker is a block, written as an attribute",
        "aws_ecs_service.alarms: missing required 'rollback'",
        "aws_ecs_service: tags is an attribute, written as a block",
        "aws_ecs_service: dynamic 'cluster' is not a block",
        "data.aws_iam_policy_document.statement.principals: missing required 'type'",
        "aws_ecs_cluster_typo: no such resource in provider 6.66.0",
        "provider.aws: unknown argument or block 'regoin'",
        "provider.aws: default_tags is a block, written as an attribute",
    ])
