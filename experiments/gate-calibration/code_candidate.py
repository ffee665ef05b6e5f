"""A candidate checkout with a real code change: VARIANT's runner does a fixed amount of extra CPU
work per call, calibrated to FRACTION of that variant's p50 on this machine.

    python experiments/gate-calibration/code_candidate.py /tmp/cand-5pct --variant onnx-int8 --fraction 0.05

It makes PATH a git worktree of HEAD (detached; replaced if it exists), measures VARIANT's p50 on
single sentences in this process (the timing worker's loop, the same threads) and the cost of one
iteration of a plain Python loop, and edits PATH/src/slimbench/runtimes/runners.py so that the
onnxruntime runner runs that loop ITERS times after every call of VARIANT. Unlike `slimbench compare
--candidate-extra-work` (a spin proportional to each call's own duration, in the measuring code),
this is the candidate's own source: a fixed amount of work, slowed or sped by the machine like the
rest of the call. Writes PATH/CANDIDATE.json (iterations, the calibration figures).

The in-process calibration can land off the mark in compare's workers (3,595 iterations sized to
5 % in-process measured +3.9 % median in ten compares). `--rescale-from NAME.json` calibrates on
the workers instead: each code-change run recorded in catch_rate.py's NAME.json (several files pool
their runs, also of candidates with different iterations) gives a measured change per iteration, and
the loop gets FRACTION / (their median) iterations.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
ANCHOR = "        return self.session.run(None, {k: v for k, v in feed.items() if k in self.input_names})[0]\n"
PATCH = """        out = self.session.run(None, {{k: v for k, v in feed.items() if k in self.input_names}})[0]
        if self.manifest.get("name") == {variant!r}:  # code_candidate.py: fixed extra work per call
            x = 0
            for i in range({iters}):
                x += i
        return out
"""


def loop_seconds_per_iteration(n: int = 2_000_000, repeats: int = 7) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        x = 0
        for i in range(n):
            x += i
        times.append(time.perf_counter() - t)
    return statistics.median(times) / n


def variant_p50(variant: str, threads: int, calls: int) -> float:
    from slimbench.build.context import default_context
    from slimbench.runtimes.runners import open_runner

    ctx = default_context(log=lambda s: None)
    texts = [e.text for e in ctx.splits.test][:calls]
    runner = open_runner(ctx.artifact_dir(variant), threads)
    for t in texts[:20]:  # warm-up
        runner.predict_logits([t])
    times = []
    for t in texts:
        s = time.perf_counter()
        runner.predict_logits([t])
        times.append(time.perf_counter() - s)
    runner.close()
    return statistics.median(times)


def make_worktree(path: Path) -> None:
    if path.exists():
        subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=REPO, check=False)
    subprocess.run(["git", "worktree", "prune"], cwd=REPO, check=True)
    subprocess.run(["git", "worktree", "add", "--detach", str(path), "HEAD"], cwd=REPO, check=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("path", type=Path, help="where the candidate checkout goes (a git worktree of HEAD)")
    p.add_argument("--variant", default="onnx-int8")
    p.add_argument("--fraction", type=float, default=0.05, help="extra work as a fraction of the variant's p50")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--calls", type=int, default=600, help="single-sentence calls for the p50")
    p.add_argument("--rescale-from", type=Path, nargs="+", default=None, metavar="NAME.json",
                   help="size the loop from the code-change runs recorded by catch_rate.py (one or more files "
                        "whose candidate ran the same iterations) instead of in-process")
    args = p.parse_args()
    path = args.path.resolve()
    p50 = variant_p50(args.variant, args.threads, args.calls)
    per_iter = loop_seconds_per_iteration()
    iters = round(args.fraction * p50 / per_iter)
    rescaled = None
    if args.rescale_from:
        # each code-change run's measured change per loop iteration; files may differ in iterations
        earlier = [json.loads(f.read_text()) for f in args.rescale_from]
        runs = [(r["p50"][args.variant][0], e["candidate"]["iterations"]) for e in earlier for r in e["runs"]["code5"]]
        changes = [change for change, _ in runs]
        slopes = [(change - 1) / n for change, n in runs]
        counts = sorted({n for _, n in runs})
        iters = round(args.fraction / statistics.median(slopes))
        rescaled = {"from": ", ".join(f.name for f in args.rescale_from),
                    "earlier_iterations": counts[0] if len(counts) == 1 else counts,
                    "median_change": statistics.median(changes), "runs": len(changes),
                    "median_change_per_iteration": statistics.median(slopes)}
    make_worktree(path)
    runtime = path / "src" / "slimbench" / "runtimes" / "runners.py"
    if not runtime.is_file():  # a checkout from before the runtimes package
        runtime = path / "src" / "slimbench" / "runtime.py"
    source = runtime.read_text()
    if source.count(ANCHOR) != 1:
        raise SystemExit(f"{runtime}: the onnxruntime runner's return line is not where this script expects it")
    runtime.write_text(source.replace(ANCHOR, PATCH.format(variant=args.variant, iters=iters)))
    facts = {"variant": args.variant, "fraction": args.fraction, "iterations": iters, "p50_s": p50,
             "loop_s_per_iteration": per_iter, "extra_s": iters * per_iter, "threads": args.threads,
             "calls": args.calls, "rescaled": rescaled, "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                                                           capture_output=True, text=True).stdout.strip()}
    (path / "CANDIDATE.json").write_text(json.dumps(facts, indent=1) + "\n")
    print(json.dumps(facts, indent=1))


if __name__ == "__main__":
    sys.exit(main())
