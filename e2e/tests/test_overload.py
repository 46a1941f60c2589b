"""Overload inside the container, as ECS runs it: the release binary in a memory cgroup with the
Terraform's hard limit for the app (task memory less the collector's), hit by many slow 1 MB
bodies (declared, chunked) and by large answers read slowly, while small `ping` calls run beside
them. It must never be OOM-killed, answer every large request 200 or 503 (none reset), serve every
small call, and peak under its limit. Then per-caller rate limits on the real binary.

The suite runs a smaller load; `just overload` runs the issue's (1,000 bodies held 15 s):
MCP_OVERLOAD_CLIENTS and MCP_OVERLOAD_HOLD_S set it."""
from __future__ import annotations

import asyncio
import json
import os
import re
import resource
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from support import SERVER_BIN, start_server
from ecs_task import app_container, task_environment
from infra_tools import budget_fraction
from mcp_http import HEADERS, LEGACY, call_tool

CLIENTS = int(os.environ.get("MCP_OVERLOAD_CLIENTS", "400"))
HOLD_S = float(os.environ.get("MCP_OVERLOAD_HOLD_S", "3"))
BODY_BYTES = 1_000_000
MIB = 1 << 20


# --- a memory cgroup of this machine's kind ----------------------------------------------------

@dataclass
class MemoryCgroup:
    """A cgroup (v2, or v1's memory hierarchy) with a hard limit, for one process tree."""

    path: Path
    v2: bool

    @classmethod
    def create(cls, limit: int) -> "MemoryCgroup":
        name = f"mcp-overload-{uuid.uuid4().hex[:8]}"
        unified = Path("/sys/fs/cgroup")
        subtree = unified / "cgroup.subtree_control"
        if subtree.exists() and "memory" in subtree.read_text().split():
            path = unified / name
            path.mkdir()
            (path / "memory.max").write_text(str(limit))
            (path / "memory.swap.max").write_text("0")
            return cls(path, True)
        path = unified / "memory" / name
        path.mkdir()
        (path / "memory.limit_in_bytes").write_text(str(limit))
        return cls(path, False)

    @property
    def procs(self) -> Path:
        return self.path / "cgroup.procs"

    def peak(self) -> int:
        name = "memory.peak" if self.v2 else "memory.max_usage_in_bytes"
        return int((self.path / name).read_text())

    def oom_kills(self) -> int:
        events = (self.path / ("memory.events" if self.v2 else "memory.oom_control")).read_text()
        return int(re.search(r"^oom_kill (\d+)", events, re.M).group(1))

    def remove(self) -> None:
        for _ in range(50):
            try:
                self.path.rmdir()
                return
            except OSError:
                time.sleep(0.1)


def cannot_make_memory_cgroups() -> str | None:
    if os.geteuid() != 0:
        return "creates a memory cgroup: needs root"
    try:
        MemoryCgroup.create(64 * MIB).remove()
    except OSError as e:
        return f"this machine offers no writable memory cgroup: {e}"
    return None


def app_memory_limit() -> int:
    """The app container's hard limit in the Terraform's defaults, in bytes."""
    return app_container()["memory"] * MIB


@pytest.fixture
def limited_server(tmp_path, request):
    """The release binary in a cgroup with the app's hard limit, configured as the task is (less
    what only ECS has: the ALB's address and X-Forwarded-For, the collector), its budget left to
    what it finds in its cgroup. Indirect parameters: more environment."""
    reason = cannot_make_memory_cgroups()
    if reason:
        pytest.skip(reason)
    limit = app_memory_limit()
    cgroup = MemoryCgroup.create(limit)
    env = {k: v for k, v in task_environment().items()
           if k.startswith(("APP__", "AWS_")) and k not in {"APP__HTTP__ADDR", "APP__HTTP__ALLOWED_HOSTS",
                                                   "APP__HTTP__MEMORY_BUDGET_BYTES",
                                                   "APP__HTTP__TRUSTED_PROXY_HOPS"}}
    env.update({"APP__LOG__LEVEL": "warn,mcp_platform::app=info", "APP__HTTP__RATE_LIMIT_PER_SECOND": "0",
                "OTEL_SDK_DISABLED": "true"})
    env.update(getattr(request, "param", {}))
    server = start_server(tmp_path, env, binary="/bin/sh",
                          args=["-c", f'echo $$ > {cgroup.procs} && exec "$0"', SERVER_BIN])
    try:
        yield server, cgroup, limit
    finally:
        server.stop(9)
        cgroup.remove()


