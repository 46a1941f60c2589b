"""Static analysis of infra/ and the Dockerfile with the tools a platform team runs: checkov,
hadolint and terraform fmt, all offline."""
from __future__ import annotations

import re
import shutil

import pytest

from infra_tools import ROOT, checkov, hadolint, terraform_fmt_check

INFRA = ROOT / "infra"


def _failures(report: dict) -> list[str]:
    return [f"{c['check_id']} {c['resource']} ({c['file_path']}:{c['file_line_range']})"
            for c in report["results"]["failed_checks"]]


def _assert_clean(report: dict, min_passed: int):
    summary = report["summary"]
    print(f"checkov {report['check_type']}: {summary}")
    assert summary["parsing_errors"] == 0, summary
    assert summary["failed"] == 0, "\n".join(_failures(report))
    # A scan that found nothing to check would also report zero failures.
    assert summary["passed"] >= min_passed, summary
    for skipped in report["results"]["skipped_checks"]:
        reason = (skipped.get("check_result") or {}).get("suppress_comment", "")
        assert len(reason.strip()) > 10, f"{skipped['check_id']} skipped without a reason"


def test_checkov_terraform_has_no_failed_checks():
    reports = {r["check_type"]: r for r in checkov("--directory", "infra",
                                                    "--framework", "terraform", "secrets")}
    assert "terraform" in reports, reports.keys()
    _assert_clean(reports["terraform"], min_passed=150)
    assert reports["terraform"]["summary"]["resource_count"] >= 60
    if "secrets" in reports:
        assert reports["secrets"]["summary"]["failed"] == 0, _failures(reports["secrets"])


def test_checkov_dockerfile_has_no_failed_checks():
    [report] = checkov("--file", "Dockerfile", "--framework", "dockerfile")
    _assert_clean(report, min_passed=20)


def test_hadolint_is_clean():
    code, findings = hadolint(ROOT / "Dockerfile")
    print(f"hadolint: {len(findings)} findings")
    assert findings == [] and code == 0, findings


def test_hadolint_reports_a_known_bad_dockerfile(tmp_path):
    # Proves the wrapper really lints (a broken install would print nothing and pass).
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM debian\nRUN apt-get install curl\n")
    code, findings = hadolint(bad)
    assert code != 0 and {"DL3006", "DL3008"} <= {f["code"] for f in findings}, findings


def test_terraform_files_are_formatted():
    result = terraform_fmt_check(INFRA)
    assert result["out"].strip() == "", f"run `just tf-fmt`:\n{result['out']}"


def test_terraform_fmt_check_detects_misformatting(tmp_path):
    copy = tmp_path / "infra"
    shutil.copytree(INFRA, copy, ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*"))
    victim = copy / "ecs.tf"
    # Undo the alignment terraform fmt puts on `=` in one block.
    victim.write_text(re.sub(r"(?m)^(  family)\s+=", r"\1 =", victim.read_text()))
    result = terraform_fmt_check(copy)
    assert "ecs.tf" in result["out"] and "+  family" in result["out"], result
