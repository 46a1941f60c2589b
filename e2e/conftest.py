"""The black-box suite's shared fixtures: the release binary on free loopback ports, the tools it
lists, one ECS task with its collector. What they build on is in support.py."""
from __future__ import annotations

import pytest

from ecs_sidecar import running_ecs_task
from mcp_http import tool_names
from support import EXAMPLE_TOOLS, Server, start_server


@pytest.fixture
def server_factory(tmp_path):
    """Start servers with custom environment; all are stopped at the end of the test."""
    started: list[Server] = []

    def make(env: dict | None = None, **kw) -> Server:
        s = start_server(tmp_path, env, **kw)
        started.append(s)
        return s

    yield make
    for s in started:
        s.stop(9)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One server on the embedded defaults (only the ports moved), shared by a test module."""
    s = start_server(tmp_path_factory.mktemp("server"))
    yield s
    s.stop(9)


@pytest.fixture(scope="session")
def listed_tools(tmp_path_factory) -> set[str]:
    """The tools the binary under test lists."""
    s = start_server(tmp_path_factory.mktemp("tools"))
    try:
        return tool_names(s.url)
    finally:
        s.stop(9)


@pytest.fixture
def example_tools(listed_tools):
    """For a check that calls the example tools: skipped when the service does not list them."""
    missing = EXAMPLE_TOOLS - listed_tools
    if missing:
        pytest.skip(f"the service does not list the example tools {sorted(missing)} "
                    "(generated without them)")


@pytest.fixture(scope="session")
def ecs_task(tmp_path_factory):
    """One ECS task on loopback with the real collector (e2e/ecs_sidecar.py), shared by the suites
    that read what AMP and X-Ray received."""
    with running_ecs_task(tmp_path_factory.mktemp("ecs-task")) as task:
        yield task
