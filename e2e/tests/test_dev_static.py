"""The Docker path of `just dev`, checked without a Docker engine: the compose file, the collector
config it mounts and Grafana's provisioning agree with each other, with DESIGN.md's ports, with
the sidecar's config and with the Justfile."""
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from support import SERVICE_NAME

ROOT = Path(__file__).resolve().parents[2]
DEV = ROOT / "dev"
COMPOSE = DEV / "compose.yaml"
LOCAL = ROOT / "otel-collector/local.yaml"
ECS = ROOT / "otel-collector/ecs.yaml"
DESIGN = ROOT.parent / "shared/DESIGN.md"


def load(path: Path, env: dict | None = None) -> dict:
    """The file as the collector reads it: `${env:NAME:-default}` from `env`, else the default
    (local.yaml's defaults are the compose setup; dev/up.sh sets the native one)."""
    text = re.sub(r"\$\{env:(\w+):-([^}]*)\}", lambda m: (env or {}).get(m.group(1), m.group(2)),
                  path.read_text())
    return yaml.safe_load(text)


def design_ports() -> dict:
    """The defaults DESIGN.md (the shared contract, beside the template's checkout) promises."""
    if not DESIGN.exists():
        pytest.skip("no shared DESIGN.md beside this checkout (a service generated from the template)")
    text = DESIGN.read_text()
    admin = re.search(r"admin \(never behind the ALB\) \| `127\.0\.0\.1:(\d+)`", text)
    otlp = re.search(r"HTTP/protobuf to `http://127\.0\.0\.1:(\d+)`\s+or gRPC to `:(\d+)`", text)
    assert admin and otlp, "DESIGN.md no longer states the admin and OTLP ports"
    return {"admin": int(admin.group(1)), "otlp_http": int(otlp.group(1)),
            "otlp_grpc": int(otlp.group(2))}


def published(service: dict) -> dict[int, str]:
    """container port -> host address of every published port."""
    out = {}
    for spec in service.get("ports", []):
        host, _, rest = spec.rpartition(":")
        out[int(rest)] = host
    return out


def test_compose_runs_the_four_pinned_services_on_loopback():
    services = load(COMPOSE)["services"]
    assert set(services) == {"otel-collector", "prometheus", "grafana", "jaeger"}
    for name, svc in services.items():
        image, _, tag = svc["image"].rpartition(":")
        assert image and re.match(r"^v?\d+\.\d+\.\d+$", tag), f"{name}: pin a version: {svc['image']}"
        for port, host in published(svc).items():
            assert host.startswith("127.0.0.1:"), f"{name}: port {port} published beyond loopback"
    assert "contrib" in services["otel-collector"]["image"]


def test_compose_mounts_exist_and_are_the_right_files():
    services = load(COMPOSE)["services"]
    mounts = {}
    for name, svc in services.items():
        for volume in svc.get("volumes", []):
            source, target = volume.split(":")[:2]
            path = (DEV / source).resolve()
            assert path.exists(), f"{name}: {source} does not exist"
            mounts[(name, target)] = path
    config_flag = services["otel-collector"]["command"][0].split("=", 1)[1]
    assert mounts[("otel-collector", config_flag)] == LOCAL
    assert mounts[("prometheus", "/etc/prometheus/rules")] == ROOT / "dashboards/alerts"
    assert mounts[("grafana", "/etc/grafana/provisioning")] == DEV / "grafana/provisioning"
    dashboards_path = load(DEV / "grafana/provisioning/dashboards/dashboards.yaml")["providers"][0]["options"]["path"]
    assert mounts[("grafana", dashboards_path)] == ROOT / "dashboards/grafana"


