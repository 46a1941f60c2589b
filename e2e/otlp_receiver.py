"""A real OTLP receiver for the tests: `rotel-agent` (a Rust collector shipped in the PyPI `rotel`
wheel) printing every span it receives, and a parser for what it prints."""
from __future__ import annotations

import contextlib
import re
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import rotel

from support import free_port, stop_process

AGENT = Path(rotel.__file__).resolve().parent / "rotel-agent"


@dataclass
class Span:
    name: str
    trace_id: str
    parent_id: str
    span_id: str
    kind: str
    attributes: dict = field(default_factory=dict)
    links: list = field(default_factory=list)
    status: str = ""


def parse_spans(text: str) -> list[Span]:
    """Reads rotel's `--debug-log-verbosity detailed` output (one block per span)."""
    spans: list[Span] = []
    section = None
    for raw in text.splitlines():
        line = raw.strip()
        if raw.startswith("Span #"):
            spans.append(Span("", "", "", "", ""))
            section = "span"
            continue
        if not spans:
            continue
        span = spans[-1]
        if line.startswith("Trace ID") and section == "span":
            span.trace_id = line.split(":", 1)[1].strip()
        elif line.startswith("Parent ID"):
            span.parent_id = line.split(":", 1)[1].strip()
        elif re.match(r"^ID\s*:", line):
            span.span_id = line.split(":", 1)[1].strip()
        elif line.startswith("Name") and section == "span":
            span.name = line.split(":", 1)[1].strip()
        elif line.startswith("Kind"):
            span.kind = line.split(":", 1)[1].strip()
        elif line.startswith("Status code"):
            span.status = line.split(":", 1)[1].strip()
        elif line == "Attributes:":
            section = "attributes"
        elif line == "Links:":
            section = "links"
        elif line.startswith("SpanLink #"):
            span.links.append({})
        elif line.startswith("ResourceSpans") or line.startswith("ScopeSpans"):
            section = None
        elif line.startswith("-> ") and section == "attributes":
            key, _, value = line[3:].partition(": ")
            match = re.match(r"^(Str|Int|Bool|Double)\((.*)\)$", value)
            span.attributes[key] = match.group(2) if match else value
        elif line.startswith("-> ") and section == "links" and span.links:
            key, _, value = line[3:].partition(": ")
            span.links[-1][key] = value
    return spans


class Receiver:
    def __init__(self, proc: subprocess.Popen, http_port: int, grpc_port: int, out: Path):
        self.proc, self.http_port, self.grpc_port, self.out = proc, http_port, grpc_port, out

    @property
    def http_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.grpc_port}"

    def spans(self) -> list[Span]:
        return parse_spans(self.out.read_text(errors="replace"))

    def wait_for(self, predicate, what: str, timeout: float = 15) -> list[Span]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [s for s in self.spans() if predicate(s)]
            if found:
                return found
            time.sleep(0.2)
        raise AssertionError(f"no span {what} within {timeout} s; received:\n{self.out.read_text()[-4000:]}")


def _listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
        return True
    return False


@contextlib.contextmanager
def running_receiver(tmp_path: Path, http_port: int | None = None, grpc_port: int | None = None,
                     netns=None):
    """rotel on loopback, on free ports unless given; `netns` (an ecs_task.TaskNetwork) runs it
    inside a task's network namespace, where the ECS collector sidecar listens."""
    http_port, grpc_port = http_port or free_port(), grpc_port or free_port()
    out = tmp_path / "rotel.out"
    argv = [str(AGENT), "start", "--otlp-http-endpoint", f"127.0.0.1:{http_port}",
            "--otlp-grpc-endpoint", f"127.0.0.1:{grpc_port}", "--exporter", "blackhole",
            "--debug-log", "traces", "--debug-log-verbosity", "detailed",
            "--pid-file", str(tmp_path / "rotel.pid"), "--log-file", str(tmp_path / "rotel.log")]
    proc = subprocess.Popen(netns.command(argv) if netns else argv, stdout=open(out, "wb"),
                            stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 15
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"rotel exited: {out.read_text()}")
            if netns.call(_listening, http_port) if netns else _listening(http_port):
                break
            if time.monotonic() > deadline:
                raise RuntimeError("rotel not listening after 15 s")
            time.sleep(0.1)
        yield Receiver(proc, http_port, grpc_port, out)
    finally:
        stop_process(proc, timeout=5)


@contextlib.contextmanager
def black_hole():
    """A TCP port that accepts connections and never answers: a hung collector."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept_forever():
        sock.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                conn, _ = sock.accept()
                accepted.append(conn)

    thread = threading.Thread(target=accept_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        sock.close()
