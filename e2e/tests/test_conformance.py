"""The official MCP conformance suites against the conformance server (scripts/conformance.sh):
0.1.16 for 2025-06-18/2025-11-25 and the 0.2.0 prerelease for 2026-07-28 and for the Tasks
extension's scenarios, each held to its expected-failures baseline in e2e/conformance/."""
from __future__ import annotations

import re
import subprocess

from support import ROOT

# Scenarios each pinned suite runs against a server (e2e/package.json pins the versions): a
# suite that silently runs fewer, e.g. after a filter change, must not pass as green.
SCENARIOS = {"2025": 30, "2026-07-28": 40, "tasks": 10}


def test_conformance_suites_pass(capsys):
    run = subprocess.run([str(ROOT / "scripts/conformance.sh")], capture_output=True, text=True,
                         timeout=600)
    totals = re.findall(r"^Total: .*$", run.stdout, re.M)
    with capsys.disabled():
        print()
        for label, total in zip(SCENARIOS, totals):
            print(f"conformance {label}: {total}")
    assert run.returncode == 0, f"{run.stdout}\n{run.stderr}"
    assert len(totals) == len(SCENARIOS), run.stdout
    for label, count in SCENARIOS.items():
        assert f"{label} scenarios run: {count}\n" in run.stdout, run.stdout
