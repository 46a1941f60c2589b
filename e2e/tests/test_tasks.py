"""Tasks that any replica answers: three service processes share a DynamoDB stand-in (moto in
server mode) behind HAProxy round-robin. A task made on one replica is polled, answered,
cancelled and read through the others; another principal cannot see or cancel it; a task
outlives its TTL; the replica running tasks gets SIGTERM mid-way."""
from __future__ import annotations

import signal

import pytest

from support import start_server
from tasks_cluster import access_lines, get_task, rpc, running_cluster, start_report, wait_for, wait_status


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with running_cluster(tmp_path_factory.mktemp("tasks")) as c:
        yield c


def test_a_task_made_on_one_replica_is_answered_and_read_through_the_others(cluster):
    a, b, c = cluster["replicas"]
    alice = cluster["alice"]
    created = start_report(a.url, alice, seconds=1, confirm=True)
    task_id = created["taskId"]
    assert created["status"] == "working" and created["pollIntervalMs"] == 200 and created["ttlMs"] > 0
    # Read on B: the work on A reaches the question; answer it on C.
    asking = wait_status(b.url, task_id, {"input_required"}, alice)
    assert asking["inputRequests"]["publish"]["method"] == "elicitation/create"
    ack = rpc(c.url, "tasks/update", {"taskId": task_id, "inputResponses": {
        "publish": {"action": "accept", "content": {"publish": True}},
        "never-asked": {"action": "accept"}}}, alice)
    assert ack["result"] == {"resultType": "complete"}, ack
    done = wait_status(b.url, task_id, {"completed", "failed", "cancelled"}, alice)
    assert done["status"] == "completed", done
    assert done["result"]["structuredContent"]["published"] is True
    assert done["result"]["structuredContent"]["task_id"] == task_id
    # The work ran on A only; B and C answered from the store, and their access lines name the task.
    assert "task ended" in "\n".join(l for l in a.log().splitlines() if task_id in l)
    assert not any("task ended" in l for l in b.log().splitlines() if task_id in l)
    assert any('"mcp.method":"tasks/get"' in l for l in access_lines(b, task_id))
    assert any('"mcp.method":"tasks/update"' in l for l in access_lines(c, task_id))


def test_a_cancel_on_another_replica_stops_the_work(cluster):
    a, b, c = cluster["replicas"]
    alice = cluster["alice"]
    task_id = start_report(a.url, alice, seconds=600)["taskId"]
    wait_status(c.url, task_id, {"working"}, alice)
    assert rpc(b.url, "tasks/cancel", {"taskId": task_id}, alice)["result"] == {"resultType": "complete"}
    assert get_task(c.url, task_id, alice)["result"]["status"] == "cancelled"
    # A's runner reads the cancel at its next poll and drops the work.
    wait_for("A to stop the work", lambda: any(
        "task ended" in l and '"status":"cancelled"' in l for l in a.log().splitlines() if task_id in l))
    # Cancelling again, or answering, changes nothing.
    assert rpc(c.url, "tasks/cancel", {"taskId": task_id}, alice)["result"] == {"resultType": "complete"}
    assert get_task(a.url, task_id, alice)["result"]["status"] == "cancelled"


def test_round_robin_through_the_proxy(cluster):
    alice, url = cluster["alice"], cluster["proxy"]
    task_id = start_report(url, alice, seconds=1)["taskId"]
    done = wait_status(url, task_id, {"completed", "failed", "cancelled"}, alice)
    assert done["status"] == "completed", done
    assert 'built in 1 s' in done["result"]["content"][0]["text"]
    served = [r for r in cluster["replicas"] if access_lines(r, task_id)]
    assert len(served) >= 2, "round-robin spread the task's requests over the replicas"


def test_another_principal_neither_sees_nor_cancels_a_task(cluster):
    a, b, _ = cluster["replicas"]
    task_id = start_report(a.url, cluster["alice"], seconds=600)["taskId"]
    for method, params in [("tasks/get", {}), ("tasks/cancel", {}),
                           ("tasks/update", {"inputResponses": {"publish": {"action": "accept"}}})]:
        answer = rpc(b.url, method, {"taskId": task_id, **params}, cluster["bob"])
        assert answer["error"]["code"] == -32602, answer
        assert answer["error"]["message"] == "Failed to retrieve task: Task not found"
    assert get_task(b.url, task_id, cluster["alice"])["result"]["status"] == "working"
    assert rpc(b.url, "tasks/cancel", {"taskId": task_id}, cluster["alice"])["result"]
    unknown = get_task(b.url, "no-such-task", cluster["alice"])
    assert unknown["error"]["code"] == -32602


def test_a_client_without_the_extension_gets_a_plain_call(cluster):
    a = cluster["replicas"][0]
    answer = rpc(a.url, "tools/call", {"name": "report", "arguments": {"title": "t", "seconds": 0}},
                 cluster["alice"], declare=False)
    assert answer["result"]["structuredContent"]["published"] is False
    assert "task_id" not in answer["result"]["structuredContent"]
    refused = rpc(a.url, "tasks/get", {"taskId": "x"}, cluster["alice"], declare=False)
    assert refused["error"]["code"] == -32021, refused


def test_arguments_that_break_the_schema_are_answered_at_once_and_make_no_task(cluster):
    a = cluster["replicas"][0]
    created = lambda: a.log().count('"message":"task created"')  # noqa: E731
    before = created()
    answer = rpc(a.url, "tools/call", {"name": "report", "arguments": {"title": "", "seconds": -5}},
                 cluster["alice"])
    result = answer["result"]
    assert result["resultType"] == "complete" and result["isError"] is True, answer
    assert "/seconds" in result["content"][0]["text"] and "/title" in result["content"][0]["text"]
    assert created() == before, "no task is made for a call the tool never runs"


