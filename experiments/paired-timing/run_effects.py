"""Where does a ratio's run-to-run spread come from: within a run (drift across its rounds) or from
the run as a whole (its worker processes, the host's state over minutes)?

Reads the raw latency samples of back-to-back `pytest bench` runs (`evidence.py repro --keep DIR`
keeps them) and, per variant, from each run's per-round log-ratio of block medians to `standard`'s
block in the same round (what `stats.paired_ratio` starts from):

- autocorrelation of the rounds' log-ratios at lags 1, 2, 5 and 10: drift inside a run would show
  as a positive correlation between nearby rounds;
- coverage: how many runs' 95 % intervals hold the variant's median across the runs, with the
  bootstrap slimbench uses (rounds resampled independently) and with moving-block bootstraps of
  5, 10 and 20 consecutive rounds (which would widen the interval if nearby rounds were alike);
- the spread of the runs' ratios (SD of the log) against the spread the runs' own intervals imply:
  the excess is a component of the whole run that more rounds inside one run cannot average away.

Usage:

    python experiments/paired-timing/run_effects.py /tmp/repro-keep/repro-zen5-quiet-*.json \
        [--save-rounds experiments/paired-timing/run-effects-rounds.json] [--md out.md]
    python experiments/paired-timing/run_effects.py experiments/paired-timing/run-effects-rounds.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
from estimators import load, log_ratios

RESAMPLES = 2000
BLOCKS = (5, 10, 20)
LAGS = (1, 2, 5, 10)


def interval(x: np.ndarray, block: int, rng: np.random.Generator) -> tuple[float, float]:
    """95 % bootstrap interval of the median of x; block > 1: moving blocks of that many rounds."""
    n = x.size
    if block <= 1:
        idx = rng.integers(0, n, (RESAMPLES, n))
    else:
        starts = rng.integers(0, n - block + 1, (RESAMPLES, math.ceil(n / block)))
        idx = (starts[:, :, None] + np.arange(block)[None, None, :]).reshape(RESAMPLES, -1)[:, :n]
    lo, hi = np.percentile(np.median(x[idx], axis=1), [2.5, 97.5])
    return float(lo), float(hi)


def autocorrelation(x: np.ndarray, lag: int) -> float:
    return float(np.corrcoef(x[:-lag], x[lag:])[0, 1]) if x.size > lag + 2 else math.nan


def study(runs: list[dict[str, dict[int, float]]]) -> tuple[list[list[str]], dict[str, int], int, np.ndarray]:
    variants = [v for v in runs[0] if v != "standard"]
    misses = {"independent rounds": 0, **{f"blocks of {b}": 0 for b in BLOCKS}}
    rows, acs = [], []
    for v in variants:
        lrs = [log_ratios(r[v], r["standard"]) for r in runs]
        centre = float(np.median([np.median(x) for x in lrs]))
        half = []
        for x in lrs:
            acs.append([autocorrelation(x, lag) for lag in LAGS])
            for block, name in zip((1, *BLOCKS), misses, strict=True):
                lo, hi = interval(x, block, np.random.default_rng(0))
                misses[name] += not lo <= centre <= hi
                if block == 1:
                    half.append((hi - lo) / 2)
        meds = np.asarray([np.median(x) for x in lrs])
        between = float(np.std(meds, ddof=1))
        within = float(np.sqrt(np.mean(np.square(np.asarray(half) / 1.96))))  # a run's own SE, from its interval
        excess = math.sqrt(max(between ** 2 - within ** 2, 0.0))
        rows.append([v, " · ".join(f"{math.exp(m):.3f}" for m in meds), f"{between * 100:.1f} %",
                     f"{within * 100:.1f} %", f"{excess * 100:.1f} %", str(min(x.size for x in lrs))])
    return rows, misses, len(variants) * len(runs), np.nanmedian(np.asarray(acs), axis=0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("results", nargs="+", type=Path,
                   help="pytest bench JSON files with raw samples, or one file --save-rounds wrote")
    p.add_argument("--save-rounds", type=Path, default=None,
                   help="write the runs' block medians here (a few hundred kB instead of ~8 MB a run)")
    p.add_argument("--md", type=Path, default=None, help="write the tables here too")
    args = p.parse_args()
    if len(args.results) == 1 and "runs" in (doc := json.loads(args.results[0].read_text())):
        runs = [{v: {int(r): m for r, m in rounds.items()} for v, rounds in run.items()} for run in doc["runs"]]
        sources = doc["sources"]
    else:
        runs, sources = [load(path) for path in args.results], [path.name for path in args.results]
    if args.save_rounds:
        args.save_rounds.write_text(json.dumps({"sources": sources, "runs": runs}, separators=(",", ":")))
    rows, misses, n, acs = study(runs)
    lines = [f"<!-- written by `python experiments/paired-timing/run_effects.py {' '.join(sys.argv[1:])}` -->",
             f"# A ratio's spread between runs and within them ({len(runs)} runs: {', '.join(sources)})", "",
             "Autocorrelation of a run's per-round log-ratios (median over variants and runs), lags "
             + ", ".join(f"{lag}: {a:+.3f}" for lag, a in zip(LAGS, acs, strict=True)) + ".", "",
             f"Runs' 95 % intervals that miss their variant's median across the runs, of {n}: "
             + "; ".join(f"{k} {m}" for k, m in misses.items()) + ".", "",
             "| variant | p50 ratio to standard per run | SD between runs | a run's own SE | excess (run component) "
             "| rounds (fewest) |", "|---|---|---|---|---|---|",
             *(f"| {' | '.join(r)} |" for r in rows)]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.md:
        args.md.write_text(text)


if __name__ == "__main__":
    main()
