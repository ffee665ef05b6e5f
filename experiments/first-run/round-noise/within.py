"""Within-block spread of latency samples vs the spread of block medians between rounds."""

import math
import sys

import numpy as np
from blocks import latency_blocks

for variant, per in latency_blocks(sys.argv[1])[0].items():
    meds = np.array([np.median(v) for v in per.values()])
    iq = [(np.percentile(v, 75) - np.percentile(v, 25)) / np.median(v) for v in per.values()]
    n = np.median([len(v) for v in per.values()])
    lm = np.log(meds)
    # predicted sd of a block median from within-block spread: 1.253*sigma/sqrt(n), sigma~IQR/1.35
    pred = 1.253 * np.median(iq) / 1.349 / math.sqrt(n)
    print(
        f"{variant:24s} n/block {n:5.0f} within-block IQR/med {np.median(iq):.3f} -> predicted sd(log med) {pred:.3f}; observed MAD*1.48 of log block medians {1.4826 * np.median(np.abs(lm - np.median(lm))):.3f}"
    )
