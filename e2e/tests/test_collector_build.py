"""The collector the tests and `just dev` run (otel-collector/otelcol, built by scripts/bootstrap.sh)
is the ADOT sidecar's software: its Go module is what its ocb manifest says, it has every component
ecs.yaml and local.yaml name and nothing the pinned ADOT image lacks, and it accepts both files."""
import json
import shutil
import subprocess

import pytest
import yaml

from infra_adot import COMPONENTS as ADOT_COMPONENTS
from otelcol import AWS_ENV, ECS_CONFIG, LOCAL_CONFIG, OTELCOL_BIN
from support import ROOT

SRC = ROOT / "otel-collector/otelcol"
KINDS = ("receivers", "processors", "exporters", "extensions")


def built(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([OTELCOL_BIN, *args], capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", **(env or {})})


def component_types(config: dict, kind: str) -> set[str]:
    """The types of a config's components of one kind (`batch/traces` is a `batch`)."""
    return {name.split("/", 1)[0] for name in config.get(kind) or {}}


@pytest.mark.skipif(not shutil.which("go"), reason="the Go toolchain reads go.mod")
def test_the_go_module_is_what_the_manifest_says():
    manifest = yaml.safe_load((SRC / "manifest.yaml").read_text())
    module = json.loads(subprocess.run(["go", "mod", "edit", "-json"], cwd=SRC, capture_output=True,
                                       text=True, check=True).stdout)
    required = {r["Path"]: r["Version"] for r in module["Require"]}
    wanted = [m["gomod"].split() for kind in (*KINDS, "providers") for m in manifest[kind]]
    assert {path: required.get(path) for path, _ in wanted} == dict(wanted)
    replaced = {(r["Old"]["Path"], r["New"]["Path"], r["New"]["Version"]) for r in module["Replace"]}
    assert replaced == {(old.strip(), *new.split()) for old, new in
                        (r.split("=>") for r in manifest["replaces"])}


def test_the_build_has_what_the_configs_name_and_nothing_adot_lacks():
    result = built("components")
    assert result.returncode == 0, result.stderr
    have = {kind: {c["name"] for c in yaml.safe_load(result.stdout)[kind]} for kind in KINDS}
    for kind in KINDS:
        assert have[kind] <= ADOT_COMPONENTS[kind], f"{kind} ADOT v0.49.0 lacks: {have[kind] - ADOT_COMPONENTS[kind]}"
        used = set().union(*(component_types(yaml.safe_load(c.read_text()), kind) for c in (ECS_CONFIG, LOCAL_CONFIG)))
        assert used == have[kind], f"{kind}: the configs name {sorted(used)}, the build has {sorted(have[kind])}"


@pytest.mark.parametrize("config", [ECS_CONFIG, LOCAL_CONFIG], ids=lambda p: p.name)
def test_the_collector_accepts_the_shipped_config(config):
    # What ECS gives the sidecar (infra/ecs.tf: collector_environment) and the task role's credentials.
    env = {**AWS_ENV, "AWS_EC2_METADATA_DISABLED": "true",
           "AMP_REMOTE_WRITE_URL": "https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-1/api/v1/remote_write"}
    result = built("validate", f"--config=file:{config}", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
