"""How much a throughput block's timed batch still pays for the worker having been stopped, by the
size of the untimed call before it (issue 15), measured within blocks so the host's drift cancels.

The bench's worker pool (2 processes per variant, idle ones frozen), rounds in a rotated order as
the bench runs them; in each round every variant gets, back to back: an untimed call on W sentences,
its timed batch of 32 (t1: what the bench keeps), and the same 32 sentences again (t2: a batch after
a whole warm batch). W alternates between 32 (the old discarded batch), 4 and 0 by round. Per variant
and W: the median over rounds of t1/t2 with a 95 % bootstrap interval. A W whose t1/t2 is as close to
1 as W=32's leaves the timed batch as warm as a whole discarded batch did.

    PYTHONPATH=src SLIMBENCH_CACHE=... python experiments/first-run/throughput_warmup_within.py [ROUNDS_PER_W]

(the zoo built; nothing else running; ~4 min)
"""

from __future__ import annotations

import statistics
import sys

import numpy as np

from slimbench.build.context import default_context
from slimbench.measure.interleave import rotated
from slimbench.measure.workers import WorkerPool, WorkerSpec

SIZE = 32
WARMUPS = (32, 4, 0)


def interval(x: list[float], seed: int = 0) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    meds = [float(np.median(rng.choice(x, len(x)))) for _ in range(2000)]
    return float(np.percentile(meds, 2.5)), float(np.percentile(meds, 97.5))


def main(per_w: int) -> int:
    ctx = default_context(log=lambda _: None)
    names = list(ctx.zoo.specs)
    texts = [e.text for e in ctx.splits.test]
    specs = [WorkerSpec(n, ctx.artifact_dir(n), 2) for n in names]
    ratios: dict[tuple[str, int], list[float]] = {}
    with WorkerPool(specs, texts, processes=2) as pool:
        pool.warm_up(5)
        for r in range(per_w * len(WARMUPS)):
            w = WARMUPS[r % len(WARMUPS)]
            start = r * 2 * SIZE + SIZE  # the texts the bench's round r times
            for key in rotated(pool.alive, r):
                first = pool.request(key, {"op": "batch", "start": start, "size": SIZE, "n": 1, "warmup": w}, process=r)
                again = pool.request(key, {"op": "batch", "start": start, "size": SIZE, "n": 1}, process=r)
                if first and again:
                    ratios.setdefault((key, w), []).append(first["s"][0] / again["s"][0])
    print(f"{per_w} rounds per W; t1 = the timed batch of 32 after an untimed call on W sentences, "
          "t2 = the same 32 again at once; median t1/t2 [95 % CI]")
    print("| variant | " + " | ".join(f"W = {w}" for w in WARMUPS) + " |")
    print("|---|" + "---|" * len(WARMUPS))
    for n in names:
        cells = []
        for w in WARMUPS:
            x = ratios.get((n, w), [])
            if x:
                lo, hi = interval(x)
                cells.append(f"{statistics.median(x):.3f} [{lo:.3f}, {hi:.3f}]")
            else:
                cells.append("")
        print(f"| {n} | " + " | ".join(cells) + " |")
    for w in WARMUPS:
        meds = [statistics.median(ratios[(n, w)]) for n in names if (n, w) in ratios]
        print(f"W = {w}: median over variants of t1/t2 {statistics.median(meds):.3f}, largest {max(meds):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 8))
