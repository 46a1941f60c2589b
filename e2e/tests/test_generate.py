"""`cargo generate` makes a new service that builds, tests, answers and carries only its own name;
`just new-tool` and `just upgrade-platform` work on it. The template's own test: the generator
deletes this file from what it generates.

Cost: the generated services build into the suite's build cache (CARGO_TARGET_DIR, same profile
and features), so no dependency is compiled twice. Both are generated at one fixed path, one after
the other, and their platform/ and smoke/ (the template's, byte for byte) take the template's file
times: cargo compiles those crates once for both, and again only when the template's change. The
service without the example tools also takes the new tool and the upgrade, so that each
project's service crate is built once.
"""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from identity import TEMPLATE_NAMES, names_in
from mcp_http import call_tool, list_tools, tool_names
from support import EXAMPLE_TOOLS, ROOT, start_server

NAME = "acme-weather"
# Added with `just new-tool`, one after the other.
NEW_TOOLS = ("forecast", "tide_table")
CACHE = Path(os.environ.get("MCP_CACHE", Path.home() / ".cache/mcp-platform"))
CARGO_GENERATE = os.environ.get("CARGO_GENERATE", str(CACHE / "cargo-generate/bin/cargo-generate"))
# Fixed, because cargo's build hashes of path crates include their path.
WORK = CACHE / "generated"
SHARED_CRATES = ("platform", "smoke")
OFFLINE_CHECKS = ["e2e/tests/test_identity.py", "e2e/tests/test_dashboards_static.py",
                  "e2e/tests/test_infra_consistency.py", "e2e/tests/test_infra_static.py"]


def run(cmd: list[str], cwd: Path, timeout: float = 1800, **env: str) -> str:
    # The generated project's scripts find their own binaries and name; the template's must not leak in.
    full_env = {k: v for k, v in os.environ.items()
                if k not in ("MCP_SERVER_BIN", "MCP_SMOKE_BIN", "MCP_SERVICE_NAME")}
    proc = subprocess.run(cmd, cwd=cwd, env={**full_env, **env}, capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, f"{shlex.join(cmd)}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc.stdout


def files(root: Path) -> list[Path]:
    return sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())


def share_the_template_builds(project: Path):
    """platform/ and smoke/ are the template's; their files take its times (see the module doc)."""
    for crate in SHARED_CRATES:
        assert files(project / crate) == files(ROOT / crate), crate
        for rel in files(ROOT / crate):
            ours, theirs = ROOT / crate / rel, project / crate / rel
            assert theirs.read_bytes() == ours.read_bytes(), theirs
            stat = ours.stat()
            os.utime(theirs, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def generate(*defines: str) -> Path:
    if not Path(CARGO_GENERATE).exists():
        pytest.fail(f"{CARGO_GENERATE} is missing: scripts/bootstrap.sh installs it")
    project = WORK / NAME
    shutil.rmtree(project, ignore_errors=True)
    WORK.mkdir(parents=True, exist_ok=True)
    run([CARGO_GENERATE, "generate", "--path", str(ROOT), "--destination", str(WORK), "--name", NAME,
         "--silent", "--vcs", "none", *(arg for d in defines for arg in ("--define", d))], WORK)
    share_the_template_builds(project)
    return project


def binaries(project: Path) -> tuple[str, str]:
    release = Path(os.environ.get("CARGO_TARGET_DIR", project / "target"),
                   os.environ.get("CARGO_BUILD_TARGET", ""), "release")
    return str(release / NAME), str(release / "mcp-smoke")


def build_and_test(project: Path, service_tests: bool = True) -> tuple[str, str]:
    """What the project's `scripts/test.sh` does first: its name into Cargo.lock, the binaries,
    the service's tests (`service/tests/it`; its binary's unit tests are echo's, which the
    template's own run covers, and each release test binary is minutes of link-time LTO).
    `service_tests=False` when the service's tests are the template's own, which its run passed."""
    run(["bash", "-c", '. scripts/env.sh && grep -qx "name = \\"$MCP_SERVICE_NAME\\"" Cargo.lock '
        '|| cargo update --workspace --quiet'], project)
    assert f'name = "{NAME}"' in (project / "Cargo.lock").read_text(), "the new name reaches Cargo.lock"
    tests = f" && cargo test --release --locked -p {NAME} --test it" if service_tests else ""
    run(["bash", "-c", f". scripts/env.sh && cargo build --release --locked --workspace --bins{tests}"],
        project)
    return binaries(project)


def check_served(project: Path, tools: set[str]):
    """The release binary serves `tools` under its name, the smoke client passes against it, no
    name of the template is left, and the project's offline infra/dashboard checks pass."""
    assert not names_in(project, TEMPLATE_NAMES), "a name of the template is left"
    server_bin, smoke_bin = binaries(project)
    server = start_server(project.parent, binary=server_bin)
    try:
        assert tool_names(server.url) == tools
        smoke = run([smoke_bin, server.url], project)
        assert smoke.count("pong! taskId=local") == 2, smoke
        init = requests.post(server.url, timeout=10, json={
            "jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                       "clientInfo": {"name": "test", "version": "0"}}},
            headers={"Accept": "application/json, text/event-stream"})
        assert init.json()["result"]["serverInfo"]["name"] == NAME
    finally:
        server.stop()
    run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *OFFLINE_CHECKS], project,
        MCP_SERVER_BIN=server_bin, MCP_SMOKE_BIN=smoke_bin)


