"""Prints the ratios `just bench` is about, from one results.tsv (one run): throughput against
each peer, then what requests in flight cost against bare rmcp (CPU per request, p99, peak memory;
scenario C is 5,000 connections on a 1 s tool). Each figure is its median over the run's rounds:
a round disturbed by other work on the machine does not move it."""
import csv
import statistics
import sys
from collections import defaultdict

PAIRS = [
    ("project", "rmcp-bare-router-field", "the project vs bare rmcp (router built once)"),
    ("project", "node-sdk1", "the project vs the Node sample's design"),
    ("project-modern", "project", "2026-07-28 requests vs legacy requests"),
    ("project-otel", "project", "full telemetry (100% spans exported) vs none"),
    ("project", "floor", "the project vs the machine's HTTP+JSON floor"),
]
BARE = "rmcp-bare-router-field"
SCENARIOS = ("A", "B", "C")
IN_FLIGHT_C = 5000


def main(path: str) -> None:
    rows: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for row in csv.DictReader(open(path), delimiter="\t"):
        try:
            float(row["rps"])
        except (KeyError, ValueError):
            continue
        rows[(row["peer"], row["scenario"])].append(row)

    def median(peer: str, scenario: str, field: str) -> float | None:
        values = [float(r[field]) for r in rows.get((peer, scenario), []) if r.get(field) not in (None, "", "-")]
        return statistics.median(values) if values else None

    def cpu_per_request_us(peer: str, scenario: str) -> float | None:
        per_round = [
            float(r["server_cpu_pct"]) / 100 / float(r["rps"]) * 1e6
            for r in rows.get((peer, scenario), [])
            if r.get("server_cpu_pct") not in (None, "", "-") and float(r["rps"])
        ]
        return statistics.median(per_round) if per_round else None

    print("\n| ratio (rps) | " + " | ".join(f"scenario {sc}" for sc in SCENARIOS) + " |")
    print("|---|" + "---|" * len(SCENARIOS))
    for a, b, what in PAIRS:
        cells = []
        for sc in SCENARIOS:
            ra, rb = median(a, sc, "rps"), median(b, sc, "rps")
            cells.append(f"{ra / rb:.2f}x" if ra is not None and rb else "-")
        print(f"| {a} / {b} ({what}) | " + " | ".join(cells) + " |")

    print("\n| requests in flight, project vs bare rmcp | CPU per request | p99 | VmHWM |")
    print("|---|---|---|---|")
    for sc in ("B", "C"):
        cpu_p, cpu_b = cpu_per_request_us("project", sc), cpu_per_request_us(BARE, sc)
        p99_p, p99_b = median("project", sc, "p99_ms"), median(BARE, sc, "p99_ms")
        mem_p, mem_b = median("project", sc, "vmhwm_mib"), median(BARE, sc, "vmhwm_mib")
        if None in (cpu_p, cpu_b, p99_p, p99_b, mem_p, mem_b):
            continue
        print(f"| {sc}: {cpu_p:.0f} vs {cpu_b:.0f} us, {p99_p:.0f} vs {p99_b:.0f} ms, "
              f"{mem_p:.0f} vs {mem_b:.0f} MiB | {cpu_p / cpu_b:.2f}x | {p99_p / p99_b:.2f}x | "
              f"{mem_p - mem_b:+.0f} MiB |")
    print("\n| scenario C: VmHWM per 1,000 in flight | MiB |\n|---|---|")
    for peer in ("project", BARE, "floor"):
        mem = median(peer, "C", "vmhwm_mib")
        if mem is not None:
            print(f"| {peer} | {mem / (IN_FLIGHT_C / 1000):.1f} |")


if __name__ == "__main__":
    main(sys.argv[1])
