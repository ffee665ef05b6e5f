"""Shared by the round-noise scripts: a results file's latency blocks, per variant and round, read
through slimbench.analysis.results (any format slimbench writes), and the order the variants were given in."""

from slimbench.analysis.results import load_run


def latency_blocks(path):
    run = load_run(path)
    blocks, order = {}, []
    for m in run.measurements:
        if m.metric != "latency" or not m.ok:
            continue
        per = {}
        for x, r in zip(m.samples["latency_s"], m.samples["latency_round"], strict=True):
            per.setdefault(int(r), []).append(x)
        blocks[m.variant] = per
        order = order or m.context["timing"]["variants"]
    return blocks, [k for k in order if k in blocks]
