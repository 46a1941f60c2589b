"""The Grafana dashboard and the alert rules without a running service: structure, lint rules,
promtool's parser and its rule unit tests."""
import re
import subprocess
import sys
from collections import Counter

import yaml

import dash_promql as dp

README = dp.ROOT / "dashboards/README.md"


def test_generated_files_match_the_generator():
    proc = subprocess.run([sys.executable, str(dp.ROOT / "dashboards/generate.py"), "--check"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_panel_ids_and_titles_are_unique():
    dash = dp.load_dashboard()
    every = dash["panels"] + [p for r in dash["panels"] for p in r.get("panels", [])]
    for key in ("id", "title"):
        seen = Counter(p[key] for p in every)
        assert [v for v, n in seen.items() if n > 1] == [], f"repeated panel {key}s"


def test_every_panel_is_titled_described_and_has_units_and_thresholds():
    for p in dp.panels(dp.load_dashboard()):
        where = f"panel {p['id']} {p.get('title')!r}"
        assert p.get("title") and p.get("description"), where
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, where
        defaults = p["fieldConfig"]["defaults"]
        assert defaults.get("unit"), f"{where}: no unit"
        steps = defaults["thresholds"]["steps"]
        assert steps[0]["value"] is None and all(s["value"] is not None for s in steps[1:]), where
        refs = [t["refId"] for t in p["targets"]]
        assert p["targets"] and len(refs) == len(set(refs)), where
        for t in p["targets"]:
            assert t["expr"].strip() and t.get("legendFormat"), f"{where} {t['refId']}"
            assert t["datasource"] == p["datasource"], f"{where} {t['refId']}"


def test_variables_select_the_datasource_job_and_task():
    by_name = {v["name"]: v for v in dp.load_dashboard()["templating"]["list"]}
    assert by_name["datasource"]["type"] == "datasource"
    assert by_name["datasource"]["query"] == "prometheus"
    task = by_name["instance"]
    assert task["includeAll"] and task["multi"] and task["allValue"] == ".*"
    assert "$job" in task["query"]["query"]
    assert by_name["job"]["current"]["value"] == dp.JOB


def test_panels_fit_the_grid_without_overlapping():
    cells = {}
    for p in dp.load_dashboard()["panels"]:
        g = p["gridPos"]
        assert g["x"] >= 0 and g["w"] > 0 and g["x"] + g["w"] <= 24, p["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{p['title']!r} overlaps {cells[(x, y)]!r}"
                cells[(x, y)] = p["title"]


def test_queries_follow_the_dashboard_lint_rules():
    dash = dp.load_dashboard()
    problems = [f"{q.name}: {m}" for q in dp.panel_queries(dash) + dp.rule_queries()
                for m in dp.lint(q, dashboard_panel=q.kind == "panel")]
    # Grafana widens $__rate_interval to at least four scrapes; a fixed window would not.
    problems += [f"panel {p['id']}: rate window [{w}]" for p in dp.panels(dash)
                 for t in p["targets"] for w in re.findall(r"\[([^\]]+)\]", t["expr"])
                 if w != "$__rate_interval"]
    assert not problems, "\n".join(problems)


def test_lint_catches_what_it_is_meant_to():
    bad = dp.Query("panel", "bad", 'rate(x{job="other"}[5m]) + histogram_quantile(0.9, '
                                   'sum by (instance) (rate(b_bucket{job="' + dp.JOB + '"}[5m])))')
    found = " | ".join(dp.lint(bad, dashboard_panel=True))
    for expected in ("not aggregated", f'no job="{dp.JOB}"', "drops le", "no per-task instance"):
        assert expected in found


def test_promtool_accepts_every_panel_and_rule_query(tmp_path):
    queries = dp.panel_queries(dp.load_dashboard()) + dp.rule_queries()
    proc = dp.promtool_check(queries, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(queries)} rules found" in proc.stdout
    print(f"promtool parsed {len(queries)} queries")


def test_promtool_check_rejects_a_broken_query(tmp_path):
    proc = dp.promtool_check([dp.Query("panel", "broken", "sum(rate(x[5m])")], tmp_path)
    assert proc.returncode != 0


def test_alert_rule_files_are_valid_prometheus_rule_files():
    files = dp.rule_files()
    assert files, "no dashboards/alerts/*.rules.yaml"
    proc = subprocess.run(["promtool", "check", "rules", *map(str, files)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_alert_unit_tests_pass():
    tests = sorted(dp.ALERTS_DIR.glob("*.test.yaml"))
    proc = subprocess.run(["promtool", "test", "rules", *map(str, tests)],
                          capture_output=True, text=True, cwd=dp.ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("SUCCESS") == len(tests)


def test_every_alert_is_tested_both_firing_and_silent():
    fired, silent = set(), set()
    for path in dp.ALERTS_DIR.glob("*.test.yaml"):
        for case in yaml.safe_load(path.read_text())["tests"]:
            for t in case.get("alert_rule_test", []):
                (fired if t.get("exp_alerts") else silent).add(t["alertname"])
    alerts = {q.name for q in dp.rule_queries() if q.kind == "alert"}
    assert alerts - fired == set(), "never seen firing"
    assert alerts - silent == set(), "never seen silent"


def test_every_alert_says_what_to_check_and_links_its_runbook_section():
    # GitHub's heading anchors: lower case, spaces to dashes, punctuation dropped.
    anchors = {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
               for h in re.findall(r"^#+ (.+)$", README.read_text(), re.M)}
    for path in dp.rule_files():
        for rule in dp.rules(path):
            if "alert" not in rule:
                continue
            name, notes = rule["alert"], rule["annotations"]
            assert rule["labels"]["severity"] in ("critical", "warning"), name
            assert notes["summary"] and notes["description"], name
            page, _, anchor = notes["runbook"].partition("#")
            assert page == "dashboards/README.md" and anchor in anchors, f"{name}: {notes['runbook']}"
