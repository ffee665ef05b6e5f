"""CI half-width of the per-round-ratio location: median (today) vs Hodges-Lehmann vs 20% trimmed mean
(of log ratios), bootstrap 95 %, on a committed results.json. Also: at 40 rounds (the first 40)."""

import math
import sys

import numpy as np
from blocks import latency_blocks
from scipy import stats as ss

blocks, _ = latency_blocks(sys.argv[1])
per = {v: {r: np.median(b) for r, b in p.items()} for v, p in blocks.items()}
std = per["standard"]


def hl(x):
    i, j = np.triu_indices(len(x))
    return np.median((x[i] + x[j]) / 2)


def tmean(x):
    return ss.trim_mean(x, 0.2)


rng = np.random.default_rng(0)


def ci(x, f, B=1000):
    idx = rng.integers(0, len(x), (B, len(x)))
    bs = np.array([f(x[k]) for k in idx])
    lo, hi = np.percentile(bs, [2.5, 97.5])
    return (math.exp(hi) - math.exp(lo)) / 2 / math.exp(f(x))


tot = {"med": [], "hl": [], "tm": []}
for v, p in per.items():
    if v == "standard":
        continue
    lr = np.array([math.log(p[r] / std[r]) for r in sorted(p) if r in std])
    for n in (40, len(lr)):
        x = lr[:n]
        w = {k: ci(x, f) for k, f in (("med", np.median), ("hl", hl), ("tm", tmean))}
        if n == len(lr):
            [tot[k].append(w[k]) for k in w]
        print(
            f"{v:22s} n={n:3d} median ±{w['med'] * 100:4.1f}%  HL ±{w['hl'] * 100:4.1f}%  trim20 ±{w['tm'] * 100:4.1f}%   est med {math.exp(np.median(x)):.4f} HL {math.exp(hl(x)):.4f}"
        )
print({k: round(float(np.mean(v)) * 100, 2) for k, v in tot.items()})
