"""The release binary in its container, run the way ECS Fargate runs the task: the Dockerfile's
image (distroless/static, the binary, its user, entrypoint and health check) started by runc with
a read-only root, no capabilities, Docker's minimal /dev, as PID 1, in a network namespace of its
own whose non-loopback task IP the ALB's health check and requests reach, beside an OTLP sidecar on
the task's loopback. Everything is read from the Dockerfile and infra/ (see e2e/ecs_task.py)."""
from __future__ import annotations

import json
import secrets
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from subprocess import CompletedProcess, Popen
from urllib.parse import urlsplit

import pytest
import requests

from ecs_task import (PUBLIC_HOST, RUNC, Container, Task, app_container, build_rootfs,
                      cannot_run_containers, read_image, task_environment, task_network)
from infra_hcl import Module
from infra_tools import service_defaults
from mcp_http import HEADERS, LEGACY, call_tool
from otlp_receiver import Receiver, running_receiver
from support import SERVER_BIN, SERVICE_NAME, SMOKE_BIN

# What a runtime's read-only root or missing files would make the service log.
WRITE_FAILURES = ("Read-only file system", "os error 30", "Permission denied", "os error 13",
                  "No such file or directory", "os error 2")


def _port(addr: str) -> int:
    return int(addr.rsplit(":", 1)[1])


def _seconds(docker_duration: str) -> int:
    assert docker_duration.endswith("s"), docker_duration
    return int(docker_duration[:-1])


@dataclass
class RunningTask:
    task: Task
    app: Container
    proc: Popen
    log_path: Path
    sidecar: Receiver
    healthcheck_before_start: CompletedProcess
    port: int
    admin_port: int
    container_def: dict

    @property
    def base(self) -> str:
        return f"http://{self.task.network.task_ip}:{self.port}"

    @property
    def alb_host(self) -> dict:
        """The ALB's health checker sends the target's address as Host."""
        return {"Host": f"{self.task.network.task_ip}:{self.port}"}

    @property
    def health_timeout(self) -> int:
        return self.container_def["healthCheck"]["timeout"]

    def healthcheck(self) -> tuple[int, float]:
        started = time.monotonic()
        done = self.app.exec(self.task.image.healthcheck, timeout=self.health_timeout + 5)
        return done.returncode, time.monotonic() - started

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def test_the_image_is_what_the_task_definition_runs():
    image, app, env = read_image(), app_container(), task_environment()
    assert app["user"] == image.user, "ECS's user overrides the image's: they must agree"
    assert app["readonlyRootFilesystem"] is True
    assert app["healthCheck"]["command"] == ["CMD", *image.healthcheck]
    for ecs_key, docker_key in [("interval", "interval"), ("timeout", "timeout"), ("retries", "retries"),
                                ("startPeriod", "start-period")]:
        docker_value = image.healthcheck_options[docker_key]
        assert app["healthCheck"][ecs_key] == (int(docker_value) if ecs_key == "retries"
                                               else _seconds(docker_value)), ecs_key
    # The image runs the server binary it holds, without a shell, and the probe is that binary.
    assert image.binaries[image.argv[0]] == image.binaries[image.healthcheck[0]] == SERVICE_NAME
    # ECS runs the image's entrypoint, command and working directory: the task overrides none.
    assert not {"entryPoint", "command", "workingDirectory"} & Module.load().locals["app_container"].keys()
    assert str(_port(env["APP__HTTP__ADDR"])) in image.exposed
    assert [m["containerPort"] for m in app["portMappings"]] == [_port(env["APP__HTTP__ADDR"])]


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    reason = cannot_run_containers()
    if reason:
        pytest.skip(reason)
    assert Path(RUNC).exists(), "runc is missing: scripts/bootstrap.sh installs it"
    assert Path(SERVER_BIN).is_file(), f"MCP_SERVER_BIN={SERVER_BIN} does not exist: build it first"
    image, container_def, env = read_image(), app_container(), task_environment()
    workdir = tmp_path_factory.mktemp("ecs-task")
    rootfs = workdir / "rootfs"
    build_rootfs(image, rootfs, {SERVICE_NAME: SERVER_BIN, "mcp-smoke": SMOKE_BIN})
    # The collector sidecar listens where the task definition points the app: its own loopback.
    otlp = urlsplit(env["OTEL_EXPORTER_OTLP_ENDPOINT"])
    assert otlp.hostname == "127.0.0.1", otlp
    with task_network() as network, \
            running_receiver(workdir, http_port=otlp.port, grpc_port=otlp.port - 1, netns=network) as sidecar:
        task = Task(image, rootfs, network, workdir, user=container_def["user"],
                    readonly_root=container_def["readonlyRootFilesystem"], env=env)
        # The probe while nothing listens yet: the same image, environment and network.
        timeout = container_def["healthCheck"]["timeout"]
        before = task.run_once("healthcheck-before", image.healthcheck, timeout=timeout + 5)
        app = task.container("app")
        log_path = workdir / "app.log"
        with open(log_path, "w") as log:
            proc = app.run(log)
        run = RunningTask(task, app, proc, log_path, sidecar, before, _port(env["APP__HTTP__ADDR"]),
                          _port(env.get("APP__ADMIN__ADDR", service_defaults()["admin"]["addr"])), container_def)
        try:
            deadline = time.monotonic() + 30
            while True:
                assert proc.poll() is None, f"container exited ({proc.returncode}):\n{run.log()}"
                try:
                    if requests.get(f"{run.base}/readyz", headers=run.alb_host, timeout=1).status_code == 200:
                        break
                except requests.RequestException:
                    pass
                assert time.monotonic() < deadline, f"not ready after 30 s:\n{run.log()}"
                time.sleep(0.05)
            yield run
        finally:
            if proc.poll() is None:
                app.kill("KILL")
                proc.wait(10)
            app.delete()


