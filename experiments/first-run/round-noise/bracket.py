"""Same-round reference vs a reference interpolated (in log space, by slot index) between the two
standard blocks that bracket the variant's block in time. CI half-width of the median log ratio."""

import math
import sys

import numpy as np
from blocks import latency_blocks

from slimbench.measure.interleave import rotated

blocks, keys = latency_blocks(sys.argv[1])
per = {v: {r: np.median(b) for r, b in p.items()} for v, p in blocks.items()}
R = max(max(p) for p in per.values()) + 1
slot = {}  # (key, r) -> absolute slot
t = 0
for r in range(R):
    alive = [k for k in keys if r in per[k]]
    for i, k in enumerate(rotated(alive, r)):
        slot[(k, r)] = t + i
    t += len(alive)
std_slots = sorted((slot[("standard", r)], math.log(per["standard"][r])) for r in per["standard"])
ss_ = np.array([x[0] for x in std_slots])
sv = np.array([x[1] for x in std_slots])
rng = np.random.default_rng(0)


def ci(x, B=2000):
    bs = np.median(x[rng.integers(0, len(x), (B, len(x)))], axis=1)
    lo, hi = np.percentile(bs, [2.5, 97.5])
    return (math.exp(hi) - math.exp(lo)) / 2


out = []
for v in keys:
    if v == "standard":
        continue
    same, interp = [], []
    for r, x in per[v].items():
        if r not in per["standard"]:
            continue
        s_ = slot[(v, r)]
        same.append(math.log(x) - math.log(per["standard"][r]))
        j = np.searchsorted(ss_, s_)
        if 0 < j < len(ss_):
            w = (s_ - ss_[j - 1]) / (ss_[j] - ss_[j - 1])
            ref = sv[j - 1] * (1 - w) + sv[j] * w
        else:
            ref = math.log(per["standard"][r])
        interp.append(math.log(x) - ref)
    a, b_ = np.array(same), np.array(interp)
    out.append((ci(a), ci(b_)))
    print(
        f"{v:22s} n={len(a):3d} same-round ±{ci(a) * 100:4.1f}% ({math.exp(np.median(a)):.4f})  bracketed ±{ci(b_) * 100:4.1f}% ({math.exp(np.median(b_)):.4f})"
    )
o = np.array(out)
print(f"mean half-width: same-round {o[:, 0].mean() * 100:.2f}%, bracketed {o[:, 1].mean() * 100:.2f}%")
