"""Hostile clients and stalled outputs against the release binary: a stdout nobody reads, idle and
byte-trickling connections. Each prints the numbers it measured (`pytest -s`)."""
from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import statistics
import subprocess
import threading
import time

import requests

from conftest import start_server
from mcp_http import call_tool


def _metric(metrics_url: str, name: str) -> float:
    text = requests.get(metrics_url, timeout=5).text
    return sum(float(l.split()[-1]) for l in text.splitlines() if l.startswith(name))


def _timed(fn) -> float:
    started = time.monotonic()
    fn()
    return time.monotonic() - started


def _served(server, session: requests.Session) -> tuple[float, float]:
    """One tool call and one liveness probe, both answered correctly; their latencies."""
    def mcp():
        resp = call_tool(server.url, "ping", session=session, timeout=5)
        assert resp.status_code == 200 and resp.json()["result"], resp.text

    def livez():
        assert session.get(f"{server.base}/livez", timeout=5).status_code == 200

    return _timed(mcp), _timed(livez)


def _stalled_server(tmp_path):
    """A server whose stdout is a pipe nobody reads, logging at `trace` so that the pipe and then
    the 64k-line queue fill within a few thousand requests."""
    return start_server(tmp_path, {"APP__LOG__LEVEL": "trace"}, stdout=subprocess.PIPE)


def _stall(server, session) -> tuple[int, list[float]]:
    """Serves requests until the log writer drops lines; returns how many were served and their
    latencies."""
    served, latencies = 0, []
    deadline = time.monotonic() + 120
    sessions = [session] + [requests.Session() for _ in range(3)]
    with concurrent.futures.ThreadPoolExecutor(len(sessions)) as pool:
        while _metric(server.metrics_url, "log_lines_dropped_total") == 0:
            assert time.monotonic() < deadline, f"no line dropped after {served} requests"
            batch = pool.map(lambda i: _served(server, sessions[i % len(sessions)]), range(400))
            for timings in batch:
                latencies.extend(timings)
                served += 1
    return served, latencies


def test_a_stdout_nobody_reads_never_stops_the_service(tmp_path):
    server = _stalled_server(tmp_path)
    try:
        session = requests.Session()
        served_to_stall, _ = _stall(server, session)
        dropped_at_stall = _metric(server.metrics_url, "log_lines_dropped_total")
        # Stalled: everything still answered at normal latency, and more lines are dropped.
        during = [_served(server, session) for _ in range(1000)]
        mcp = sorted(m for m, _ in during)
        livez = sorted(l for _, l in during)
        dropped = _metric(server.metrics_url, "log_lines_dropped_total")
        assert dropped > dropped_at_stall
        p99 = lambda xs: xs[int(len(xs) * 0.99)]
        assert p99(mcp) < 0.1 and p99(livez) < 0.1, (p99(mcp), p99(livez))
        # The pipe drains: the writer gets through and reports what it dropped.
        out = bytearray()

        def drain():
            while chunk := os.read(server.proc.stdout.fileno(), 1 << 16):
                out.extend(chunk)

        threading.Thread(target=drain, daemon=True).start()
        deadline = time.monotonic() + 30
        reports = []
        while not reports and time.monotonic() < deadline:
            time.sleep(0.2)
            reports = [json.loads(l) for l in bytes(out).splitlines()
                       if b'"log lines dropped' in l]
        assert reports, "no report line after the pipe drained"
        reported = sum(r["dropped"] for r in reports)
        assert reports[-1]["dropped_total"] == reported
        assert reports[0]["level"] == "WARN"
        assert reported >= dropped, (reported, dropped)
        print(f"stalled stdout: {served_to_stall} requests until the first drop, 1000 tool calls "
              f"+ 1000 /livez during the stall (p50/p99 {statistics.median(mcp) * 1e3:.1f}/"
              f"{p99(mcp) * 1e3:.1f} ms and {statistics.median(livez) * 1e3:.1f}/"
              f"{p99(livez) * 1e3:.1f} ms), {dropped:.0f} lines dropped by then, "
              f"{reported} reported after the drain")
    finally:
        server.stop(9)


def test_sigterm_with_a_stuck_stdout_still_exits(tmp_path):
    server = _stalled_server(tmp_path)
    try:
        _stall(server, requests.Session())
        started = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(15) == 0
        print(f"exit with stdout stuck: {time.monotonic() - started:.1f} s")
    finally:
        server.stop(9)
