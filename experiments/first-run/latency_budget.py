"""Summarise latency_budget.sh's passes: wall time, phases, rounds, what stopped them, and the 95 %
CI half-width of every p50 ratio to standard (relative), per pass. Its helpers read any pass
directory of `pytest bench` runs (NAME.json, NAME.uptime, wall.txt): probe_ab.py uses them too.

usage: python experiments/first-run/latency_budget.py OUT_DIR
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path
from typing import Any

from slimbench.analysis.results import Run, load_run


def pass_walls(out: Path) -> dict[str, str]:
    """Each pass's wall seconds as wall.txt lists them ("NAME SECONDS" lines; others skipped)."""
    return dict(line.split()[:2] for line in (out / "wall.txt").read_text().splitlines() if line.count(" ") == 1)


def latency_timing(run: Run) -> dict[str, Any]:
    """How the run timed latency (its phases, rounds, what stopped them)."""
    return next(m.context["timing"] for m in run.measurements if m.metric == "latency" and m.ok)


def ratio_widths(run: Run) -> dict[str, float]:
    """Each variant's p50 ratio's 95 % CI half-width, relative."""
    out = {}
    for m in run.measurements:
        f = m.figures.get("p50_ratio") if m.metric == "latency" and m.ok else None
        if f is not None and f.relative_half_width is not None:
            out[m.variant] = f.relative_half_width
    return out


def load_at_start(out: Path, name: str) -> str:
    """The 1-minute load average `uptime` showed before the pass."""
    return (out / f"{name}.uptime").read_text().split("load average:")[1].split(",")[0].strip()


def main(out: Path) -> None:
    wall = pass_walls(out)
    names = [n for n in wall if n != "memo-fill"]
    widths: dict[str, dict[str, float]] = {}
    print("| pass | load at start | wall s | workers / latency / throughput / accuracy s | latency rounds | "
          "stopped by | median CI half-width | widest |")
    print("|---|---|---|---|---|---|---|---|")
    for name in names:
        run = load_run(out / f"{name}.json")
        how = latency_timing(run)
        ph = how["phase_s"]
        w = widths[name] = ratio_widths(run)
        widest = max(w, key=w.__getitem__)
        print(f"| {name} | {load_at_start(out, name)} | {wall[name]} | {ph['workers_start']:.0f} / {ph['latency']:.0f} / "
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
