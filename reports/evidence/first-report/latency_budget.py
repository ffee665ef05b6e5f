"""Summarise latency_budget.sh's passes: wall time, phases, rounds, what stopped them, and the 95 %
CI half-width of every p50 ratio to standard (relative), per pass.

usage: python reports/evidence/first-report/latency_budget.py OUT_DIR
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

from slimbench.results import load_run


def main(out: Path) -> None:
    wall = dict(line.split()[:2] for line in (out / "wall.txt").read_text().splitlines() if line.count(" ") == 1)
    names = [n for n in wall if n != "memo-fill"]
    widths: dict[str, dict[str, float]] = {}
    print("| pass | load at start | wall s | workers / latency / throughput / accuracy s | latency rounds | "
          "stopped by | median CI half-width | widest |")
    print("|---|---|---|---|---|---|---|---|")
    for name in names:
        run = load_run(out / f"{name}.json")
        how = next(m.context["timing"] for m in run.measurements if m.metric == "latency" and m.ok)
        ph = how["phase_s"]
        w = {}
        for m in run.measurements:
            f = m.figures.get("p50_ratio") if m.metric == "latency" and m.ok else None
            if f is not None and f.low is not None and f.high is not None:
                w[m.variant] = (f.high - f.low) / 2 / f.value
        widths[name] = w
        load = (out / f"{name}.uptime").read_text().split("load average:")[1].split(",")[0].strip()
        widest = max(w, key=w.__getitem__)
        print(f"| {name} | {load} | {wall[name]} | {ph['workers_start']:.0f} / {ph['latency']:.0f} / "
              f"{ph['throughput']:.0f} / {ph['accuracy']:.0f} | {how.get('rounds_run', '?')} | "
              f"{how.get('stopped', '?')} | ±{statistics.median(w.values()):.1%} | {widest} ±{w[widest]:.1%} |")
    print()
    variants = sorted({v for w in widths.values() for v in w})
    print("| variant | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for v in variants:
        print(f"| {v} | " + " | ".join(f"±{widths[n][v]:.1%}" if v in widths[n] else "" for n in names) + " |")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
