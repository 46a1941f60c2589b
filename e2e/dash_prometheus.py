"""A real Prometheus (Debian's) for the tests: its own storage, a free loopback port, 1 s scrapes."""
from __future__ import annotations

import contextlib
import math
import subprocess
import time
from pathlib import Path

import requests
import yaml

from support import SERVICE_NAME, free_port, stop_process


def finite(result: list[dict]) -> list[dict]:
    """The samples of a query result that are numbers (a ratio over no traffic yet is NaN)."""
    return [r for r in result if math.isfinite(float(r["value"][1]))]


class PromAPI:
    """The parts of the HTTP API the tests use."""

    def __init__(self, url: str):
        self.url = url

    def get(self, path: str, **params) -> dict:
        body = requests.get(f"{self.url}{path}", params=params, timeout=10).json()
        if body.get("status") != "success":
            raise RuntimeError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str) -> list[dict]:
        data = self.get("/api/v1/query", query=expr)
        assert data["resultType"] == "vector", f"{expr}: {data['resultType']}"
        return data["result"]

    def rules(self) -> list[dict]:
        return [r for g in self.get("/api/v1/rules")["groups"] for r in g["rules"]]

    def wait_for(self, expr: str, what: str, timeout: float = 20) -> list[dict]:
        """Poll until `expr` returns data; fails with `what` after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(requests.RequestException, RuntimeError):
                result = self.query(expr)
                if result:
                    return result
            time.sleep(0.25)
        raise AssertionError(f"{what}: `{expr}` returned nothing within {timeout} s")

    def wait_for_each(self, exprs: dict[str, str], what: str, timeout: float = 90) -> dict[str, list[dict]]:
        """Poll until each of `exprs` (name: expression) returns a finite sample, and return those
        results; fails after `timeout` seconds naming the ones that did not (a query Prometheus
        refuses fails at once: waiting would not mend it)."""
        deadline = time.monotonic() + timeout
        results: dict[str, list[dict]] = {}
        while missing := [name for name in exprs if not finite(results.get(name, []))]:
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: no data within {timeout} s for {len(missing)} of "
                                     f"{len(exprs)}:\n" + "\n".join(f"{n}: {exprs[n]}" for n in missing))
            for name in missing:
                with contextlib.suppress(requests.RequestException):
                    results[name] = self.query(exprs[name])
            time.sleep(0.25)
        return results

    def wait_for_rules_evaluated(self, timeout: float = 30) -> list[dict]:
        """Every loaded rule, once each has been evaluated (before that its health is "unknown");
        fails after `timeout` seconds naming the ones never evaluated."""
        deadline = time.monotonic() + timeout
        while True:
            rules = self.rules()
            pending = [r["name"] for r in rules if r["health"] == "unknown"]
            if not pending:
                return rules
            if time.monotonic() > deadline:
                raise AssertionError(f"rules not evaluated within {timeout} s: {pending}")
            time.sleep(0.25)


def config(targets: list[str], rule_files: list[Path], interval: str = "1s") -> dict:
    return {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": [str(p) for p in rule_files],
        "scrape_configs": [{"job_name": SERVICE_NAME, "static_configs": [{"targets": targets}]}]
        if targets else [],
    }


@contextlib.contextmanager
def running_prometheus(tmp_path: Path, targets: list[str], rule_files: list[Path]):
    """Start `prometheus` scraping `targets` with `rule_files` loaded; yields its API. With no
    targets it scrapes nothing and takes remote writes instead (`/api/v1/write`), as Amazon
    Managed Prometheus does."""
    port = free_port()
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text(yaml.safe_dump(config(targets, rule_files)))
    log = open(tmp_path / "prometheus.log", "wb")
    proc = subprocess.Popen(
        ["prometheus", f"--config.file={cfg}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn",
         *([] if targets else ["--web.enable-remote-write-receiver"])],
        stdout=log, stderr=subprocess.STDOUT)
    api = PromAPI(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 20
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"prometheus exited: {(tmp_path / 'prometheus.log').read_text()}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{api.url}/-/ready", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("prometheus not ready after 20 s")
            time.sleep(0.1)
        yield api
    finally:
        stop_process(proc, timeout=10)
        log.close()
