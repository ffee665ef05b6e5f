"""Summarise throughput_warmup.sh's passes: per pass, the throughput phase's seconds, the median and
widest 95 % CI half-width of the batch-time ratios to standard; per variant and arm, the median
batch seconds and the ratio with its interval (arms pooled by their pass names' first letter).

usage: python experiments/first-run/throughput_warmup.py OUT_DIR
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

from slimbench.analysis.results import load_run


def main(out: Path) -> None:
    walls = dict(line.split()[:2] for line in (out / "wall.txt").read_text().splitlines() if line.count(" ") == 1)
    per_arm: dict[str, dict[str, list[tuple[float, float, float]]]] = {}
    print("| pass | warm-up sentences | load at start | wall s | throughput phase s | median CI half-width | widest |")
    print("|---|---|---|---|---|---|---|")
    for name in walls:
        run = load_run(out / f"{name}.json")
        ms = [m for m in run.measurements if m.metric == "throughput" and m.ok]
        how = ms[0].context["timing"]
        widths = {}
        for m in ms:
            batch = m.figures["batch_s"].value
            ratio = m.figures.get("batch_ratio")
            if ratio is not None:
                widths[m.variant] = ratio.relative_half_width
            per_arm.setdefault(name[0], {}).setdefault(m.variant, []).append(
                (batch, ratio.value if ratio else 1.0, ratio.relative_half_width if ratio else 0.0))
        widest = max(widths, key=widths.__getitem__)
        load = (out / f"{name}.uptime").read_text().split("load average:")[1].split(",")[0].strip()
        print(f"| {name} | {how.get('throughput_warmup')} | {load} | {walls[name]} | {how['phase_s']['throughput']:.1f} | "
              f"±{statistics.median(widths.values()):.1%} | {widest} ±{widths[widest]:.1%} |")
    arms = sorted(per_arm)
    print()
    print("| variant | " + " | ".join(f"{a}: batch ms, ratio (±CI)" for a in arms) + " |")
    print("|---|" + "---|" * len(arms))
    for v in per_arm[arms[0]]:
        cells = []
        for a in arms:
            got = per_arm[a].get(v, [])
            cells.append(" / ".join(f"{b * 1e3:.0f} ms, {r:.3f}x (±{w:.1%})" for b, r, w in got))
        print(f"| {v} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