def test_without_the_examples_a_changed_tool_a_platform_upgrade_and_a_new_tool():
    project = generate("keep_example_tools=false", "aws_region=eu-west-1",
                       "domain_name=mcp.acme.example", "description=Weather for Acme's agents")
    assert not {f"service/src/tools/{t}.rs" for t in EXAMPLE_TOOLS} & {str(p) for p in files(project)}
    variables = (project / "infra/variables.tf").read_text()
    assert 'default     = "eu-west-1"' in variables and 'default = "mcp.acme.example"' in variables
    assert f"# {NAME}\n\nWeather for Acme's agents\n" in (project / "README.md").read_text()

    # The team changes a tool; the platform here has drifted; the upgrade restores the platform
    # from the template and leaves the team's files alone.
    ping = project / "service/src/tools/ping.rs"
    ping.write_text(ping.read_text().replace('"Health probe: ', '"Health probe (the team\'s words): '))
    lib = project / "platform/src/lib.rs"
    lib.write_text("// drifted\n" + lib.read_text())
    team = {p: (project / "service" / p).read_bytes() for p in files(project / "service")}
    run(["scripts/upgrade-platform.sh", str(ROOT)], project)
    assert {p: (project / "service" / p).read_bytes() for p in files(project / "service")} == team
    share_the_template_builds(project)  # fails unless platform/ and smoke/ are the template's again

    # `just new-tool` twice in a row: each adds its file, its lines above the markers, its test
    # module; each builds and its test passes.
    for name in NEW_TOOLS:
        run(["scripts/new-tool.sh", name], project)
    server_bin, _ = build_and_test(project)
    check_served(project, {"ping", *NEW_TOOLS})
    server = start_server(project.parent, binary=server_bin)
    try:
        assert next(t for t in list_tools(server.url) if t["name"] == "ping")["description"].startswith(
            "Health probe (the team's words): ")
        for times, name in enumerate(NEW_TOOLS, start=2):
            answer = call_tool(server.url, name, {"input": "sunny", "times": times}).json()
            assert answer["result"]["structuredContent"] == {"output": " ".join(["sunny"] * times),
                                                              "times": times}, answer
        # The platform checks the arguments against the tool's schema before the tool runs.
        refused = call_tool(server.url, NEW_TOOLS[-1], {"input": ""}).json()["result"]
        assert refused["isError"] is True and "/input" in refused["content"][0]["text"], refused
        metrics = requests.get(server.metrics_url, timeout=5).text
        assert all(f'gen_ai_tool_name="{name}"' in metrics for name in NEW_TOOLS), metrics
    finally:
        server.stop()


def test_with_the_examples():
    project = generate()
    # Its service is the template's renamed: what generation can break is the name, which the
    # build and the checks below see; its tests are the template's, passed by the template's run.
    build_and_test(project, service_tests=False)
    check_served(project, {"ping"} | EXAMPLE_TOOLS)
