"""The Grafana dashboard against Grafana's own schema types (@grafana/schema, tsc --strict)."""
import copy

import dash_grafana_types as gt
import dash_promql as dp


def test_dashboard_matches_grafana_schema_types():
    proc = gt.typecheck(dp.load_dashboard())
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_type_check_rejects_wrong_field_types_and_unknown_options():
    dash = copy.deepcopy(dp.load_dashboard())
    stat, series = (next(p for p in dp.panels(dash) if p["type"] == kind)
                    for kind in ("stat", "timeseries"))
    stat["gridPos"]["h"] = "4"  # a string where Grafana wants a number
    stat["options"]["colorMode"] = "rainbow"  # not a BigValueColorMode
    series["options"]["legend"]["placment"] = "bottom"  # misspelled key
    proc = gt.typecheck(dash)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "Type 'string' is not assignable to type 'number'" in out, out
    assert '"rainbow"' in out, out
    assert "placment" in out, out
