"""Prints the throughput ratios `just bench` is about, from one results.tsv (one run)."""
import csv
import sys
from collections import defaultdict

PAIRS = [
    ("project", "rmcp-bare-router-field", "the project vs bare rmcp (router built once)"),
    ("project", "node-sdk1", "the project vs the Node sample's design"),
    ("project-modern", "project", "2026-07-28 requests vs legacy requests"),
    ("project-otel", "project", "full telemetry (100% spans exported) vs none"),
    ("project", "floor", "the project vs the machine's HTTP+JSON floor"),
]


def main(path: str) -> None:
    rps: dict[tuple[str, str], list[float]] = defaultdict(list)
    for row in csv.DictReader(open(path), delimiter="\t"):
        try:
            rps[(row["peer"], row["scenario"])].append(float(row["rps"]))
        except (KeyError, ValueError):
            pass
    mean = {k: sum(v) / len(v) for k, v in rps.items() if v}
    print("\n| ratio (rps) | scenario A | scenario B |\n|---|---|---|")
    for a, b, what in PAIRS:
        cells = []
        for sc in ("A", "B"):
            if (a, sc) in mean and (b, sc) in mean and mean[(b, sc)] > 0:
                cells.append(f"{mean[(a, sc)] / mean[(b, sc)]:.2f}x")
            else:
                cells.append("-")
        print(f"| {a} / {b} ({what}) | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main(sys.argv[1])