def test_compose_prometheus_config_is_valid_and_loads_the_mounted_rules():
    cfg = DEV / "prometheus/compose.yml"
    proc = subprocess.run(["promtool", "check", "config", str(cfg)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert load(cfg)["rule_files"] == ["/etc/prometheus/rules/*.rules.yaml"]
    # The collector remote-writes into it, so the receiver must be on.
    assert "--web.enable-remote-write-receiver" in load(COMPOSE)["services"]["prometheus"]["command"]


def test_collector_pipelines_only_use_defined_components_and_use_them_all():
    used: dict[str, set] = {}
    native = dict(re.findall(r"(DEV_TRACES_EXPORTER)=(\S+)", (DEV / "up.sh").read_text()))
    assert native, "dev/up.sh no longer picks the native traces exporter"
    for env in ({}, native):  # compose; native
        cfg = load(LOCAL, env)
        used.setdefault("extensions", set()).update(cfg["service"]["extensions"])
        for pipeline in cfg["service"]["pipelines"].values():
            for kind in ("receivers", "processors", "exporters"):
                used.setdefault(kind, set()).update(pipeline[kind])
    for kind, names in used.items():
        assert names == set(cfg[kind]), f"{kind}: used {sorted(names)}, defined {sorted(cfg[kind])}"


def test_collector_ports_and_targets_agree_with_design_compose_and_the_sidecar():
    ports = design_ports()
    local, ecs = load(LOCAL), load(ECS)
    services = load(COMPOSE)["services"]
    for proto, key in (("grpc", "otlp_grpc"), ("http", "otlp_http")):
        port = int(local["receivers"]["otlp"]["protocols"][proto]["endpoint"].rsplit(":", 1)[1])
        assert port == ports[key] == int(ecs["receivers"]["otlp"]["protocols"][proto]["endpoint"].rsplit(":", 1)[1])
        assert published(services["otel-collector"])[port] == f"127.0.0.1:{port}"
    (local_job,) = local["receivers"]["prometheus"]["config"]["scrape_configs"]
    (ecs_job,) = ecs["receivers"]["prometheus"]["config"]["scrape_configs"]
    assert local_job["job_name"] == ecs_job["job_name"] == SERVICE_NAME
    assert local_job["metrics_path"] == ecs_job["metrics_path"] == "/metrics"
    (target,) = local_job["static_configs"][0]["targets"]
    assert target == f"host.docker.internal:{ports['admin']}"
    assert "host.docker.internal:host-gateway" in services["otel-collector"]["extra_hosts"]
    # Exporters point at compose services, on the ports those listen on.
    assert local["exporters"]["otlp_grpc/jaeger"]["endpoint"] == "jaeger:4317"
    assert local["exporters"]["prometheus_remote_write"]["endpoint"] == "http://prometheus:9090/api/v1/write"


def test_grafana_datasources_point_at_the_compose_services():
    sources = {d["type"]: d for d in load(DEV / "grafana/provisioning/datasources/datasources.yaml")["datasources"]}
    assert sources["prometheus"]["url"] == "http://prometheus:9090" and sources["prometheus"]["isDefault"]
    assert sources["jaeger"]["url"] == "http://jaeger:16686"
    assert published(load(COMPOSE)["services"]["jaeger"])[16686] == "127.0.0.1:16686"


def test_native_defaults_agree_with_design():
    ports = design_ports()
    script = (DEV / "up.sh").read_text()
    assert f"APP__ADMIN__ADDR:-127.0.0.1:{ports['admin']}" in script
    assert f"DEV_OTLP_HTTP_ADDR:-127.0.0.1:{ports['otlp_http']}" in script
    assert f"DEV_OTLP_GRPC_ADDR:-127.0.0.1:{ports['otlp_grpc']}" in script
    assert r'job_name: \"$MCP_SERVICE_NAME\"' in script  # the scrape job Prometheus gets without the collector


def test_justfile_recipes_run_the_dev_scripts_and_the_load_generator():
    just = shutil.which("just") or str(Path(sys.executable).parent / "just")
    shown = {r: subprocess.run([just, "--show", r], cwd=ROOT, capture_output=True, text=True,
                               check=True).stdout for r in ("dev", "dev-down", "load")}
    assert "dev/up.sh" in shown["dev"]
    assert "dev/down.sh" in shown["dev-down"]
    assert "scripts/load.py" in shown["load"]


def test_the_developers_settings_file_stays_on_their_machine():
    """`just dev` reads local.toml (the tools' API keys): never committed, never in the image or a
    generated service, and not in a folder `just upgrade-platform` replaces."""
    settings = re.search(r"SETTINGS_FILE=\$\{DEV_SETTINGS_FILE:-\$ROOT/([^}]+)\}",
                         (DEV / "up.sh").read_text()).group(1)
    assert f"/{settings}" in (ROOT / ".gitignore").read_text().splitlines()
    docker = [l for l in (ROOT / ".dockerignore").read_text().splitlines() if l and l[0] != "#"]
    let_in = [l[1:].rstrip("/") for l in docker if l.startswith("!")]
    assert docker[0] == "*" and not [l for l in let_in if settings.startswith(l)], let_in
    generator = ROOT / "cargo-generate.toml"
    if generator.exists():  # the template's own checkout
        assert settings in tomllib.loads(generator.read_text())["template"]["ignore"]
    replaced = re.search(r"PLATFORM_DIRS=\(([^)]*)\)", (ROOT / "scripts/upgrade-platform.sh").read_text())
    assert not [d for d in replaced.group(1).split() if settings.startswith(f"{d}/")]
