"""`just publish` / `just deploy` drive aws, docker and terraform in the right order with the right
arguments. The three CLIs are stand-ins on PATH that record their arguments and answer like the
real ones, since no AWS account or Docker engine is reachable here."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SERVICE_NAME
from infra_tools import ROOT

REPO_URL = f"210987654321.dkr.ecr.eu-west-1.amazonaws.com/{SERVICE_NAME}"
JUST = Path(sys.executable).parent / "just"

STUB = """#!/usr/bin/env bash
echo "$(basename "$0") $*" >> "$CALLS"
case "$(basename "$0") $*" in
  "terraform -chdir=infra output -raw ecr_repository_url") printf %s "$REPO_URL" ;;
  "terraform -chdir=infra output -raw region") printf eu-west-1 ;;
  "aws ecr describe-images"*) exit "$IMAGE_EXISTS_EXIT" ;;
  "aws ecr get-login-password"*) echo secret-password ;;
  "docker login"*) [ "$(cat)" = secret-password ] || exit 9 ;;
esac
"""


@pytest.fixture
def run_just(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("aws", "docker", "terraform"):
        (bin_dir / tool).write_text(STUB)
        (bin_dir / tool).chmod(0o755)
    calls = tmp_path / "calls"

    def run(*args: str, image_exists: bool = False) -> tuple[subprocess.CompletedProcess, list[str]]:
        calls.write_text("")
        env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "CALLS": str(calls),
               "REPO_URL": REPO_URL, "IMAGE_EXISTS_EXIT": "0" if image_exists else "254"}
        proc = subprocess.run([str(JUST), *args], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=60)
        return proc, calls.read_text().splitlines()

    return run


def test_deploy_logs_in_builds_for_amd64_pushes_then_applies_the_tag(run_just):
    proc, calls = run_just("deploy", "v1.2.3", "-auto-approve")
    assert proc.returncode == 0, proc.stderr
    assert calls[:3] == [
        "terraform -chdir=infra output -raw ecr_repository_url",
        "terraform -chdir=infra output -raw region",
        f"aws ecr describe-images --region eu-west-1 --repository-name {SERVICE_NAME} "
        "--image-ids imageTag=v1.2.3",
    ]
    # The two ends of `aws ... | docker login` start together, in either order.
    assert set(calls[3:5]) == {
        "aws ecr get-login-password --region eu-west-1",
        "docker login --username AWS --password-stdin 210987654321.dkr.ecr.eu-west-1.amazonaws.com",
    }
    assert calls[5:] == [
        f"docker buildx build --platform linux/amd64 --provenance=false --build-arg GIT_SHA=v1.2.3 -t {REPO_URL}:v1.2.3 --push .",
        "terraform -chdir=infra apply -var image_tag=v1.2.3 -auto-approve",
    ]


def test_publish_skips_a_tag_already_in_the_registry(run_just):
    proc, calls = run_just("publish", "v1.2.3", image_exists=True)
    assert proc.returncode == 0, proc.stderr
    assert not any(c.startswith("docker") for c in calls), calls
    assert "already there" in proc.stdout


def test_publish_refuses_a_dirty_tree_tag(run_just):
    proc, calls = run_just("publish", "0123456789ab-dirty")
    assert proc.returncode != 0 and "commit first" in proc.stderr
    assert calls == []


def test_image_builds_for_fargate_locally(run_just):
    proc, calls = run_just("image", "dev")
    assert proc.returncode == 0, proc.stderr
    assert calls == [f"docker buildx build --platform linux/amd64 --build-arg GIT_SHA=dev --load -t {SERVICE_NAME}:dev ."]


def test_recipes_name_no_account_or_region():
    text = (ROOT / "just/infra.just").read_text()
    assert not re.search(r"\b\d{12}\b|\b[a-z]{2}-[a-z]+-\d\b", text)
