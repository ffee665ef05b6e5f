"""Where a fresh `make report` spends its time: the per-step table of every build in a cache, and,
given the run's timestamped log, the wall time of each phase (issue 15).

    python experiments/first-run/build_profile.py CACHE [LOG]

CACHE is the run's SLIMBENCH_CACHE (its artifacts/ holds one manifest per build, with the
`build_steps_s` that `slimbench build` records); LOG is `make report`'s output with each line
prefixed by `HH:MM:SS ` (see cold-run.sh). Prints Markdown.
"""

from __future__ import annotations

import json
import re
import sys
from datetime import datetime
from pathlib import Path

PHASES = [  # (phase, the first log line of the phase after it: tox's "report: commands[N]>" lines)
    ("set-up: venv, tox, installs", re.compile(r"commands\[0\]>")),
    ("plan (and the assets' download, if not cached)", re.compile(r"commands\[1\]>")),
    ("build: the default zoo", re.compile(r"commands\[2\]>")),
    ("sweep: the sparsity ladder", re.compile(r"commands\[3\]>")),
    ("bench pass", re.compile(r"commands\[5\]>")),
    ("report", re.compile(r"make exit|congratulations|report: OK")),
]


def builds(cache: Path) -> list[dict]:
    rows = []
    for manifest in (cache / "artifacts").glob("*/manifest.json"):
        m = json.loads(manifest.read_text())
        rows.append(m)
    return sorted(rows, key=lambda m: m.get("built_at", ""))


def step_table(rows: list[dict]) -> str:
    steps: list[str] = []
    for m in rows:
        steps += [s for s in m.get("build_steps_s", {}) if s not in steps and s != "other"]
    steps.append("other")
    head = "| variant | build s | " + " | ".join(steps) + " | test acc |"
    lines = [head, "|" + "---|" * (len(steps) + 3)]
    total = {s: 0.0 for s in steps}
    for m in rows:
        rec = m.get("build_steps_s", {})
        for s in steps:
            total[s] += rec.get(s, 0.0)
        acc = m.get("test_accuracy")
        lines.append(f"| {m['name']} | {m['build_seconds']:.0f} | "
                     + " | ".join(f"{rec[s]:.0f}" if s in rec else "" for s in steps)
                     + f" | {'' if acc is None else f'{acc:.4f}'} |")
    lines.append(f"| **all {len(rows)}** | **{sum(m['build_seconds'] for m in rows):.0f}** | "
                 + " | ".join(f"**{total[s]:.0f}**" for s in steps) + " | |")
    return "\n".join(lines)


def phases(log: Path) -> str:
    stamps = []
    for line in log.read_text(errors="replace").splitlines():
        match = re.match(r"(\d\d:\d\d:\d\d) (.*)", line)
        if match:
            stamps.append((datetime.strptime(match[1], "%H:%M:%S"), match[2]))
    if not stamps:
        return "(no timestamped lines)"
    start, k = stamps[0][0], 0
    out = ["| phase | wall s |", "|---|---|"]
    for name, end in PHASES:
        while k < len(stamps) and not end.search(stamps[k][1]):
            k += 1
        when = stamps[min(k, len(stamps) - 1)][0]
        out.append(f"| {name} | {(when - start).total_seconds():.0f} |")
        start = when
    out.append(f"| **total** | **{(stamps[-1][0] - stamps[0][0]).total_seconds():.0f}** |")
    return "\n".join(out)


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    cache = Path(argv[0])
    rows = builds(cache)
    variants = [m for m in rows if "-sparse-" not in m["name"]]
    rungs = [m for m in rows if "-sparse-" in m["name"]]
    if len(argv) > 1:
        print("## Phases of the run (wall time, from the log's timestamps)\n")
        print(phases(Path(argv[1])) + "\n")
    print("## Builds: seconds per step (the manifests' `build_steps_s`)\n")
    print(step_table(variants) + "\n")
    if rungs:
        print("## Sweep rungs\n")
        print(step_table(rungs) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