# --- the load ----------------------------------------------------------------------------------

def _head(port: int, length: int | None) -> bytes:
    framing = f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    lines = [f"POST /mcp HTTP/1.1", f"Host: 127.0.0.1:{port}", *(f"{k}: {v}" for k, v in HEADERS.items()),
             f"MCP-Protocol-Version: {LEGACY}", framing, "", ""]
    return "\r\n".join(lines).encode()


def _ping_call(pad: int = 0, request_id: str | int = 1) -> bytes:
    """A `ping` call; `pad` bytes of `_meta` make it large, a long `request_id` makes its answer
    large (the answer quotes it)."""
    params = {"name": "ping", "arguments": {}, "_meta": {"pad": "x" * pad}}
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}).encode()


def _padded_to(size: int) -> bytes:
    body = _ping_call()
    return _ping_call(pad=size - len(body))


async def _read_status(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = re.search(rb"(?i)content-length: *(\d+)", head)
    if length:
        body = await reader.readexactly(int(length.group(1)))
    else:  # chunked answer
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            body += await reader.readexactly(size + 2)
            if size == 0:
                break
    return status, body


async def _slow_upload(port: int, body: bytes, chunked: bool, hold_s: float) -> str:
    """Sends all but the last 10 bytes, holds, sends the rest; the status, or what went wrong."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(_head(port, None if chunked else len(body)))
        if chunked:
            for at in range(0, len(body) - 10, 65536):
                part = body[at:min(at + 65536, len(body) - 10)]
                writer.write(b"%x\r\n%s\r\n" % (len(part), part))
                await writer.drain()
            rest = body[-10:]
            tail = b"%x\r\n%s\r\n0\r\n\r\n" % (len(rest), rest)
        else:
            writer.write(body[:-10])
            tail = body[-10:]
        await writer.drain()
        await asyncio.sleep(hold_s)
        writer.write(tail)
        await writer.drain()
        status, answer = await _read_status(reader)
        writer.close()
        if status == 503:
            assert json.loads(answer)["error"]["data"]["requestId"], answer
        return str(status)
    except (ConnectionError, asyncio.IncompleteReadError, OSError) as e:
        return f"{type(e).__name__}"


async def _slow_download(port: int, body: bytes, hold_s: float) -> str:
    """Sends a whole call whose answer is large, then waits before reading it."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 16)
        writer.write(_head(port, len(body)) + body)
        await writer.drain()
        await asyncio.sleep(hold_s)
        status, _ = await _read_status(reader)
        writer.close()
        return str(status)
    except (ConnectionError, asyncio.IncompleteReadError, OSError) as e:
        return f"{type(e).__name__}"


@dataclass
class Pings:
    """Small calls, one after another, while the load runs."""

    url: str
    statuses: list[int] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        session = requests.Session()
        while not self.stop.is_set():
            try:
                self.statuses.append(call_tool(self.url, "ping", session=session, timeout=30).status_code)
            except requests.RequestException as e:
                self.statuses.append(-1)
                print("ping failed:", e)
            time.sleep(0.02)


def _overload(server, clients: list) -> tuple[dict[str, int], list[int]]:
    pings = Pings(server.url)
    thread = threading.Thread(target=pings.run)
    thread.start()

    async def all_clients():
        return await asyncio.gather(*clients)

    try:
        outcomes = asyncio.run(all_clients())
    finally:
        pings.stop.set()
        thread.join()
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts, pings.statuses


def _assert_held(server, cgroup, limit, counts, pings, started):
    peak = cgroup.peak()
    metrics = requests.get(server.metrics_url, timeout=5).text
    shed = re.search(r'http_server_shed_requests_total\{reason="memory"\S*\s+(\d+)', metrics)
    unstarted = re.search(r'http_server_refused_connections_total\{reason="first_byte_timeout"\S*\s+(\d+)', metrics)
    print(f"\n{CLIENTS} clients, hold {HOLD_S} s, {time.monotonic() - started:.1f} s: large {counts}, "
          f"pings {len(pings)} ({sorted(set(pings))}), peak {peak / MIB:.0f} MiB of {limit / MIB:.0f}, "
          f"OOM kills {cgroup.oom_kills()}, shed for memory {shed and shed.group(1)}, "
          f"connections closed before their first byte {unstarted and unstarted.group(1)}")
    assert server.proc.poll() is None, f"the server died:\n{server.log()[-3000:]}"
    assert cgroup.oom_kills() == 0
    assert set(counts) <= {"200", "503"}, counts
    assert pings and set(pings) == {200}, sorted(set(pings))
    assert peak < limit


@pytest.fixture(autouse=True)
def _enough_files():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, CLIENTS * 2 + 256)), hard))


