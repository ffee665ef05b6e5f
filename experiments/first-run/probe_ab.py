"""Summarise probe_ab.sh's passes: wall time and phases, how many start-up probes each pass took,
each variant's cold-load median and sample count per pass, and the p50 ratios' CI half-widths.

usage: PYTHONPATH=src python experiments/first-run/probe_ab.py OUT_DIR
"""

from __future__ import annotations

import re
import statistics
import sys
from pathlib import Path

from latency_budget import latency_timing, load_at_start, pass_walls, ratio_widths  # beside this script

from slimbench.analysis.results import load_run


def main(out: Path) -> None:
    wall = pass_walls(out)
    names = [n for n in wall if not n.startswith("memo")]
    load: dict[str, dict[str, tuple[float, int]]] = {}
    print("| pass | commit | load at start | wall s | workers / latency / throughput / probes s | probes taken "
          "| latency rounds | median p50-ratio CI | widest |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in names:
        run = load_run(out / f"{name}.json")
        how = latency_timing(run)
        ph = how["phase_s"]
        probes = re.search(r"fresh-process probes done in (\d+) s", (out / f"{name}.log").read_text())
        load[name] = {m.variant: (f.value, f.n) for m in run.measurements
                      if m.metric == "load" and m.ok and (f := m.figures.get("start_to_first_prediction_s"))}
        widths = ratio_widths(run)
        widest = max(widths, key=widths.__getitem__)
        commit = (out / f"{name.split('-')[0]}.commit").read_text()[:7]
        print(f"| {name} | `{commit}` | {load_at_start(out, name)} | {wall[name]} | {ph['workers_start']:.0f} / "
              f"{ph['latency']:.0f} / {ph['throughput']:.0f} / {probes.group(1) if probes else '?'} | "
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
