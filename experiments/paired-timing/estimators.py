"""How precise is each way of summarising a run's paired rounds into one p50 ratio?

Reads the raw latency samples of one or more `pytest bench` result files (each sample carries the
round it was taken in) and, per variant, forms the per-round log-ratio of block medians to
`standard`'s block in the same round -- exactly what `stats.paired_ratio` starts from -- then
compares centre estimators over those rounds by the half-width of their 95 % bootstrap interval
(rounds resampled, 2000 times):

- median: the median of the rounds' ratios (slimbench's estimator up to this study);
- hodges-lehmann: the median of all pairwise means of the rounds' log-ratios (Walsh averages), a
  rank estimator about as efficient as the mean for normal noise and, unlike the mean, robust to a
  round hit by a burst;
- trimmed-25: the mean of the middle half of the rounds' log-ratios.

The narrower interval at the same rounds is the estimator that needs fewer rounds for the same
precision (rounds scale as the square of the half-width), and the one whose value moves less from
run to run. Usage:

    python experiments/paired-timing/estimators.py reports/results.json [more.json ...] [--md out.md]
    python experiments/paired-timing/estimators.py estimators-zen5-fixed120.json   (the committed rounds)
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

RESAMPLES = 2000


def block_medians(bench: dict[str, Any]) -> dict[int, float]:
    """{round: median of the variant's block in that round} from a result's raw samples."""
    samples = dict(bench["extra_info"]["samples"])
    if bench["extra_info"].get("samples_in_stats"):  # written once, as pytest-benchmark's stats.data
        samples[bench["extra_info"]["samples_in_stats"]] = bench["stats"]["data"]
    blocks: dict[int, list[float]] = {}
    for s, r in zip(samples["latency_s"], samples["latency_round"], strict=True):
        blocks.setdefault(int(r), []).append(float(s))
    return {r: float(np.median(b)) for r, b in blocks.items()}


def load(path: Path) -> dict[str, dict[int, float]]:
    """Block medians per variant and round, from a `pytest bench` JSON (raw samples) or from the
    compact file `--rounds-json` writes (what is committed: the raw files are ~8 MB)."""
    data = json.loads(path.read_text())
    if "benchmarks" not in data:
        return {v: {int(r): m for r, m in rounds.items()} for v, rounds in data["block_medians_s"].items()}
    return {b["extra_info"]["variant"]: block_medians(b) for b in data["benchmarks"]
            if b.get("extra_info", {}).get("metric") == "latency" and b["extra_info"].get("samples")}


def log_ratios(num: dict[int, float], den: dict[int, float]) -> np.ndarray:
    return np.asarray([math.log(num[r] / den[r]) for r in sorted(num) if r in den])


def hodges_lehmann(x: np.ndarray) -> float:
    i, j = np.triu_indices(x.size)
    return float(np.median((x[i] + x[j]) / 2))


def trimmed(x: np.ndarray, cut: float = 0.25) -> float:
    s = np.sort(x)
    k = int(math.floor(cut * s.size))
    return float(s[k:s.size - k].mean())


ESTIMATORS = {"median": lambda x: float(np.median(x)), "hodges-lehmann": hodges_lehmann, "trimmed-25": trimmed}


def half_width(x: np.ndarray, estimate: Any, seed: int = 0) -> float:
    """Relative half-width of the percentile-bootstrap 95 % interval of exp(estimate)."""
    rng = np.random.default_rng(seed)
    boot = np.asarray([estimate(x[rng.integers(0, x.size, x.size)]) for _ in range(RESAMPLES)])
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return float((math.exp(hi) - math.exp(lo)) / 2 / math.exp(estimate(x)))


def study(path: Path, latency: dict[str, dict[int, float]]) -> list[dict[str, Any]]:
    latency = dict(latency)
    ref = latency.pop("standard")
    rows = []
    for variant, rounds in latency.items():
        x = log_ratios(rounds, ref)
        row: dict[str, Any] = {"file": str(path), "variant": variant, "rounds": int(x.size),
                               "round_sd": float(x.std(ddof=1))}
        for name, f in ESTIMATORS.items():
            row[name] = {"value": math.exp(f(x)), "half_width": half_width(x, f)}
        rows.append(row)
    return rows


def render(rows: list[dict[str, Any]]) -> list[str]:
    md = ["| file | variant | rounds | SD of a round's log-ratio | " + " | ".join(
        f"{n}: ratio ±CI" for n in ESTIMATORS) + " | rounds for the same CI as the median: HL, trimmed |",
          "|---|---|---|---|" + "---|" * len(ESTIMATORS) + "---|"]
    for r in rows:
        cells = [f"{r[n]['value']:.4f} ±{100 * r[n]['half_width']:.1f} %" for n in ESTIMATORS]
        m = r["median"]["half_width"]
        need = [f"{(r[n]['half_width'] / m) ** 2:.2f}×" for n in ("hodges-lehmann", "trimmed-25")]
        md.append(f"| {Path(r['file']).name} | {r['variant']} | {r['rounds']} | {100 * r['round_sd']:.1f} % | "
                  + " | ".join(cells) + f" | {', '.join(need)} |")
    ratio = {n: float(np.median([r[n]["half_width"] / r["median"]["half_width"] for r in rows]))
             for n in ("hodges-lehmann", "trimmed-25")}
    md += ["", "Median over rows of CI half-width relative to the median estimator's: "
           + ", ".join(f"{n} {v:.2f}" for n, v in ratio.items())
           + " (rounds needed for the same interval scale as its square)."]
    return md


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("results", nargs="+", type=Path, help="pytest bench JSON files with raw samples")
    p.add_argument("--md", type=Path, default=None, help="write the table here too")
    p.add_argument("--rounds-json", type=Path, default=None,
                   help="with one input: write its block medians per variant and round here (a compact input)")
    args = p.parse_args()
    loaded = {path: load(path) for path in args.results}
    if args.rounds_json and len(loaded) == 1:
        (latency,) = loaded.values()
        args.rounds_json.write_text(json.dumps({"block_medians_s": latency}, indent=0))
    rows = [row for path, latency in loaded.items() for row in study(path, latency)]
    md = [f"<!-- written by `python experiments/paired-timing/estimators.py {' '.join(sys.argv[1:])}` -->", "",
          "# Centre estimators of a run's paired rounds", "", *render(rows)]
    print("\n".join(md))
    if args.md:
        args.md.write_text("\n".join(md) + "\n")


if __name__ == "__main__":
    main()