def _status(pid: int) -> dict[str, str]:
    return dict(line.split(":\t", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                if ":\t" in line)


def test_the_container_runs_as_the_task_definition_says(running):
    pid = running.app.state()["pid"]
    status = _status(pid)
    uid, _, gid = running.container_def["user"].partition(":")
    assert status["Uid"].split() == [uid] * 4 and status["Gid"].split() == [gid] * 4, status
    assert status["Groups"].strip() == ""
    assert int(status["CapEff"], 16) == int(status["CapPrm"], 16) == int(status["CapBnd"], 16) == 0
    assert status["NoNewPrivs"].strip() == "1"
    assert status["NSpid"].split()[-1] == "1", "the binary is PID 1: it receives the stop signal"
    mounts = {fields[4]: fields[5].split(",") for fields in
              (line.split() for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines())}
    assert "ro" in mounts["/"], mounts["/"]
    assert "/tmp" not in mounts and "/home/nonroot" not in mounts, "nothing writable on the root"
    dev = {p.name for p in Path(f"/proc/{pid}/root/dev").iterdir()}
    assert dev == {"null", "zero", "full", "random", "urandom", "tty", "ptmx", "pts", "shm", "mqueue",
                   "fd", "stdin", "stdout", "stderr"}, dev
    # The image's own files are all there is: the base and the binary, no shell.
    root = Path(f"/proc/{pid}/root")
    assert not (root / "bin/sh").exists() and not (root / "usr/bin/sh").exists()


def test_healthcheck_subcommand_is_the_container_health_check(running):
    before = running.healthcheck_before_start
    assert before.returncode == 1, f"nothing listens yet, so unhealthy: {before}"
    code, elapsed = running.healthcheck()
    assert code == 0 and elapsed < running.health_timeout, (code, elapsed)


def test_alb_health_check_reaches_readyz_at_the_task_ip(running):
    [check] = Module.load().resource("aws_lb_target_group", "app")["health_check"]
    answer = requests.get(running.base + check["path"], headers=running.alb_host, timeout=5)
    assert str(answer.status_code) == check["matcher"], answer.text
    assert requests.get(f"{running.base}/livez", headers=running.alb_host, timeout=5).status_code == 200
    # The admin listener stays on the task's loopback: the sidecar scrapes it, the VPC cannot.
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((running.task.network.task_ip, running.admin_port), 2).close()
    metrics = running.task.network.call(requests.get, f"http://127.0.0.1:{running.admin_port}/metrics", timeout=5)
    assert metrics.status_code == 200
    # Process metrics come from /proc inside the container.
    assert "process_resident_memory_bytes" in metrics.text, metrics.text[:2000]


def _rpc(running: RunningTask, method: str, params: dict, host: str = PUBLIC_HOST) -> requests.Response:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    return requests.post(f"{running.base}/mcp", json=body, timeout=10,
                         headers={**HEADERS, "MCP-Protocol-Version": LEGACY, "Host": host})


def test_mcp_answers_at_the_task_ip_for_the_public_host(running, listed_tools):
    init = _rpc(running, "initialize", {"protocolVersion": LEGACY, "capabilities": {},
                                        "clientInfo": {"name": "container-test", "version": "0"}})
    assert init.status_code == 200, init.text
    assert init.json()["result"]["serverInfo"]["name"]
    tools = _rpc(running, "tools/list", {})
    assert {t["name"] for t in tools.json()["result"]["tools"]} == listed_tools, tools.text
    pong = call_tool(f"{running.base}/mcp", "ping", headers={"Host": PUBLIC_HOST})
    assert pong.json()["result"]["content"][0]["text"].startswith("pong!"), pong.text
    # The allow-list from the task environment holds: the task IP is no public name.
    assert _rpc(running, "tools/list", {}, host=running.alb_host["Host"]).status_code == 403


def test_stop_signal_to_pid_1_drains_and_exits_0_within_the_stop_timeout(running):
    stop_timeout = running.container_def["stopTimeout"]
    drain_s = int(running.task.env["APP__SHUTDOWN__DRAIN_DELAY_MS"]) / 1000
    assert 0 < drain_s < stop_timeout
    started = time.monotonic()
    running.app.kill(running.task.image.stop_signal)
    deadline = started + drain_s
    while requests.get(f"{running.base}/readyz", headers=running.alb_host, timeout=2).status_code != 503:
        assert time.monotonic() < deadline, "/readyz still 200 while draining: the ALB keeps routing"
        time.sleep(0.05)
    draining_after = time.monotonic() - started
    # While draining, ECS must not see an unhealthy container, and requests still in the ALB's
    # pipeline are served.
    assert requests.get(f"{running.base}/livez", headers=running.alb_host, timeout=2).status_code == 200
    assert running.healthcheck()[0] == 0
    # A sampled caller: the task samples 10 % of new traces (trace_sampler), and honours the
    # caller's decision, so this call's span must reach the sidecar.
    sampled = "00-" + secrets.token_hex(16) + "-" + secrets.token_hex(8) + "-01"
    pong = call_tool(f"{running.base}/mcp", "ping", headers={"Host": PUBLIC_HOST, "traceparent": sampled})
    assert pong.status_code == 200, pong.text
    try:
        code = running.proc.wait(stop_timeout - (time.monotonic() - started))
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running at the stop timeout ({stop_timeout} s): ECS would SIGKILL it")
    elapsed = time.monotonic() - started
    print(f"container: /readyz 503 after {draining_after:.2f} s, exit {code} after {elapsed:.2f} s "
          f"(drain {drain_s:.0f} s, stopTimeout {stop_timeout} s)")
    assert code == 0, running.log()
    assert drain_s <= elapsed < stop_timeout

    after = running.task.run_once("healthcheck-after", running.task.image.healthcheck,
                                  timeout=running.health_timeout + 5)
    assert after.returncode == 1, f"the task is gone, so unhealthy: {after}"

    lines = running.log().splitlines()
    records = [json.loads(line) for line in lines]  # APP__LOG__FORMAT=json: every line is JSON
    # Only the request sent with the task IP as Host to /mcp on purpose may have been refused.
    refused_on_purpose = {"message": "rejected request: Host not allowed", "host": running.alb_host["Host"]}
    complaints = [r for r in records if r["level"] in ("WARN", "ERROR")
                  and refused_on_purpose.items() - r.items()]
    assert not complaints, complaints
    assert not [line for line in lines if any(f in line for f in WRITE_FAILURES)]
    messages = [r["message"] for r in records]
    for phase in ["shutdown signal received", "/readyz is now 503", "stopped accepting", "telemetry flushed",
                  "stopped"]:
        assert any(phase in m for m in messages), (phase, messages)
    # The spans left the read-only container for the sidecar on the task's loopback.
    running.sidecar.wait_for(lambda s: s.name == "tools/call ping", "tools/call ping from the container")
