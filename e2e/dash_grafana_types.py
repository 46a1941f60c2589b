"""Type-check a Grafana dashboard against Grafana's own TypeScript types (npm @grafana/schema).

A JSON import would widen every string to `string`, so the dashboard is written into a .ts file
as object literals instead: the literals keep their types, and tsc checks each field, misspelled
keys included. The whole dashboard is checked as `Dashboard`, then each panel again with the
options and field config types of its plugin (time series, stat).
"""
from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

from support import NODE_BIN, ROOT

E2E = ROOT / "e2e"
TSC = E2E / "node_modules/typescript/bin/tsc"
PANELCFG = "@grafana/schema/dist/esm/raw/composable/{0}/panelcfg/x/{1}PanelCfg_types.gen"

PRELUDE = f"""\
import type {{ Dashboard, FieldConfigSource, Panel }} from '@grafana/schema';
import type {{ FieldConfig as TimeSeriesFieldConfig, Options as TimeSeriesOptions }}
  from '{PANELCFG.format("timeseries", "TimeSeries")}';
import type {{ Options as StatOptions }} from '{PANELCFG.format("stat", "Stat")}';

// JSON has no enums: each enum is accepted as the union of its string values.
type Json<T> = T extends string ? `${{T}}`
  : T extends readonly (infer E)[] ? Json<E>[]
  : T extends object ? {{ [K in keyof T]: Json<T[K]> }}
  : T;
type PluginPanel<O, C> = Omit<Panel, 'options' | 'fieldConfig'> & {{
  options: O;
  fieldConfig: FieldConfigSource<C>;
}};
type Panels = {{
  timeseries: PluginPanel<TimeSeriesOptions, TimeSeriesFieldConfig>;
  stat: PluginPanel<StatOptions, Record<string, unknown>>;
}};
"""

TSCONFIG = {"compilerOptions": {"strict": True, "noEmit": True, "module": "nodenext",
                                "moduleResolution": "nodenext", "target": "es2022",
                                "skipLibCheck": True, "types": []},
            "files": ["dashboard.ts"]}


def typescript_for(dashboard: dict) -> str:
    lines = [PRELUDE, f"export const dashboard: Json<Dashboard> = {json.dumps(dashboard, indent=2)};"]
    for row in dashboard["panels"]:
        for p in row.get("panels", []) if row["type"] == "row" else [row]:
            lines.append(f"export const panel{p['id']}: Json<Panels['{p['type']}']> = "
                         f"{json.dumps(p, indent=2)};")
    return "\n".join(lines) + "\n"


def typecheck(dashboard: dict) -> subprocess.CompletedProcess:
    """Runs `tsc --strict --noEmit` on the dashboard; the result carries tsc's messages."""
    # Inside e2e/ so that '@grafana/schema' resolves from e2e/node_modules.
    results = E2E / ".results"
    results.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=results, prefix="grafana-types-") as tmp:
        work = Path(tmp)
        (work / "dashboard.ts").write_text(typescript_for(dashboard))
        (work / "tsconfig.json").write_text(json.dumps(TSCONFIG))
        return subprocess.run([NODE_BIN, str(TSC), "-p", str(work), "--pretty", "false"],
                              capture_output=True, text=True, timeout=120)
