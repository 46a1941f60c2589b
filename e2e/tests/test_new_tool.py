"""`just new-tool` (scripts/new-tool.sh) changes nothing when it cannot finish: a bad or taken name,
a missing marker line, a file it cannot format. Run on a copy of the service's tool and test
folders; test_generate.py adds tools for real (two in a row) and builds and calls them."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from support import ROOT

TEST_MARKER = "// `just new-tool` adds a tool's test module above this line.\n"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The script and the folders it edits, as in the project."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts/new-tool.sh", tmp_path / "scripts")
    for folder in ("service/src/tools", "service/tests/it"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    return tmp_path


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def new_tool(project: Path, name: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(project / "scripts/new-tool.sh"), name], cwd=project,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("name, status, reason", [
    ("Forecast", 2, "usage"),
    ("fore__cast", 2, "usage"),
    ("forecast_", 2, "usage"),
    ("match", 2, "is a Rust keyword"),
    ("ping", 1, "service/src/tools/ping.rs already exists"),
    ("common", 1, "service/tests/it/common.rs already exists"),
    ("new", 1, "Toolbox already has a function named new"),
])
def test_a_bad_or_taken_name_changes_nothing(project, name, status, reason):
    before = snapshot(project)
    run = new_tool(project, name)
    assert (run.returncode, reason in run.stderr) == (status, True), run.stderr
    assert snapshot(project) == before


def test_a_missing_or_doubled_marker_changes_nothing(project):
    main = project / "service/tests/it/main.rs"
    assert main.read_text().count(TEST_MARKER) == 1
    for text in (main.read_text().replace(TEST_MARKER, ""), main.read_text() + TEST_MARKER):
        main.write_text(text)
        before = snapshot(project)
        run = new_tool(project, "forecast")
        assert run.returncode == 1 and "must hold the line" in run.stderr, run.stderr
        assert snapshot(project) == before


def test_a_failure_after_the_tool_file_is_written_changes_nothing(project):
    """mod.rs is formatted after the tool's files are staged: a syntax error there stops the run
    with those files written, and still nothing has changed (nor is a temporary file left)."""
    tools = project / "service/src/tools/mod.rs"
    tools.write_text(tools.read_text() + "\nfn broken( {\n")
    before = snapshot(project)
    run = new_tool(project, "forecast")
    assert run.returncode == 1 and "rustfmt cannot format what would be service/src/tools/mod.rs" \
        in run.stderr, run.stderr
    assert snapshot(project) == before
