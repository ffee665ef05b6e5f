"""Per-round log ratio noise vs distance (in slots) between the variant's block and standard's."""

import math
import sys

import numpy as np
from blocks import latency_blocks

from slimbench.measure.interleave import rotated

rounds, keys = latency_blocks(sys.argv[1])
R = max(max(p) for p in rounds.values()) + 1
rows = []
for r in range(R):
    alive = [k for k in keys if r in rounds[k]]
    order = rotated(alive, r)
    pos = {k: i for i, k in enumerate(order)}
    if "standard" not in pos:
        continue
    for k in alive:
        if k == "standard":
            continue
        lr = math.log(np.median(rounds[k][r]) / np.median(rounds["standard"][r]))
        rows.append((k, r, pos[k] - pos["standard"], lr))
by = {}
for k, _r, gap, lr in rows:
    by.setdefault(k, []).append((gap, lr))
allres = []
for _k, v in by.items():
    lr = np.array([x[1] for x in v])
    med = np.median(lr)
    for gap, x in v:
        allres.append((abs(gap), x - med, gap))
a = np.array(allres)
print("abs gap | n | MAD of log-ratio residual | sd")
for g in range(0, 12):
    m = a[a[:, 0] == g]
    if len(m):
        print(g, len(m), round(float(np.median(np.abs(m[:, 1]))), 4), round(float(m[:, 1].std()), 4))
print("signed gap: before(<0) / after(>0)")
for sgn, sel in (("var before std", a[:, 2] < 0), ("var after std", a[:, 2] > 0)):
    m = a[sel]
    print(sgn, len(m), round(float(np.median(np.abs(m[:, 1]))), 4))
