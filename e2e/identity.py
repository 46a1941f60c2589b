"""Where a service's name appears: the template's names, and the places `cargo generate` renders."""
from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

TEMPLATE_NAME = "mcp" + "-server"  # spelt in two so that this file does not name it
# The template's names: the service's, its crate's as a Rust path or a log target, the old
# "service"/"template" spellings; not the metric names (the crate's name followed by _ or .).
TEMPLATE_NAMES = re.compile(r"mcp-serv(er|ice)|mcp_" r"server(?![_.])|mcp-" r"template")


def names_in(root: Path, pattern: re.Pattern) -> dict[str, list[str]]:
    """Files (relative paths) whose name or text matches, with the matching lines."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                            cwd=root, capture_output=True, text=True)
    files = (listed.stdout.split() if listed.returncode == 0 else
             [str(p.relative_to(root)) for p in root.rglob("*")
              if p.is_file() and not {"target", ".git", "node_modules"} & set(p.parts)])
    found = {}
    for rel in files:
        path = root / rel
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        lines = [line.strip() for line in text.splitlines() if pattern.search(line)]
        if pattern.search(rel):
            lines.insert(0, f"(file name) {rel}")
        if lines:
            found[rel] = lines
    return found


def identity_places(root: Path) -> list[str]:
    config = tomllib.loads((root / "cargo-generate.toml").read_text())
    return config["template"]["include"]
