"""How often the start-up probes' early stopping (3 samples, all within +-10 % of their median) is
met by the first three samples as taken (two worker start-ups, one fresh probe), and how often it
would be by the first worker start-up and two fresh probes (the second worker start-up left out).

usage: PYTHONPATH=src python experiments/first-run/probe_stops.py RESULTS.json [...]
"""

from __future__ import annotations

import statistics
import sys

from slimbench.analysis.results import load_run

PHASES = ("interpreter_s", "import_s", "load_s", "first_predict_s")


def tight(xs: list[float], spread: float = 0.10) -> bool:
    m = statistics.median(xs)
    return all(abs(x / m - 1) <= spread for x in xs)


def main(paths: list[str]) -> None:
    n = full = today = without = 0
    for path in paths:
        for m in load_run(path).measurements:
            if m.metric != "load" or not m.ok:
                continue
            s = [sum(x) for x in zip(*(m.samples[k] for k in PHASES), strict=True)]
            full += len(s) == 5
            if len(s) >= 4:
                n += 1
                today += tight(s[:3])
                without += tight([s[0], *s[2:4]])
    print(f"{len(paths)} runs; variant-runs that took the 5-sample cap: {full}; of the {n} that took a 4th "
          f"sample, first three within +-10 %: {today} as taken, {without} without the 2nd worker start-up")


if __name__ == "__main__":
    main(sys.argv[1:])
