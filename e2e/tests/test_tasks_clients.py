"""The official SDK clients, which nobody here wrote, drive `report` tasks end to end (the Tasks
extension, io.modelcontextprotocol/tasks, protocol 2026-07-28) against three replicas sharing the
DynamoDB stand-in behind HAProxy round-robin, so each task's polls land on several replicas:

- TypeScript, @modelcontextprotocol/client v2 (e2e/clients/ts-task-client.mjs): it has no Tasks
  API and refuses a `resultType: "task"` tools/call result, so the script reads that result as it
  passes and sends tasks/get, tasks/update and tasks/cancel through `client.request`.
- Python, mcp 2.x: `TasksExtension` below is a client extension (`Client(extensions=[...])`) whose
  claim on `resultType: "task"` polls tasks/get through the SDK's session, answers input requests
  with the client's own elicitation callback and tasks/update, and hands `call_tool` the final
  CallToolResult (which the SDK then checks against the tool's output schema).

Each runs one task that asks to publish (answered: accept) to its result, and one it cancels. On
the handshake era (2025-11-25), which has no Tasks extension, the same Python client gets a plain
call."""
from __future__ import annotations

import json
import subprocess
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import anyio
import httpx2
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.extension import ClaimContext, ClientExtension, ResultClaim
from mcp.client.session import ClientRequestContext, ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from mcp_http import LEGACY, MODERN
from support import NODE_BIN, ROOT
from tasks_cluster import TASKS_EXTENSION, access_lines, running_cluster

