"""`just publish` / `just deploy` drive aws, docker and terraform in the right order with the right
arguments. The three CLIs are stand-ins on PATH that record their arguments and answer like the
real ones, since no AWS account or Docker engine is reachable here. The terraform stand-in knows
only `output -raw ecr_repository_url`; test_infra_workflow.py runs the recipes against a real
terraform."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from infra_tools import ROOT, install_cli_stand_ins
from support import SERVICE_NAME

REPO_URL = f"210987654321.dkr.ecr.eu-west-1.amazonaws.com/{SERVICE_NAME}"
JUST = Path(sys.executable).parent / "just"

@pytest.fixture
def run_just(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    install_cli_stand_ins(bin_dir, "aws", "docker", "terraform")
    calls = tmp_path / "calls"

    def run(*args: str, image_exists: bool = False,
            repo_url: str = REPO_URL) -> tuple[subprocess.CompletedProcess, list[str]]:
        calls.write_text("")
        env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "CALLS": str(calls),
               "REPO_URL": repo_url, "IMAGE_EXISTS_EXIT": "0" if image_exists else "254"}
        proc = subprocess.run([str(JUST), *args], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=60)
        return proc, calls.read_text().splitlines()

    return run


def test_deploy_logs_in_builds_for_amd64_pushes_then_applies_the_tag(run_just):
    proc, calls = run_just("deploy", "v1.2.3", "-auto-approve")
    assert proc.returncode == 0, proc.stderr
    assert calls[:2] == [
        "terraform -chdir=infra output -raw ecr_repository_url",
        f"aws ecr describe-images --region eu-west-1 --repository-name {SERVICE_NAME} "
        "--image-ids imageTag=v1.2.3",
    ]
    # The two ends of `aws ... | docker login` start together, in either order.
    assert set(calls[2:4]) == {
        "aws ecr get-login-password --region eu-west-1",
        "docker login --username AWS --password-stdin 210987654321.dkr.ecr.eu-west-1.amazonaws.com",
    }
    assert calls[4:] == [
        f"docker buildx build --platform linux/amd64 --provenance=false --build-arg GIT_SHA=v1.2.3 -t {REPO_URL}:v1.2.3 --push .",
        "terraform -chdir=infra apply -var image_tag=v1.2.3 -auto-approve",
    ]


def test_publish_takes_the_region_from_the_registry_host_in_any_partition(run_just):
    china = f"210987654321.dkr.ecr.cn-north-1.amazonaws.com.cn/{SERVICE_NAME}"
    proc, calls = run_just("publish", "v1.2.3", repo_url=china)
    assert proc.returncode == 0, proc.stderr
    assert "aws ecr get-login-password --region cn-north-1" in calls
    assert f"docker login --username AWS --password-stdin {china.split('/')[0]}" in calls


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
