"""Hostile clients and stalled outputs against the release binary: a stdout nobody reads, idle and
byte-trickling connections. Each prints the numbers it measured (`pytest -s`)."""
from __future__ import annotations

import concurrent.futures
import json
import os
import select
import signal
import socket
import statistics
import subprocess
import threading
import time

import requests

from mcp_http import call_tool
from support import start_server


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


def _rss_kib(pid: int) -> int:
    return int(next(l for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS:")).split()[1])


def _latencies(server, session, n: int) -> list[float]:
    return sorted(_served(server, session)[0] for _ in range(n))


def _closed_by_peer(conn: socket.socket) -> bool:
    """Whether the server has closed `conn`, without waiting (no select(): the suite's sockets can
    number past its 1,024 limit)."""
    try:
        return conn.recv(1024, socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:  # reset: the server closed with bytes of ours still unread
        return True


def _held(server, want: int, until: float) -> float:
    """The most open connections the server reported, polled until `want` or the monotonic
    time `until` (pausing, so the test's other threads get the GIL)."""
    held = 0.0
    while True:
        time.sleep(0.1)
        held = max(held, _metric(server.metrics_url, "http_server_open_connections"))
        if held >= want or time.monotonic() > until:
            return held


IDLE = 300
TRICKLING = 300


def test_idle_and_trickling_connections_are_closed_and_cost_normal_traffic_nothing(tmp_path):
    first_byte_s, header_read_s = 3.0, 4.0
    server = start_server(tmp_path, {"APP__HTTP__FIRST_BYTE_TIMEOUT_MS": str(int(first_byte_s * 1000)),
                                     "APP__HTTP__HEADER_READ_TIMEOUT_MS": str(int(header_read_s * 1000)),
                                     "APP__LOG__LEVEL": "warn"})
    idle: list[socket.socket] = []
    trickling: list[socket.socket] = []
    try:
        session = requests.Session()
        before = _latencies(server, session, 300)
        rss_before = _rss_kib(server.proc.pid)
        opened = time.monotonic()
        idle.extend(socket.create_connection(("127.0.0.1", server.port)) for _ in range(IDLE))
        trickling.extend(socket.create_connection(("127.0.0.1", server.port)) for _ in range(TRICKLING))
        head = b"POST /mcp HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + b"a" * 1000
        closed_at: dict[socket.socket, float] = {}
        stop = threading.Event()

        def trickle():
            # One byte per connection every 100 ms, until the server closes it.
            sent = 0
            while not stop.is_set() and len(closed_at) < IDLE + TRICKLING:
                for conn in trickling:
                    if conn not in closed_at:
                        try:
                            conn.send(head[sent:sent + 1])
                        except OSError:
                            closed_at[conn] = time.monotonic() - opened
                sent = min(sent + 1, len(head) - 1)
                for conn in idle + trickling:
                    if conn not in closed_at and _closed_by_peer(conn):
                        closed_at[conn] = time.monotonic() - opened
                time.sleep(0.1)

        attacker = threading.Thread(target=trickle, daemon=True)
        attacker.start()
        # Connecting returns once the kernel has queued a connection, not once the server has
        # accepted it: wait for the gauge, pausing so the attacker thread gets the GIL, until well
        # before the first-byte deadline. (A loaded CI run counted 421 of 600 after 0.5 s: the
        # listener queued only 128, so the rest waited for handshake retries; it now queues
        # APP__HTTP__MAX_CONNECTIONS.)
        held = _held(server, IDLE + TRICKLING, until=opened + first_byte_s - 1)
        during = _latencies(server, session, 300)
        rss_during = _rss_kib(server.proc.pid)
        attacker.join(header_read_s + 10)
        stop.set()
        assert len(closed_at) == IDLE + TRICKLING, f"{IDLE + TRICKLING - len(closed_at)} still open"
        idle_closed = max(closed_at[c] for c in idle)
        trickling_closed = max(closed_at[c] for c in trickling)
        assert idle_closed < first_byte_s + 1.5, idle_closed
        # The header timer starts once the first bytes tell HTTP/1 from HTTP/2, so trickling
        # connections outlive the first-byte deadline and close at the header one. This thread sees
        # a close up to a sweep late, and sweeps slow down while the requests above hold the GIL.
        assert first_byte_s < trickling_closed < header_read_s + first_byte_s + 1, trickling_closed
        refused = _metric(server.metrics_url, 'http_server_refused_connections_total{reason="first_byte_timeout"}')
        assert refused == IDLE, refused
        p50 = lambda xs: xs[len(xs) // 2]
        p99 = lambda xs: xs[int(len(xs) * 0.99)]
        assert held >= IDLE + TRICKLING, held
        assert p99(during) < max(0.05, 5 * p99(before)), (p99(before), p99(during))
        assert rss_during - rss_before < 32 * 1024, (rss_before, rss_during)
        print(f"idle+trickling: {held:.0f} connections held, tool call p50/p99 "
              f"{p50(before) * 1e3:.1f}/{p99(before) * 1e3:.1f} ms without, "
              f"{p50(during) * 1e3:.1f}/{p99(during) * 1e3:.1f} ms with them; RSS {rss_before} -> "
              f"{rss_during} KiB; idle closed by {idle_closed:.1f} s, trickling by "
              f"{trickling_closed:.1f} s")
    finally:
        for conn in idle + trickling:  # even when a check failed: the next tests need the descriptors
            conn.close()
        server.stop(9)


def test_a_burst_of_connections_waits_in_the_queue_while_the_server_is_busy(tmp_path):
    """The kernel completes handshakes for a listener whose process is not running, up to its
    accept queue; the rest are dropped and retried seconds later. A stopped process makes that
    exact: tokio's default queue (128) held 129 of these 600."""
    with open("/proc/sys/net/core/somaxconn") as f:
        burst = min(600, int(f.read()))  # the kernel's cap on any listener's queue
    server = start_server(tmp_path, {"APP__LOG__LEVEL": "warn"})
    conns: list[socket.socket] = []
    try:
        os.kill(server.proc.pid, signal.SIGSTOP)
        for _ in range(burst):
            conn = socket.socket()
            conn.setblocking(False)
            conn.connect_ex(("127.0.0.1", server.port))
            conns.append(conn)
        poller, pending = select.poll(), {c.fileno(): c for c in conns}
        for fd in pending:
            poller.register(fd, select.POLLOUT)
        deadline = time.monotonic() + 3
        while pending and time.monotonic() < deadline:
            for fd, _ in poller.poll(100):
                poller.unregister(fd)
                del pending[fd]
        connected = sum(1 for c in conns
                        if c.fileno() not in pending and c.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0)
        os.kill(server.proc.pid, signal.SIGCONT)
        assert connected == burst, f"{connected} of {burst} handshakes completed while the server was stopped"
        held = _held(server, burst, until=time.monotonic() + 5)
        assert held >= burst, held
        assert call_tool(server.url, "ping", timeout=5).status_code == 200
        print(f"burst: {connected} of {burst} connections queued while the server was stopped, "
              f"{held:.0f} held once it ran")
    finally:
        os.kill(server.proc.pid, signal.SIGCONT)
        for conn in conns:
            conn.close()
        server.stop(9)


def test_connections_over_the_limit_are_refused_and_counted(tmp_path):
    server = start_server(tmp_path, {"APP__HTTP__MAX_CONNECTIONS": "50", "APP__LOG__LEVEL": "error"})
    try:
        session = requests.Session()
        _served(server, session)  # the test's own connection holds a place
        flood = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(100)]
        time.sleep(0.5)
        assert _metric(server.metrics_url, "http_server_open_connections") == 50
        refused = _metric(server.metrics_url, 'http_server_refused_connections_total{reason="connection_limit"}')
        assert refused == 51, refused
        _served(server, session)  # a held connection keeps serving
        for conn in flood:
            conn.close()
        time.sleep(0.5)
        assert call_tool(server.url, "ping", timeout=5).status_code == 200
    finally:
        server.stop(9)