TS_TASK_CLIENT = ROOT / "e2e/clients/ts-task-client.mjs"
TERMINAL = {"completed", "failed", "cancelled"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with running_cluster(tmp_path_factory.mktemp("tasks-clients")) as c:
        yield c


def replicas_serving(cluster, task_id: str) -> int:
    """How many replicas answered a request about `task_id` (their access logs name it)."""
    return sum(1 for r in cluster["replicas"] if access_lines(r, task_id))


def assert_published(result: dict, task_id: str, title: str):
    """The report's CallToolResult (wire form): built, published, by the task `task_id`."""
    assert result["isError"] is False, result
    structured = result["structuredContent"]
    assert structured["published"] is True, structured
    assert structured["task_id"] == task_id, structured
    assert structured["title"] == title and structured["seconds"] == 1, structured
    assert result["content"][0]["text"].endswith(", published"), result


# --- TypeScript -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ts_run(cluster) -> dict:
    cmd = [NODE_BIN, str(TS_TASK_CLIENT), "--url", cluster["proxy"], "--token", cluster["alice"]]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"ts-task-client failed:\n{proc.stdout}\n{proc.stderr}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_ts_sdk_negotiates_2026_and_sees_the_extension(ts_run):
    assert ts_run["protocolVersion"] == MODERN
    assert TASKS_EXTENSION in ts_run["serverExtensions"]
    # What we worked around: the SDK refuses the task result itself (a typed error, no result).
    assert ts_run["refusal"]["code"] == "UNSUPPORTED_RESULT_TYPE", ts_run["refusal"]


def test_ts_sdk_answers_a_task_and_reads_its_result(ts_run, cluster):
    run = ts_run["complete"]
    created, task = run["created"], run["task"]
    assert created["status"] == "working" and created["pollIntervalMs"] == 200, created
    assert run["statuses"][:2] == ["working", "input_required"], run["statuses"]
    assert run["statuses"][-1] == "completed", run["statuses"]
    assert run["question"]["method"] == "elicitation/create", run["question"]
    assert list(run["answered"]) == ["publish"], run["answered"]
    assert task["taskId"] == created["taskId"] and task["status"] == "completed", task
    assert_published(task["result"], created["taskId"], "ts sdk")
    assert replicas_serving(cluster, created["taskId"]) >= 2, "round-robin spread the task's requests"


def test_ts_sdk_cancels_a_task(ts_run):
    run = ts_run["cancel"]
    assert run["statuses"] == ["working", "cancelled"], run["statuses"]
    assert run["ack"] == {}, run["ack"]
    assert run["task"]["taskId"] == run["created"]["taskId"]
    assert run["task"]["status"] == "cancelled" and "result" not in run["task"], run["task"]


# --- Python ---------------------------------------------------------------------------------

TaskStatus = Literal["working", "input_required", "completed", "failed", "cancelled"]


class CreateTaskResult(types.Result):
    """What tools/call answers when the server runs the call as a task."""

    result_type: Literal["task"]
    task_id: str
    status: TaskStatus
    status_message: str | None = None
    poll_interval_ms: int | None = None
    ttl_ms: int | None = None


class DetailedTask(types.Result):
    """What tasks/get answers: the task, with what its status carries."""

    task_id: str
    status: TaskStatus
    status_message: str | None = None
    poll_interval_ms: int | None = None
    input_requests: types.InputRequests | None = None
    result: types.CallToolResult | None = None
    error: types.ErrorData | None = None


class TaskParams(types.RequestParams):
    task_id: str


class UpdateTaskParams(TaskParams):
    input_responses: types.InputResponses


class GetTaskRequest(types.Request[TaskParams, Literal["tasks/get"]]):
    method: Literal["tasks/get"] = "tasks/get"
    name_param = "taskId"


class UpdateTaskRequest(types.Request[UpdateTaskParams, Literal["tasks/update"]]):
    method: Literal["tasks/update"] = "tasks/update"
    name_param = "taskId"


class CancelTaskRequest(types.Request[TaskParams, Literal["tasks/cancel"]]):
    method: Literal["tasks/cancel"] = "tasks/cancel"
    name_param = "taskId"


class TaskCancelled(Exception):
    def __init__(self, task: DetailedTask):
        super().__init__(f"task {task.task_id} was cancelled")
        self.task = task


OnStatus = Callable[[ClientSession, CreateTaskResult | DetailedTask], Awaitable[None]]


class TasksExtension(ClientExtension):
    """The Tasks extension for the SDK's `Client`: a task result is followed to its end through
    the session, which stamps each request's `_meta` (version, client info, capabilities) and
    headers. `statuses` records, per task id, the statuses seen (the created one first, repeats
    folded); `on_status` is awaited with each task read before the next poll."""

    identifier = TASKS_EXTENSION

    def __init__(self, on_status: OnStatus | None = None):
        self.on_status = on_status
        self.statuses: dict[str, list[str]] = {}

    def claims(self):
        return [ResultClaim(result_type="task", model=CreateTaskResult, resolve=self.follow)]

    async def follow(self, created: CreateTaskResult, ctx: ClaimContext) -> types.CallToolResult:
        session, seen = ctx.session, self.statuses.setdefault(created.task_id, [created.status])
        answered: set[str] = set()
        task: CreateTaskResult | DetailedTask = created
        while task.status not in TERMINAL:
            if self.on_status:
                await self.on_status(session, task)
            await anyio.sleep((created.poll_interval_ms or 500) / 1000)
            task = await session.send_request(GetTaskRequest(params=TaskParams(task_id=created.task_id)),
                                              DetailedTask, ctx.read_timeout_seconds)
            if seen[-1] != task.status:
                seen.append(task.status)
            asked = {k: r for k, r in (task.input_requests or {}).items() if k not in answered}
            if task.status == "input_required" and asked:
                responses = {key: await answer(session, key, request) for key, request in asked.items()}
                await session.send_request(UpdateTaskRequest(params=UpdateTaskParams(
                    task_id=created.task_id, input_responses=responses)), types.EmptyResult)
                answered |= asked.keys()
        if task.status == "failed":
            raise MCPError.from_error_data(task.error or types.ErrorData(code=-32603, message="task failed"))
        if task.status == "cancelled":
            raise TaskCancelled(task)
        assert task.result is not None, f"completed task {task.task_id} without a result"
        return task.result

    @staticmethod
    async def cancel(session: ClientSession, task_id: str) -> None:
        await session.send_request(CancelTaskRequest(params=TaskParams(task_id=task_id)), types.EmptyResult)


async def answer(session: ClientSession, key: str, request: types.InputRequest) -> types.InputResponse:
    """An input request the task asks, answered by the client's own callbacks (as the SDK does for
    an input_required result)."""
    ctx = ClientRequestContext(session=session, request_id=key, meta=request.params.meta if request.params else None)
    reply = await session.dispatch_input_request(ctx, request)
    if isinstance(reply, types.ErrorData):
        raise MCPError.from_error_data(reply)
    return reply


async def accept_publish(_ctx: ClientRequestContext, params: types.ElicitRequestParams) -> types.ElicitResult:
    """The user says yes to publishing (the report's only question)."""
    assert "Publish the report" in params.message, params
    return types.ElicitResult(action="accept", content={"publish": True})


def run_client(cluster, scenario: Callable[[Client], Awaitable[Any]], *, mode: str = "auto",
               extensions: list[ClientExtension] | None = None) -> Any:
    """Runs `scenario` with a Python SDK client on the proxy, as alice; returns what it returns."""
    async def main():
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {cluster['alice']}"},
                                  timeout=httpx2.Timeout(30, read=60))
        async with http, Client(streamable_http_client(cluster["proxy"], http_client=http), mode=mode,
                                elicitation_callback=accept_publish, extensions=extensions) as client:
            return await scenario(client)
    return anyio.run(main)