def test_a_task_past_its_ttl_expires(cluster):
    short = start_server(cluster["tmp"], {**cluster["env"], "APP__TASKS__TTL_MS": "1500"})
    try:
        a = cluster["replicas"][0]
        alice = cluster["alice"]
        created = start_report(short.url, alice, seconds=600)
        assert created["ttlMs"] == 1500
        task_id = created["taskId"]

        def expired():
            answer = get_task(a.url, task_id, alice)
            return answer.get("error", {}).get("message") == "Failed to retrieve task: Task has expired"
        wait_for("the task to expire", expired)
        # The replica running it stops the work and records why.
        wait_for("the work to stop", lambda: any(
            "task ended" in l and '"status":"failed"' in l for l in short.log().splitlines() if task_id in l))
    finally:
        short.stop(9)


def test_sigterm_lets_running_tasks_finish_within_the_grace_and_fails_the_rest(cluster):
    env = {**cluster["env"], "APP__SHUTDOWN__GRACE_MS": "5000"}
    doomed = start_server(cluster["tmp"], env)
    a = cluster["replicas"][0]
    alice = cluster["alice"]
    waiting = start_report(doomed.url, alice, seconds=0, confirm=True)["taskId"]
    endless = start_report(doomed.url, alice, seconds=600)["taskId"]
    wait_status(a.url, waiting, {"input_required"}, alice)
    doomed.proc.send_signal(signal.SIGTERM)
    # Draining, the replica still runs its tasks: the answer given to A reaches the work there.
    rpc(a.url, "tasks/update", {"taskId": waiting, "inputResponses": {
        "publish": {"action": "accept", "content": {"publish": True}}}}, alice)
    finished = wait_status(a.url, waiting, {"completed", "failed", "cancelled"}, alice)
    assert finished["status"] == "completed", finished
    # What still runs at the end of the grace period is failed with a reason the client reads.
    failed = wait_status(a.url, endless, {"completed", "failed", "cancelled"}, alice)
    assert failed["status"] == "failed", failed
    assert "shut down before it finished" in failed["error"]["message"]
    assert failed["error"]["code"] == -32603
    assert doomed.proc.wait(30) == 0


def test_a_store_that_hangs_at_shutdown_costs_one_store_timeout_then_the_replica_exits(cluster):
    timing = {"APP__SHUTDOWN__DRAIN_DELAY_MS": "0", "APP__SHUTDOWN__GRACE_MS": "1000",
              "APP__TASKS__STORE_TIMEOUT_MS": "1000"}
    doomed = start_server(cluster["tmp"], {**cluster["env"], **timing})
    alice = cluster["alice"]
    task_id = start_report(doomed.url, alice, seconds=600)["taskId"]
    cluster["moto"].send_signal(signal.SIGSTOP)
    try:
        doomed.proc.send_signal(signal.SIGTERM)
        # What infra/ecs.tf's stopTimeout gives these timings: drain + grace + one store timeout,
        # the telemetry flush budget (5 s) and 1 s slack; ECS would SIGKILL it after that.
        code = doomed.proc.wait(0 + 1 + 1 + 5 + 1)
    finally:
        cluster["moto"].send_signal(signal.SIGCONT)
    assert code == 0
    lost = [l for l in doomed.log().splitlines() if task_id in l and "task state not written" in l]
    assert lost and '"level":"ERROR"' in lost[-1], doomed.log()[-3000:]
    # Never lost: the task reads as last recorded until it expires, or as failed when the write
    # that timed out reached the store after all (moto, thawed, serves what it had been sent).
    assert get_task(cluster["replicas"][0].url, task_id, alice)["result"]["status"] in {"working", "failed"}


def test_the_task_is_a_span_linked_to_its_call_with_the_store_calls_below(cluster):
    """One exported trace: the tools/call span with the store's PutItem under it; the task's own
    span (a new trace) linked to that call, with the store's reads and writes under it."""
    from otlp_receiver import running_receiver
    with running_receiver(cluster["tmp"]) as receiver:
        traced = start_server(cluster["tmp"], {
            **cluster["env"], "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.http_endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", "OTEL_TRACES_SAMPLER": "always_on"})
        try:
            task_id = start_report(traced.url, cluster["alice"], seconds=1)["taskId"]
            wait_status(traced.url, task_id, {"completed"}, cluster["alice"])
            [task] = receiver.wait_for(lambda s: s.name == "task report"
                                       and s.attributes.get("mcp.task.id") == task_id, "task report")
            spans = receiver.wait_for(lambda s: s.trace_id == task.trace_id and s.name.startswith("DynamoDB."),
                                      "store calls in the task's trace")
        finally:
            traced.stop()
    everything = receiver.spans()
    [call] = [s for s in everything if s.name == "tools/call report"]
    assert task.trace_id != call.trace_id and task.parent_id in ("", "0" * 16)
    assert any(call.span_id in " ".join(link.values()) for link in task.links), task.links
    put = [s for s in everything if s.name == "DynamoDB.PutItem" and s.trace_id == call.trace_id]
    assert put and put[0].parent_id == call.span_id, "the task was stored inside the call's span"
    store_calls = {s.name for s in spans if s.parent_id == task.span_id}
    assert {"DynamoDB.GetItem", "DynamoDB.UpdateItem"} <= store_calls, store_calls