def test_the_budget_comes_from_the_cgroup_and_is_logged(limited_server):
    server, cgroup, limit = limited_server
    line = next(json.loads(l) for l in server.log().splitlines() if "memory budget" in l)
    fields = line.get("fields", line)
    assert int(fields["memory_budget_bytes"]) == int(limit * budget_fraction()), line
    assert str(cgroup.path) in fields["source"], line


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_slow_large_bodies_never_get_the_task_killed(limited_server, chunked):
    server, cgroup, limit = limited_server
    body = _padded_to(BODY_BYTES)
    started = time.monotonic()
    counts, pings = _overload(server, [_slow_upload(server.port, body, chunked, HOLD_S)
                                       for _ in range(CLIENTS)])
    _assert_held(server, cgroup, limit, counts, pings, started)


def test_large_answers_read_slowly_never_get_the_task_killed(limited_server):
    server, cgroup, limit = limited_server
    body = _ping_call(request_id="i" * (BODY_BYTES // 2))
    started = time.monotonic()
    counts, pings = _overload(server, [_slow_download(server.port, body, HOLD_S) for _ in range(CLIENTS)])
    _assert_held(server, cgroup, limit, counts, pings, started)


# --- JSON that parses into a tree many times its size ------------------------------------------

def _tiny_objects_call(size: int) -> bytes:
    """A `ping` call of `size` bytes whose `_meta` is `[{"":0},{"":0},...]`: parsed, ~47 times
    its bytes, held while the call runs."""
    head = b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"ping","arguments":{},"_meta":{"pad":['
    count = (size - len(head) - 4) // 7
    return head + b",".join([b'{"":0}'] * count) + b"]}}}"


async def _upload(port: int, body: bytes) -> tuple[str, dict]:
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(_head(port, len(body)) + body)
        await writer.drain()
        status, answer = await _read_status(reader)
        writer.close()
        return str(status), json.loads(answer)
    except (ConnectionError, asyncio.IncompleteReadError, OSError) as e:
        return type(e).__name__, {}


@pytest.mark.parametrize("limited_server", [{"APP__TOOLS__PING__DELAY_MS": "3000"}], indirect=True)
def test_json_that_parses_many_times_its_size_is_charged_for_its_tree(limited_server):
    """24 bodies of 1 MB of tiny objects at once, each held by a slow call: up to ~1.1 GiB of
    trees, beyond the app's 768 MiB (the binary before the charge was OOM-killed by it). Charged for
    their trees, the ones that fit are served and the rest get the budget's 503 (none reset, never
    OOM-killed), pings served beside them."""
    server, cgroup, limit = limited_server
    body = _tiny_objects_call(BODY_BYTES)
    json.loads(body)
    started = time.monotonic()

    async def uploads():
        return await asyncio.gather(*[_upload(server.port, body) for _ in range(24)])

    pings = Pings(server.url)
    thread = threading.Thread(target=pings.run)
    thread.start()
    try:
        outcomes = asyncio.run(uploads())
    finally:
        pings.stop.set()
        thread.join()
    counts = {status: sum(1 for s, _ in outcomes if s == status) for status, _ in outcomes}
    _assert_held(server, cgroup, limit, counts, pings.statuses, started)
    assert counts.get("200", 0) > 0, counts
    for refusal in (answer for status, answer in outcomes if status == "503"):
        assert refusal["error"]["code"] == -32000 and refusal["id"] == 1 and refusal["error"]["data"]["requestId"]


def test_json_too_intricate_for_the_whole_budget_gets_a_413_and_the_next_call_is_served(server_factory):
    """A body whose tree could never fit (here a 2 MiB budget) is refused with 413, naming what to
    change, counted; the service goes on serving."""
    server = server_factory({"APP__HTTP__MEMORY_BUDGET_BYTES": str(2 * MIB)})
    body = _tiny_objects_call(100_000)
    answer = requests.post(server.url, data=body, timeout=10,
                           headers={**HEADERS, "MCP-Protocol-Version": LEGACY})
    assert answer.status_code == 413, answer.text
    error = answer.json()
    assert error["id"] == 1 and error["error"]["code"] == -32600, error
    assert "fewer values" in error["error"]["message"] and error["error"]["data"]["requestId"]
    # Plain text of the same size is served: only the tree's shape counts.
    assert requests.post(server.url, data=_padded_to(100_000), timeout=10,
                         headers={**HEADERS, "MCP-Protocol-Version": LEGACY}).status_code == 200
    assert call_tool(server.url, "ping").status_code == 200
    metrics = requests.get(server.metrics_url, timeout=5).text
    assert re.search(r'http_server_shed_requests_total\{reason="json_expansion"\S*\s+1\b', metrics), metrics


# --- per-caller rate limits --------------------------------------------------------------------

def _call_as(server, caller: str, spoofed: str | None = None) -> requests.Response:
    forwarded = f"{spoofed}, {caller}" if spoofed else caller
    return call_tool(server.url, "ping", headers={"X-Forwarded-For": forwarded})


def _first_refusal(responses: list, policy: str, burst: int) -> dict:
    """The first 429 among `responses`: its headers name `policy` (a bucket of `burst`, refilled
    at 1/s), its body is a JSON-RPC error quoting the request id; that body."""
    refused = next(r for r in responses if r.status_code == 429)
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.headers["RateLimit-Policy"] == f'"{policy}";q={burst};w={burst}'
    assert re.fullmatch(rf'"{re.escape(policy)}";r=0;t=\d+', refused.headers["RateLimit"])
    error = refused.json()
    assert error["error"]["code"] == -32000 and error["error"]["data"]["requestId"] == refused.headers["x-request-id"]
    return error


def test_one_caller_over_its_rate_is_refused_while_another_is_served(server_factory):
    server = server_factory({"APP__HTTP__RATE_LIMIT_PER_SECOND": "1", "APP__HTTP__RATE_LIMIT_BURST": "20",
                             "APP__HTTP__TRUSTED_PROXY_HOPS": "1"})
    started = time.monotonic()
    noisy = [_call_as(server, "198.51.100.7") for _ in range(60)]
    quiet = [_call_as(server, "198.51.100.8") for _ in range(20)]
    elapsed = time.monotonic() - started
    served = sum(r.status_code == 200 for r in noisy)
    assert 20 <= served <= 20 + int(elapsed) + 1, (served, elapsed)
    assert [r.status_code for r in quiet] == [200] * 20, "the other caller's burst is whole"
    _first_refusal(noisy, "caller", 20)
    # Spoofed entries to the left of the ALB's do not buy a new bucket.
    spoofed = [_call_as(server, "198.51.100.7", spoofed=f"203.0.113.{n}") for n in range(10)]
    assert sum(r.status_code == 429 for r in spoofed) >= 10 - int(time.monotonic() - started) - 1
    metrics = requests.get(server.metrics_url, timeout=5).text
    limited = re.search(r'http_server_rate_limited_requests_total\{reason="caller"\S*\s+(\d+)', metrics)
    assert int(limited.group(1)) == sum(r.status_code == 429 for r in noisy + spoofed)
    # One line a second at most, not one per refusal.
    lines = [l for l in server.log().splitlines() if "rate limited request" in l]
    assert 1 <= len(lines) <= int(time.monotonic() - started) + 1, len(lines)


def test_one_tool_over_its_limit_is_refused_while_other_tools_and_callers_are_served(server_factory):
    server = server_factory({"APP__HTTP__TOOL_RATE_LIMITS__ECHO__PER_SECOND": "1",
                             "APP__HTTP__TOOL_RATE_LIMITS__ECHO__BURST": "5",
                             "APP__HTTP__TRUSTED_PROXY_HOPS": "1"})

    def call(tool: str, caller: str, modern: bool = False) -> requests.Response:
        return call_tool(server.url, tool, {"text": "hi"} if tool == "echo" else {}, modern=modern,
                         headers={"X-Forwarded-For": caller})

    started = time.monotonic()
    noisy = [call("echo", "198.51.100.7") for _ in range(20)]
    # 2026-07-28 (the `Mcp-Name` header era) draws from the same bucket.
    modern = [call("echo", "198.51.100.7", modern=True) for _ in range(5)]
    pings = [call("ping", "198.51.100.7") for _ in range(20)]
    other = [call("echo", "198.51.100.8") for _ in range(5)]
    elapsed = time.monotonic() - started
    served = sum(r.status_code == 200 for r in noisy + modern)
    assert 5 <= served <= 5 + int(elapsed) + 1, (served, elapsed)
    assert sum(r.status_code == 429 for r in modern) >= 5 - int(elapsed) - 1
    assert [r.status_code for r in pings] == [200] * 20, "the caller's other tools are served"
    assert [r.status_code for r in other] == [200] * 5, "another caller's bucket is whole"
    error = _first_refusal(noisy, "tool.echo", 5)
    assert isinstance(error["id"], int) and "tool echo" in error["error"]["message"], error
    metrics = requests.get(server.metrics_url, timeout=5).text
    limited = re.search(r'http_server_rate_limited_requests_total\{reason="tool"\S*\s+(\d+)', metrics)
    assert int(limited.group(1)) == sum(r.status_code == 429 for r in noisy + modern)
    assert re.search(r'http_server_rate_limited_requests_total\{reason="caller"\S*\s+0\b', metrics)
    lines = [l for l in server.log().splitlines() if "rate limited calls of tool echo" in l]
    assert 1 <= len(lines) <= int(time.monotonic() - started) + 1, len(lines)


def test_a_limit_for_a_tool_the_service_lacks_stops_startup_with_one_line():
    env = {k: v for k, v in os.environ.items() if not k.startswith("APP__")}
    env["APP__HTTP__TOOL_RATE_LIMITS__WETHER__PER_SECOND"] = "5"
    proc = subprocess.run([SERVER_BIN], env=env, capture_output=True, text=True, timeout=20)
    assert proc.returncode == 2, proc
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "APP__HTTP__TOOL_RATE_LIMITS__WETHER" in lines[0], proc.stderr
    assert "a tool this service serves" in lines[0], lines[0]