@pytest.mark.parametrize("mode", ["auto", MODERN])
def test_python_sdk_answers_a_task_and_reads_its_result(cluster, mode):
    tasks = TasksExtension()

    async def scenario(client: Client):
        assert client.protocol_version == MODERN
        if mode == "auto":  # probed with server/discover: the server advertises the extension
            assert TASKS_EXTENSION in (client.server_capabilities.extensions or {})
        return await client.call_tool("report", {"title": "py sdk", "seconds": 1, "confirm": True})

    result = run_client(cluster, scenario, mode=mode, extensions=[tasks])
    assert isinstance(result, types.CallToolResult), result
    [(task_id, statuses)] = tasks.statuses.items()
    assert statuses[:2] == ["working", "input_required"] and statuses[-1] == "completed", statuses
    assert_published(result.model_dump(by_alias=True, mode="json", exclude_none=True), task_id, "py sdk")
    assert replicas_serving(cluster, task_id) >= 2, "round-robin spread the task's requests"


def test_python_sdk_cancels_a_task(cluster):
    cancelled: list[str] = []

    async def cancel_once_polled(session: ClientSession, task):
        if isinstance(task, DetailedTask) and task.status == "working" and not cancelled:
            await TasksExtension.cancel(session, task.task_id)
            cancelled.append(task.task_id)

    tasks = TasksExtension(on_status=cancel_once_polled)

    async def scenario(client: Client):
        with pytest.raises(TaskCancelled) as raised:
            await client.call_tool("report", {"title": "py sdk cancel", "seconds": 600})
        return raised.value.task

    task = run_client(cluster, scenario, extensions=[tasks])
    assert cancelled == [task.task_id]
    assert task.status == "cancelled" and task.result is None, task
    assert task.status_message == "cancelled by the client", task
    assert tasks.statuses[task.task_id] == ["working", "cancelled"], tasks.statuses


def test_python_sdk_on_the_handshake_era_gets_a_plain_call(cluster):
    """2025-11-25 has no Tasks extension: the SDK leaves the claim-bearing extension out of its
    capabilities, and the server runs the tool as a plain call."""
    tasks = TasksExtension()

    async def scenario(client: Client):
        assert client.protocol_version == LEGACY
        return await client.call_tool("report", {"title": "py sdk legacy", "seconds": 0})

    result = run_client(cluster, scenario, mode="legacy", extensions=[tasks])
    assert result.structured_content["published"] is False, result
    assert "task_id" not in result.structured_content, result
    assert tasks.statuses == {}
