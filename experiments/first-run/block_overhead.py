"""Where a latency round's time goes besides the timed calls (issue 15). A bench pass's latency
round takes ~1.7 s on the 12-variant zoo, of which the kept samples sum to ~1.0 s. This starts the
same worker pool the bench uses (2 processes per variant, idle ones frozen), runs interleaved
latency blocks as the bench does, and splits each block's wall time, seen from the parent, into:
the calls the worker timed (kept and discarded) and the rest (the request's round trip, thawing and
freezing the worker, and the worker's own loop).

    PYTHONPATH=src SLIMBENCH_CACHE=... python experiments/first-run/block_overhead.py [ROUNDS]

(the zoo built; nothing else running; ~2 min)
"""

from __future__ import annotations

import statistics
import sys
import time

from slimbench.build.context import default_context
from slimbench.measure.interleave import DISCARD, equal_time_repeats, rotated
from slimbench.measure.workers import WorkerPool, WorkerSpec

BLOCK = 12


def main(rounds: int) -> int:
    ctx = default_context(log=lambda _: None)
    names = list(ctx.zoo.specs)
    texts = [e.text for e in ctx.splits.test]
    specs = [WorkerSpec(n, ctx.artifact_dir(n), 2) for n in names]
    with WorkerPool(specs, texts, processes=2) as pool:
        repeat = equal_time_repeats(pool.warm_up(20), BLOCK)
        run = pool.blocks("latency", BLOCK, repeat=repeat)
        wall: dict[str, list[float]] = {n: [] for n in names}
        timed: dict[str, list[float]] = {n: [] for n in names}
        round_s = []
        for r in range(rounds):
            t0 = time.perf_counter()
            for key in rotated(pool.alive, r):
                t = time.perf_counter()
                s = run(key, r) or []
                wall[key].append(time.perf_counter() - t)
                timed[key].append(sum(s))
            round_s.append(time.perf_counter() - t0)
        print(f"{rounds} rounds of {len(names)} variants, block {BLOCK} calls (first {DISCARD} discarded by the bench)")
        print("| variant | repeat | block wall ms (median) | timed calls ms | rest ms |")
        print("|---|---|---|---|---|")
        for n in names:
            w, c = statistics.median(wall[n]) * 1e3, statistics.median(timed[n]) * 1e3
            print(f"| {n} | {repeat.get(n, 1)} | {w:.1f} | {c:.1f} | {w - c:.1f} |")
        rest = sum(statistics.median(wall[n]) - statistics.median(timed[n]) for n in names)
        print(f"round: {statistics.median(round_s):.3f} s median; the rest, summed over blocks: {rest:.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 20))
