"""Each variant's two timing worker processes, compared: rounds alternate between them (round r in
process r mod 2), so the median of even rounds against that of odd rounds shows a lasting offset of
one process, for latency (p50 of each round's block) and for throughput (each round's batch).

usage: PYTHONPATH=src python experiments/first-run/process_offsets.py RESULTS.json [...]
"""

from __future__ import annotations

import statistics
import sys

from slimbench.analysis.results import load_run

KINDS = {"latency": ("latency_s", "latency_round"), "throughput": ("batch_s", "batch_round")}


def per_round(samples: list[float], rounds: list[float]) -> dict[int, float]:
    by: dict[int, list[float]] = {}
    for s, r in zip(samples, rounds, strict=True):
        by.setdefault(int(r), []).append(s)
    return {r: statistics.median(v) for r, v in by.items()}


def main(paths: list[str]) -> None:
    print("| run | variant | latency: process 1 / process 0 | throughput: process 1 / process 0 |")
    print("|---|---|---|---|")
    for path in paths:
        run = load_run(path)
        rows: dict[str, dict[str, float]] = {}
        for m in run.measurements:
            if m.metric in KINDS and m.ok and all(k in m.samples for k in KINDS[m.metric]):
                rounds = per_round(*(list(m.samples[k]) for k in KINDS[m.metric]))
                even = [v for r, v in rounds.items() if r % 2 == 0]
                odd = [v for r, v in rounds.items() if r % 2 == 1]
                if even and odd:
                    rows.setdefault(m.variant, {})[m.metric] = statistics.median(odd) / statistics.median(even)
        for v, d in rows.items():
            print(f"| {path.rsplit('/', 1)[-1]} | {v} | " + " | ".join(
                f"{d[k]:.2f}" if k in d else "" for k in KINDS) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
