"""Would shorter blocks for the fast variants cost interval width? On a run's saved latency blocks,
the paired p50-ratio CI of each repeated variant (its block repeats the round's sentences to last
--latency-min-block-ms) from its whole blocks and from only the first 1/F of each block (what a
min-block F times shorter would have timed), and the round's summed block time both ways.
Only the within-block sampling is simulated: a shorter round also brings the blocks closer in time,
which this cannot show.

    PYTHONPATH=src python experiments/first-run/round-noise/half_blocks.py RESULTS.json [F]
"""

import math
import sys

from blocks import latency_blocks

from slimbench.analysis.results import load_run
from slimbench.stats import paired_ratio

path, factor = sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 2.0
blocks, order = latency_blocks(path)
run = load_run(path)
repeat = {}
for m in run.measurements:
    if m.metric == "latency" and m.ok:
        repeat = m.context["timing"].get("repeat", {})
        break
std = blocks["standard"]
rounds = sorted(std)
print(f"{path}: {len(rounds)} rounds; F = {factor:g}")
print("| variant | repeat | CI half-width, whole blocks | first 1/F of each block | x |")
print("|---|---|---|---|---|")
full_t = short_t = 0.0
whole = [r for r in rounds if all(blocks[v].get(r) for v in order)]  # rounds in which every variant ran
for v in order:
    per = blocks[v]
    k = repeat.get(v, 1)
    cut = {r: s[: max(10, math.ceil(len(s) / factor))] if k > 1 else s for r, s in per.items()}
    full_t += sum(sum(per[r]) for r in whole)
    short_t += sum(sum(cut[r]) for r in whole)
    if v == "standard" or k == 1:
        continue
    a = paired_ratio([per.get(r) for r in rounds], [std[r] for r in rounds])
    b = paired_ratio([cut.get(r) for r in rounds], [std[r] for r in rounds])
    wa, wb = (a.high - a.low) / 2 / a.value, (b.high - b.low) / 2 / b.value
    print(f"| {v} | {k} | ±{wa:.1%} | ±{wb:.1%} | {wb / wa:.2f} |")
print(
    f"kept samples per round (the {len(whole)} rounds every variant ran): {full_t / len(whole):.2f} s whole, "
    f"{short_t / len(whole):.2f} s with the cut"
)
