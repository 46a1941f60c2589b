#!/usr/bin/env python3
"""A short, bounded load of mixed MCP calls, so the dashboards have something to show.

    just load                                   # 20 s against http://127.0.0.1:8080/mcp
    scripts/load.py --url URL --duration 5 --concurrency 4 --json

Every call is checked: successes must succeed, and the deliberate errors (an echo with bad
arguments -> tool result isError, an unknown tool -> JSON-RPC -32602) must fail the expected way.
The example tools' calls (echo, weather, report as a task) are left out when the service does not
list them.
Exits 1 when any answer is not what it should be. Standard library only, loopback use.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

STABLE = "2025-11-25"
MODERN = "2026-07-28"  # no handshake; per-request _meta and Mcp-* headers


def call(name: str, arguments: dict) -> tuple[str, dict]:
    return "tools/call", {"name": name, "arguments": arguments}


def pong(result: dict) -> bool:
    return result.get("content", [{}])[0].get("text", "").startswith("pong")


def succeeded(result: dict) -> bool:
    return result.get("isError") is False or ("isError" not in result and bool(result))


def tool_error(result: dict) -> bool:
    return result.get("isError") is True


def task_created(result: dict) -> bool:
    return result.get("resultType") == "task" and bool(result.get("taskId"))


TASKS_EXTENSION = "io.modelcontextprotocol/tasks"


# (kind, protocol, (method, params), check of the JSON-RPC result, expected JSON-RPC error code).
# One pass over this list is the mix: mostly successes, a tenth each of the two error kinds.
MIX = [
    ("ping", STABLE, call("ping", {}), pong, None),
    ("echo", STABLE, call("echo", {"text": "hello", "repeat": 2, "uppercase": True}), succeeded, None),
    ("tools/list", STABLE, ("tools/list", {}), lambda r: "ping" in {t["name"] for t in r["tools"]}, None),
    ("ping", MODERN, call("ping", {}), pong, None),
    ("echo bad arguments", STABLE, call("echo", {"text": ""}), tool_error, None),
    ("ping", STABLE, call("ping", {}), pong, None),
    ("initialize", STABLE, ("initialize", {"protocolVersion": STABLE, "capabilities": {},
                                           "clientInfo": {"name": "load.py", "version": "1"}}),
     lambda r: "protocolVersion" in r, None),
    ("echo", MODERN, call("echo", {"text": "modern"}), succeeded, None),
    ("unknown tool", STABLE, call("no-such-tool", {}), None, -32602),
    ("server/discover", MODERN, ("server/discover", {}), lambda r: bool(r), None),
    # A downstream call; a tool error when no weather API is configured (`just run`), still an answer.
    ("weather", STABLE, call("weather", {"city": "Paris"}), lambda r: "content" in r, None),
    # A long-running tool as a task (the client declares the Tasks extension): answered at once. It
    # must wait (a second's work) to become one: a report of 0 s is answered as a plain call.
    ("report task", MODERN, call("report", {"title": "load", "seconds": 1}), task_created, None),
]


class Client:
    """One keep-alive connection per worker thread."""

    def __init__(self, url: str, timeout: float):
        parts = urlsplit(url)
        self.host, self.port, self.path = parts.hostname, parts.port or 80, parts.path or "/mcp"
        self.timeout = timeout
        self.conn: http.client.HTTPConnection | None = None

    def post(self, body: dict, headers: dict) -> tuple[int, str, bytes]:
        for attempt in (1, 2):  # a kept-alive connection the server closed is retried once
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self.conn.request("POST", self.path, json.dumps(body), headers)
                resp = self.conn.getresponse()
                return resp.status, resp.getheader("Content-Type", ""), resp.read()
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


def served_mix(client: Client) -> list[tuple]:
    """MIX without the calls of tools the service does not list (the unknown tool stays)."""
    kind, headers, body = request_for(MIX.index(next(m for m in MIX if m[0] == "tools/list")), MIX)
    status, ctype, raw = client.post(body, headers)
    if status != 200:
        raise SystemExit(f"tools/list answered HTTP {status}")
    listed = {t["name"] for t in parse(ctype, raw)["result"]["tools"]}
    return [m for m in MIX if m[2][0] != "tools/call" or m[2][1]["name"] in listed or m[4] is not None]


def request_for(index: int, mix: list[tuple]) -> tuple[str, dict, dict]:
    kind, protocol, (method, params), _, _ = mix[index % len(mix)]
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
               "MCP-Protocol-Version": protocol}
    params = dict(params)
    if protocol == MODERN:
        headers["Mcp-Method"] = method
        if method == "tools/call":
            headers["Mcp-Name"] = params["name"]
        capabilities = {"extensions": {TASKS_EXTENSION: {}}} if kind.endswith(" task") else {}
        params["_meta"] = {"io.modelcontextprotocol/protocolVersion": MODERN,
                           "io.modelcontextprotocol/clientCapabilities": capabilities}
    return kind, headers, {"jsonrpc": "2.0", "id": index + 1, "method": method, "params": params}


def parse(content_type: str, body: bytes) -> dict:
    if content_type.startswith("text/event-stream"):  # the last `data:` line holds the answer
        data = [line[5:] for line in body.decode().splitlines() if line.startswith("data:")]
        return json.loads(data[-1])
    return json.loads(body)


def verdict(index: int, status: int, message: dict, mix: list[tuple]) -> str | None:
    """None when the answer is the expected one, else why not."""
    _, _, _, check, want_code = mix[index % len(mix)]
    if status != 200:
        return f"HTTP {status}"
    if want_code is not None:
        code = message.get("error", {}).get("code")
        return None if code == want_code else f"expected JSON-RPC error {want_code}, got {message}"
    if "error" in message:
        return f"JSON-RPC error {message['error']}"
    return None if check(message.get("result", {})) else f"unexpected result {message.get('result')}"


def run(url: str, duration: float, concurrency: int, max_requests: int, timeout: float) -> dict:
    deadline = time.monotonic() + duration
    counter = iter(range(max_requests))
    lock = threading.Lock()
    done: Counter = Counter()
    problems: Counter = Counter()
    mix = served_mix(Client(url, timeout))

    def worker() -> None:
        client = Client(url, timeout)
        while time.monotonic() < deadline:
            with lock:
                index = next(counter, None)
            if index is None:
                return
            kind, headers, body = request_for(index, mix)
            try:
                status, ctype, raw = client.post(body, headers)
                problem = verdict(index, status, parse(ctype, raw) if status == 200 else {}, mix)
            except (OSError, ValueError, http.client.HTTPException) as exc:
                problem = f"{type(exc).__name__}: {exc}"
            with lock:
                done[kind] += 1
                if problem:
                    problems[f"{kind}: {problem}"[:200]] += 1

    start = time.monotonic()
    with ThreadPoolExecutor(concurrency) as pool:
        for _ in range(concurrency):
            pool.submit(worker)
    elapsed = time.monotonic() - start
    return {"requests": sum(done.values()), "seconds": round(elapsed, 2), "by_kind": dict(done),
            "unexpected": sum(problems.values()), "problems": dict(problems)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("MCP_URL", "http://127.0.0.1:8080/mcp"))
    parser.add_argument("--duration", type=float, default=20, help="seconds (default 20)")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--max-requests", type=int, default=20000)
    parser.add_argument("--timeout", type=float, default=10, help="per request, seconds")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args()
    summary = run(args.url, args.duration, args.concurrency, args.max_requests, args.timeout)
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"{summary['requests']} requests in {summary['seconds']} s to {args.url}")
        for kind, n in sorted(summary["by_kind"].items()):
            print(f"  {n:6d}  {kind}")
        for problem, n in summary["problems"].items():
            print(f"  UNEXPECTED x{n}: {problem}")
    return 1 if summary["unexpected"] or not summary["requests"] else 0


if __name__ == "__main__":
    sys.exit(main())
