"""`slimbench plan`: what `make report` is about to do on this machine, step by step, and roughly how
long each step takes -- said before anything starts, so a first run is never a silent hour.

Build estimates come from `slimbench.build.eta` (an earlier build here, else the reference VM).
The benchmark pass is estimated per variant from the reference VM (BENCH_S_PER_VARIANT).
"""

from __future__ import annotations

import argparse
from typing import Any

from slimbench.build.eta import estimate, minutes

# The reference VM's benchmark pass of the 12-variant default zoo (all five measurements, paired
# latency with its extra rounds within the 150-s budget, idle workers frozen, accuracy labels from
# the memo): 306-374 s in the six passes of 2026-12-03 on its AMD CPU (latency-budget.md,
# cold-run-7.md), 333-373 s in six on its Intel CPU (probe-cost.md, cold-run-9.md, cold-run-10.md):
# ~30 s a variant.
BENCH_S_PER_VARIANT = 30.0
REPORT_S = 15.0


def _step(ctx: Any, names: list[str], default_data: bool, skip: frozenset[str] = frozenset()) -> tuple[float, int, int, int]:
    """(estimated seconds, cached, to build, unknown estimates) for building `names` and their
    sources, leaving out `skip` (built by an earlier step)."""
    order = [spec.name for spec in ctx.zoo.build_order(names) if spec.name not in skip]
    todo = [n for n in order if not ctx.is_built(n)]
    found = [estimate(ctx.root, n, default_data)[0] for n in todo]
    return sum(s for s in found if s is not None), len(order) - len(todo), len(todo), sum(s is None for s in found)


def cmd_plan(args: argparse.Namespace) -> int:
    from slimbench.build.autocast import AUTO
    from slimbench.commands import build_context
    from slimbench.commands.sweep import DEFAULT_LEVELS, rung_spec
    from slimbench.spec.schema import spec_from_dict
    from slimbench.spec.zoo import Zoo

    ctx = build_context(args, quiet=True)
    default_data = args.dataset == "movie-snippets" and args.base is None
    names = list(ctx.zoo.names)
    build_s, cached, todo, unknown = _step(ctx, names, default_data)
    base = ctx.zoo.get("standard") if "standard" in ctx.zoo.specs else None
    sweep_s, rungs_cached, rungs_todo, rungs_unknown = 0.0, 0, 0, 0
    if base is not None:
        rungs = [spec_from_dict(rung_spec(base, lv, "global", 0), where="sweep") for lv in DEFAULT_LEVELS if lv > 0]
        ctx.zoo = Zoo([*ctx.zoo.specs.values(), *rungs])
        sweep_s, rungs_cached, rungs_todo, rungs_unknown = _step(ctx, [r.name for r in rungs], default_data,
                                                                 frozenset(names))
    bench_s = BENCH_S_PER_VARIANT * len(names)
    rows = [
        ("slimbench build", f"{len(names)} variants: {cached} cached, {todo} to build"
         + (f" ({unknown} without an estimate)" if unknown else ""), build_s, unknown),
        ("slimbench sweep", f"standard's sparsity ladder, {rungs_cached + rungs_todo} rungs: {rungs_cached} cached, "
         f"{rungs_todo} to build" + (f" ({rungs_unknown} without an estimate)" if rungs_unknown else ""), sweep_s,
         rungs_unknown),
        ("pytest bench", f"{len(names)} variants x 5 measurements (start-up, memory, latency, throughput, "
         "accuracy), all variants' workers interleaved", bench_s, 0),
        ("slimbench report", "reports/REPORT.md with plots and ship advice", REPORT_S, 0),
    ]
    print("slimbench plan: what `make report` does on this machine (estimates from earlier builds here, "
          "else the reference 2-core VM)")
    for k, (step, what, seconds, unknown_n) in enumerate(rows, start=1):
        print(f"  {k}. {step:16s} ~{minutes(seconds) + ('+?' if unknown_n else ''):>9s}  {what}")
    if any(spec.train.get("autocast") == AUTO for spec in ctx.zoo.specs.values()):
        print(f"  training steps ([train] autocast = \"auto\"): {ctx.train_autocast().describe()}")
    unknown_all = any(r[3] for r in rows)
    print(f"  in all about {minutes(sum(r[2] for r in rows))}{' plus the steps without an estimate' if unknown_all else ''}; "
          "each step prints its own progress and ETA")
    return 0


def register_cli(sub: Any) -> None:
    from slimbench.commands import add_common

    p = sub.add_parser("plan", help="say what `make report` will do here and roughly how long each step takes",
                       description="Print the steps of `make report` (build, sweep, benchmark pass, report) with "
                                   "what is cached and an estimate of each step's time on this machine. "
                                   "Builds nothing.")
    add_common(p)
    p.set_defaults(func=cmd_plan)
