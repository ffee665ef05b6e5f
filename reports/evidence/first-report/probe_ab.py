"""Summarise probe_ab.sh's passes: wall time and phases, how many start-up probes each pass took,
each variant's cold-load median and sample count per pass, and the p50 ratios' CI half-widths.

usage: PYTHONPATH=src python reports/evidence/first-report/probe_ab.py OUT_DIR
"""

from __future__ import annotations

import re
import statistics
import sys
from pathlib import Path

from slimbench.results import load_run

PHASES = ("interpreter_s", "import_s", "load_s", "first_predict_s")


def main(out: Path) -> None:
    wall = dict(line.split()[:2] for line in (out / "wall.txt").read_text().splitlines() if line.count(" ") == 1)
    names = [n for n in wall if not n.startswith("memo")]
    load: dict[str, dict[str, tuple[float, int]]] = {}
    print("| pass | commit | load at start | wall s | workers / latency / throughput / probes s | probes taken "
          "| latency rounds | median p50-ratio CI | widest |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in names:
        run = load_run(out / f"{name}.json")
        how = next(m.context["timing"] for m in run.measurements if m.metric == "latency" and m.ok)
        ph = how["phase_s"]
        probes = re.search(r"fresh-process probes done in (\d+) s", (out / f"{name}.log").read_text())
        load[name] = {}
        for m in run.measurements:
            if m.metric == "load" and m.ok:
                s = [sum(x) for x in zip(*(m.samples[k] for k in PHASES), strict=True)]
                load[name][m.variant] = (statistics.median(s), len(s))
        widths = {}
        for m in run.measurements:
            f = m.figures.get("p50_ratio") if m.metric == "latency" and m.ok else None
            if f is not None and f.low is not None and f.high is not None:
                widths[m.variant] = (f.high - f.low) / 2 / f.value
        widest = max(widths, key=widths.__getitem__)
        commit = (out / f"{name.split('-')[0]}.commit").read_text()[:7]
        up = (out / f"{name}.uptime").read_text().split("load average:")[1].split(",")[0].strip()
        print(f"| {name} | `{commit}` | {up} | {wall[name]} | {ph['workers_start']:.0f} / {ph['latency']:.0f} / "
              f"{ph['throughput']:.0f} / {probes.group(1) if probes else '?'} | "
              f"{sum(n for _, n in load[name].values())} | {how.get('rounds_run', '?')} | "
              f"±{statistics.median(widths.values()):.1%} | {widest} ±{widths[widest]:.1%} |")
    print()
    print("Cold load, median start-up time in s (samples):")
    print()
    variants = sorted({v for d in load.values() for v in d})
    print("| variant | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for v in variants:
        print(f"| {v} | " + " | ".join(f"{load[n][v][0]:.3f} ({load[n][v][1]})" if v in load[n] else ""
                                      for n in names) + " |")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
