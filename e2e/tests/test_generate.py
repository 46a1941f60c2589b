"""`cargo generate` makes a new service that builds, tests, answers and carries only its own name;
`just new-tool` and `just upgrade-platform` work on it. The template's own test: the generator
deletes this file from what it generates.

Cost: the generated services share the suite's build cache (CARGO_TARGET_DIR). Both are generated
at the same path one after the other, and their platform/ and smoke/ (identical to the
template's, which the upgrade check asserts) get one fixed old mtime, so cargo builds those
crates once for both.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from conftest import ROOT, free_port, start_server
from mcp_http import call_tool
from identity import TEMPLATE_NAMES, names_in

NAME = "acme-weather"
CACHE = Path(os.environ.get("MCP_CACHE", Path.home() / ".cache/mcp-platform"))
CARGO_GENERATE = os.environ.get("CARGO_GENERATE", str(CACHE / "cargo-generate/bin/cargo-generate"))
SHARED_CRATES = ("platform", "smoke")
OLD_MTIME = 946684800  # 2000-01-01: older than any build output in the cache


def run(cmd: list[str], cwd: Path, timeout: float = 1800, **env: str) -> str:
    # The generated project's scripts find their own binaries and name; the template's must not leak in.
    full_env = {k: v for k, v in os.environ.items()
                if k not in ("MCP_SERVER_BIN", "MCP_SMOKE_BIN", "MCP_SERVICE_NAME")}
    proc = subprocess.run(cmd, cwd=cwd, env={**full_env, **env}, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc.stdout


def generate(work: Path, *defines: str) -> Path:
    if not Path(CARGO_GENERATE).exists():
        pytest.fail(f"{CARGO_GENERATE} is missing: scripts/bootstrap.sh installs it")
    project = work / NAME
    shutil.rmtree(project, ignore_errors=True)
    args = [arg for d in defines for arg in ("--define", d)]
    run([CARGO_GENERATE, "generate", "--path", str(ROOT), "--name", NAME, "--silent",
         "--vcs", "none", *args], cwd=work)
    for crate in SHARED_CRATES:
        for path in (project / crate).rglob("*"):
            os.utime(path, (OLD_MTIME, OLD_MTIME))
    return project


def binaries(project: Path) -> tuple[str, str]:
    target = os.environ.get("CARGO_TARGET_DIR", str(project / "target"))
    triple = os.environ.get("CARGO_BUILD_TARGET", "")
    release = Path(target) / triple / "release"
    return str(release / NAME), str(release / "mcp-smoke")


def build_and_check(project: Path) -> tuple[str, str]:
    """What `scripts/test.sh` does first (the lock, the build, the Rust tests), then the smoke
    client against the release binary and the offline consistency checks."""
    lock = (project / "Cargo.lock").read_text()
    run(["bash", "-c", '. scripts/env.sh && grep -qx "name = \\"$MCP_SERVICE_NAME\\"" Cargo.lock '
         '|| cargo update --workspace --quiet'], project)
    assert lock != (project / "Cargo.lock").read_text(), "the new name reaches Cargo.lock"
    assert not names_in(project, TEMPLATE_NAMES), "a name of the template is left"
    run(["bash", "-c", ". scripts/env.sh && cargo build --release --locked --workspace --bins "
         f"&& cargo test --release --locked -p {NAME}"], project)
    server_bin, smoke_bin = binaries(project)
    server = start_server(project.parent, binary=server_bin)
    try:
        smoke = run([smoke_bin, server.url], project)
        assert "pong! taskId=local" in smoke, smoke
        info = call_tool(server.url, "ping").json()
        assert "pong!" in info["result"]["content"][0]["text"]
    finally:
        server.stop()
    run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "e2e/tests/test_identity.py", "e2e/tests/test_dashboards_static.py",
         "e2e/tests/test_infra_consistency.py"], project,
        MCP_SERVER_BIN=server_bin, MCP_SMOKE_BIN=smoke_bin)
    return server_bin, smoke_bin


def tool_names(url: str) -> set[str]:
    body = requests.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                         headers={"Accept": "application/json, text/event-stream",
                                  "MCP-Protocol-Version": "2025-11-25"}, timeout=10).json()
    return {t["name"] for t in body["result"]["tools"]}


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("generated")


def test_without_the_example_tools_only_ping_is_served(work):
    project = generate(work, "keep_example_tools=false", "aws_region=eu-west-1",
                       "domain_name=mcp.acme.example", "description=Weather for Acme's agents")
    assert not (project / "service/src/tools/echo.rs").exists()
    variables = (project / "infra/variables.tf").read_text()
    assert 'default     = "eu-west-1"' in variables and 'default = "mcp.acme.example"' in variables
    assert (project / "README.md").read_text().startswith(
        "<!--")  # the rendered README: its title line follows
    assert f"# {NAME}\n\nWeather for Acme's agents\n" in (project / "README.md").read_text()
    server_bin, _ = build_and_check(project)
    server = start_server(project.parent, binary=server_bin)
    try:
        assert tool_names(server.url) == {"ping"}
    finally:
        server.stop()


def test_with_the_examples_a_new_tool_and_a_platform_upgrade(work):
    project = generate(work)
    server_bin, _ = build_and_check(project)

    # `just new-tool`: the file, its line, its test; it builds and the test passes.
    run(["bash", "-c", "scripts/new-tool.sh forecast"], project)
    server = start_server(project.parent, binary=server_bin)
    try:
        assert {"ping", "echo", "whoami", "forecast"} <= tool_names(server.url)
        answer = call_tool(server.url, "forecast", {"input": "sunny", "times": 2}).json()
        assert answer["result"]["structuredContent"] == {"output": "sunny sunny", "times": 2}
        metrics = requests.get(server.metrics_url, timeout=5).text
        assert 'gen_ai_tool_name="forecast"' in metrics
    finally:
        server.stop()

    # The team changes a tool; the platform here has drifted; the upgrade restores the platform.
    echo = project / "service/src/tools/echo.rs"
    echo.write_text(echo.read_text().replace('"Echo text back', '"Echo text back (changed by the team)'))
    (project / "platform/src/lib.rs").write_text("// drifted\n" + (project / "platform/src/lib.rs").read_text())
    team_files = {p: p.read_text() for p in (project / "service").rglob("*") if p.is_file()}
    run(["bash", "-c", f"scripts/upgrade-platform.sh {ROOT}"], project)
    assert {p: p.read_text() for p in (project / "service").rglob("*") if p.is_file()} == team_files
    for crate in SHARED_CRATES:
        theirs = sorted(p.relative_to(project / crate) for p in (project / crate).rglob("*") if p.is_file())
        ours = sorted(p.relative_to(ROOT / crate) for p in (ROOT / crate).rglob("*") if p.is_file())
        assert theirs == ours
        for rel in ours:
            assert (project / crate / rel).read_bytes() == (ROOT / crate / rel).read_bytes(), rel
            os.utime(project / crate / rel, (OLD_MTIME, OLD_MTIME))
    assert not names_in(project, TEMPLATE_NAMES)
    run(["bash", "-c", ". scripts/env.sh && cargo build --release --locked --workspace --bins "
         f"&& cargo test --release --locked -p {NAME}"], project)
    server = start_server(project.parent, binary=server_bin)
    try:
        assert "forecast" in tool_names(server.url)
    finally:
        server.stop()
