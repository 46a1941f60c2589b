"""The deploy workflow's order, walked with a real terraform (e2e/infra_terraform.py) through the
real recipes of the Justfile: `just tf-bootstrap` on a new account, then `just publish`, `just
deploy` and `just tf-apply`, against e2e/infra_fixture/ (infra/'s shape on the built-in
terraform_data resource). Only aws and docker are stand-ins.

The fixture is kept honest by the agreement tests at the end: the outputs the recipes read, the
variables they pass and the image precondition are the same in infra/ and in the fixture, and each
bootstrap target has its stand-in."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from infra_hcl import INFRA, Module
from infra_terraform import OFFLINE_ENV, install_command, run
from infra_tools import ROOT, install_cli_stand_ins

FIXTURE = ROOT / "e2e/infra_fixture"
# The recipes without their comments.
RECIPE_CODE = re.sub(r"(?m)^\s*#.*$", "", (ROOT / "just/infra.just").read_text())
JUST = Path(sys.executable).parent / "just"
REGION = "eu-west-1"
NAME = "some-service"  # the fixture's default `name`
REPO_URL = f"123456789012.dkr.ecr.{REGION}.amazonaws.com/{NAME}"


def stand_in(address: str) -> str:
    """aws_ecr_repository.app -> terraform_data.aws_ecr_repository_app"""
    return "terraform_data." + address.replace(".", "_")


def bootstrap_targets() -> list[str]:
    return re.search(r'(?m)^bootstrap_targets := "([^"]*)"$', RECIPE_CODE).group(1).split()


@pytest.fixture
def workflow(tmp_path):
    """`just RECIPE ARGS` in a checkout whose infra/ is the fixture (eu-west-1 in its
    terraform.tfvars, like a user's), after `just tf-init`: gives the process and the aws/docker
    calls; `.terraform(ARGS)` runs terraform there, `.state()` reads its state."""
    shutil.copytree(FIXTURE, tmp_path / "infra")
    (tmp_path / "infra/terraform.tfvars").write_text(f'region = "{REGION}"\n')
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    install_command(bin_dir)
    install_cli_stand_ins(bin_dir, "aws", "docker")
    calls = tmp_path / "calls"
    env = {**os.environ, **OFFLINE_ENV, "PATH": f"{bin_dir}:{os.environ['PATH']}",
           "CALLS": str(calls), "IMAGE_EXISTS_EXIT": "254"}
    targets = " ".join(stand_in(t) for t in bootstrap_targets())

    def just(*args: str) -> tuple[subprocess.CompletedProcess, list[str]]:
        calls.write_text("")
        proc = subprocess.run(
            [str(JUST), "--justfile", str(ROOT / "Justfile"), "--working-directory", str(tmp_path),
             "--set", "bootstrap_targets", targets, *args],
            env=env, capture_output=True, text=True, timeout=120)
        return proc, calls.read_text().splitlines()

    def terraform(*args: str) -> subprocess.CompletedProcess:
        return run(tmp_path / "infra", *args)

    def state() -> dict:
        """Resource address -> the stand-in's recorded input, from the real state."""
        values = json.loads(terraform("show", "-json").stdout).get("values", {})
        resources = values.get("root_module", {}).get("resources", [])
        return {r["address"]: r["values"]["input"] for r in resources}

    proc, _ = just("tf-init")
    assert proc.returncode == 0, proc.stderr
    just.terraform, just.state = terraform, state
    return just


def test_first_deploy_bootstrap_publish_deploy_then_plain_apply(workflow):
    proc, _ = workflow("tf-bootstrap", "-auto-approve")
    assert proc.returncode == 0, proc.stderr
    assert set(workflow.state()) == {stand_in(t) for t in bootstrap_targets()}

    # Defect 1: publish used to read `output -raw region`, which a targeted apply never writes.
    proc, calls = workflow("publish", "v1.2.3")
    assert proc.returncode == 0, proc.stderr
    assert calls[0] == f"aws ecr describe-images --region {REGION} --repository-name {NAME} --image-ids imageTag=v1.2.3"
    assert f"aws ecr get-login-password --region {REGION}" in calls
    assert calls[-1].startswith("docker buildx build") and calls[-1].endswith(f"-t {REPO_URL}:v1.2.3 --push .")

    proc, _ = workflow("deploy", "v1.2.3", "-auto-approve")
    assert proc.returncode == 0, proc.stderr
    assert workflow.state()["terraform_data.aws_ecs_task_definition_this"] == {"image": f"{REPO_URL}:v1.2.3"}

    # Defect 2: any other apply (a setting, the teardown's first step) keeps the running image.
    proc, _ = workflow("tf-apply", "-auto-approve", "-var", f"name={NAME}")
    assert proc.returncode == 0, proc.stderr
    assert "No changes." in proc.stdout
    assert workflow.state()["terraform_data.aws_ecs_task_definition_this"] == {"image": f"{REPO_URL}:v1.2.3"}

    proc, _ = workflow("tf-destroy", "-auto-approve")
    assert proc.returncode == 0, proc.stderr
    assert workflow.state() == {}


def test_a_targeted_bootstrap_writes_only_the_outputs_of_its_targets_and_tears_down(workflow):
    """Why publish derives the region from the repository URL: terraform leaves `region` (it
    depends on a variable only) out of a targeted apply's state."""
    proc, _ = workflow("tf-bootstrap", "-auto-approve")
    assert proc.returncode == 0, proc.stderr
    assert workflow.terraform("output", "-raw", "ecr_repository_url").stdout == REPO_URL
    region = workflow.terraform("output", "-raw", "region")
    assert region.returncode != 0 and 'Output "region" not found' in region.stderr
    # Giving up before the first image: teardown needs no tag.
    proc, _ = workflow("tf-destroy", "-auto-approve")
    assert proc.returncode == 0, proc.stderr
    assert workflow.state() == {}


def test_an_apply_without_an_image_changes_nothing(workflow):
    proc, _ = workflow("tf-apply", "-auto-approve")
    assert proc.returncode != 0
    assert "No image to run" in proc.stderr
    assert workflow.state() == {}


# --- the fixture agrees with infra/ --------------------------------------------------------------

@pytest.fixture(scope="module")
def infra_tf() -> Module:
    return Module.load(INFRA)


@pytest.fixture(scope="module")
def fixture_tf() -> Module:
    return Module.load(FIXTURE)


def _outputs(module: Module) -> dict[str, dict]:
    return {name: body for block in module.blocks("output") for name, body in block.items()}


def _depends_on(body: dict, resource_pattern: str, to_stand_in) -> tuple[set[str], set[str]]:
    """The (resources, variables) an output's value and depends_on refer to."""
    text = json.dumps([body["value"], body.get("depends_on", [])])
    resources = {to_stand_in(m) for m in re.findall(resource_pattern, text)}
    return resources, set(re.findall(r"\bvar\.(\w+)", text))


def test_the_fixture_declares_the_outputs_the_recipes_read_with_the_same_dependencies(
        infra_tf, fixture_tf):
    read = set(re.findall(r"output -raw (\w+)", RECIPE_CODE))
    assert read == {"ecr_repository_url", "image_tag"}
    real, stand_ins = _outputs(infra_tf), _outputs(fixture_tf)
    assert stand_ins.keys() <= real.keys()
    for name in read | stand_ins.keys():
        assert _depends_on(real[name], r"\b(aws_\w+\.\w+)", stand_in) == \
            _depends_on(stand_ins[name], r"\b(terraform_data\.\w+)", str), name


def test_the_fixture_declares_the_variables_the_recipes_pass_with_the_same_defaults(
        infra_tf, fixture_tf):
    passed = set(re.findall(r"-var (\w+)=", RECIPE_CODE))
    assert passed == {"image_tag"}
    for name in passed | {"region"}:
        assert fixture_tf.variables[name]["default"] == infra_tf.variables[name]["default"], name


def test_the_fixture_refuses_an_apply_without_an_image_as_infra_does(infra_tf, fixture_tf):
    [infra_lifecycle] = infra_tf.resource("aws_ecs_task_definition", "this")["lifecycle"]
    [fixture_lifecycle] = fixture_tf.resource(
        "terraform_data", "aws_ecs_task_definition_this")["lifecycle"]
    [image_check] = fixture_lifecycle["precondition"]
    assert image_check["condition"] in [p["condition"] for p in infra_lifecycle["precondition"]]


def test_every_bootstrap_target_is_in_infra_and_has_its_stand_in(infra_tf, fixture_tf):
    for target in bootstrap_targets():
        rtype, name = target.split(".")
        assert name in infra_tf.resources().get(rtype, {}), target
        assert stand_in(target).split(".")[1] in fixture_tf.resources()["terraform_data"], target
