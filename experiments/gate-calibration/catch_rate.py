"""How often `slimbench compare` catches a 5 % (and 3 %) slowdown, and how often it fails on none.

    python experiments/gate-calibration/code_candidate.py /tmp/cand-5pct      # the code-change candidate
    python experiments/gate-calibration/catch_rate.py --code-candidate /tmp/cand-5pct \\
        --aa 4 --x5 10 --code5 10 --x3 6 --minutes 60

Kinds of run, alternating so that a run cut short by --minutes stays balanced:
- aa:    this checkout against itself;
- x5/x3: `--candidate-extra-work onnx-int8=0.05` (0.03): the candidate's onnx-int8 spins 5 % (3 %) of
         each call's own duration more, in the measuring code;
- code5: this checkout against the code-change candidate (code_candidate.py: a fixed loop after each
         onnx-int8 call, calibrated to 5 % of its p50).
Every compare runs at compare's defaults (latency only: --no-probes --no-accuracy) except a low
p50 floor (--run-floor, default 3 %), so that every first-run change above 3 % is measured again
(`--confirm 1`, the default): the recorded first-run and re-measured changes can then be judged
at any floor from the run floor up, which is what the write-up does. Writes NAME.json and NAME.md here.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
VARIANTS = ("standard", "quantized", "onnx-int8", "ultra-light-onnx-int8")
TARGET = "onnx-int8"
KINDS = {"aa": "A/A", "x5": "A/B +5 % (extra work)", "code5": "A/B +5 % (code change)", "x3": "A/B +3 % (extra work)"}
FLOORS = (0.025, 0.03, 0.035, 0.04, 0.045, 0.05)


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def compare_once(kind: str, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    candidate = args.code_candidate if kind == "code5" else REPO
    cmd = [sys.executable, "-m", "slimbench.cli", "compare", "--baseline", str(REPO), "--candidate", str(candidate),
           "--variants", ",".join(VARIANTS), "--no-probes", "--no-accuracy", "--floor", f"p50={args.run_floor}",
           "--out", str(out)]
    if kind in ("x5", "x3"):
        cmd += ["--candidate-extra-work", f"{TARGET}={0.05 if kind == 'x5' else 0.03}"]
    if args.worker_processes:
        cmd += ["--worker-processes", str(args.worker_processes)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=1800)
    if not out.is_file():
        raise SystemExit(f"compare wrote no results (exit {proc.returncode}): {proc.stderr[-2000:]}")
    doc = json.loads(out.read_text())
    out.unlink()
    return doc


def record(doc: dict[str, Any]) -> dict[str, Any]:
    """A compare's first-run p50 change per variant, its re-measurement if any, other failures."""
    p50 = {v["variant"]: v for v in doc["verdicts"] if v["figure"] == "p50"}
    ms = doc["settings"]["measure"]
    return {"status": doc["status"], "elapsed_s": doc["elapsed_s"], "steal": doc.get("steal", {}),
            "rounds_setting": [ms["latency_rounds"], ms["latency_max_rounds"]],
            "p50": {k: [x["change"], x["low"], x["high"], x["n"]] for k, x in p50.items()},
            "confirm": {k: [x["confirm"][f] for f in ("change", "low", "high", "n")]
                        for k, x in p50.items() if x.get("confirm")},
            "other_failures": [(v["variant"], v["figure"]) for v in doc["verdicts"]
                               if v["kind"] == "regression" and v["figure"] != "p50"],
            # p90 and batch first-run changes too, so that their floors can be derived from A/A runs
            "others": {f"{v['variant']}:{v['figure']}": [v["change"], v["low"], v["high"], v["n"]]
                       for v in doc["verdicts"] if v["figure"] in ("p90", "batch") and "change" in v}}


def measure(args: argparse.Namespace) -> None:
    from slimbench.commands.ab import COMPARE_WORKER_PROCESSES

    counts = {"aa": args.aa, "x5": args.x5, "code5": args.code5, "x3": args.x3}
    if counts["code5"] and not (args.code_candidate / "src" / "slimbench").is_dir():
        raise SystemExit(f"{args.code_candidate} is not a candidate checkout: run code_candidate.py first")
    plan = [k for i in range(max(counts.values())) for k in KINDS if i < counts[k]]
    data: dict[str, Any] = {"variants": VARIANTS, "run_floor": args.run_floor, "loadavg_before": loadavg(),
                            "worker_processes": args.worker_processes,
                            "default_worker_processes": COMPARE_WORKER_PROCESSES,  # a batch without the flag
                            "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                                                     capture_output=True, text=True).stdout.strip(),
                            "candidate": json.loads((args.code_candidate / "CANDIDATE.json").read_text())
                            if counts["code5"] else None, "runs": {k: [] for k in KINDS}}
    from slimbench.machine import machine_facts

    data["machine"] = machine_facts()["label"]
    earlier_s = 0.0
    if args.append:  # more runs on top of the recorded ones: each batch is listed with its own load and commit
        earlier = json.loads((HERE / f"{args.name}.json").read_text())
        batches = earlier.get("batches") or [{k: earlier[k] for k in ("commit", "loadavg_before", "machine")}
                                             | {"runs": {k: len(v) for k, v in earlier["runs"].items()}}]
        data["runs"], data["candidate"] = earlier["runs"], data["candidate"] or earlier.get("candidate")
        earlier_s = earlier.get("elapsed_s", 0.0)
    else:
        batches = []
    counted = {k: len(v) for k, v in data["runs"].items()}
    batches.append({"commit": data["commit"], "loadavg_before": data["loadavg_before"], "machine": data["machine"],
                    "runs": {k: 0 for k in KINDS}})
    data["batches"] = batches
    tmp, t0 = HERE / ".compare.json", time.perf_counter()
    deadline = time.time() + args.minutes * 60 if args.minutes else None
    for i, kind in enumerate(plan):
        if deadline and time.time() > deadline:
            print(f"deadline reached after {i} of {len(plan)} compares", flush=True)
            break
        r = record(compare_once(kind, args, tmp))
        data["runs"][kind].append(r)
        print(f"[{i + 1}/{len(plan)}] {kind}: {r['status']} in {r['elapsed_s']:.0f} s; {TARGET} p50 "
              f"{r['p50'][TARGET][0]:.3f}; re-measured {sorted(r['confirm']) or 'nothing'}; load {loadavg()}", flush=True)
        data["elapsed_s"] = time.perf_counter() - t0 + earlier_s
        batches[-1]["runs"] = {k: len(v) - counted[k] for k, v in data["runs"].items()}
        (HERE / f"{args.name}.json").write_text(json.dumps(data, indent=1))  # a cut-short run keeps what it has
    render(args.name)


def fails(x: list[float] | None, floor: float) -> bool:
    from slimbench.analysis.judge import judge

    return x is not None and judge(x[0], x[1], x[2], floor) == "regression"


def outcome(r: dict[str, Any], variant: str, floor: float) -> str:
    """'confirmed' (a failure at this floor: compare's rule, the re-measurement judged against
    CONFIRM_SHARE of it), 'once' (first run only), or '' (no regression)."""
    from slimbench.commands.ab import CONFIRM_SHARE

    if not fails(r["p50"][variant], floor):
        return ""
    return "confirmed" if fails(r["confirm"].get(variant), floor * CONFIRM_SHARE) else "once"


def calibration(cand: dict[str, Any]) -> str:
    r = cand.get("rescaled")
    if r and isinstance(r["earlier_iterations"], list):  # pooled from candidates of several sizes
        return (f"of {cand['iterations']:,} iterations, sized on compare's workers: {r['runs']} compares in "
                f"{r['from']} of candidates of {' and '.join(f'{n:,}' for n in r['earlier_iterations'])} "
                f"iterations measured a median {r['median_change_per_iteration'] * 1e5:.2f} % per 1,000 iterations, "
                f"scaled to {cand['fraction']:.0%} ")
    if r:
        return (f"of {cand['iterations']:,} iterations, sized on compare's workers: {r['earlier_iterations']:,} "
                f"iterations had measured {(r['median_change'] - 1) * 100:+.1f} % (median of {r['runs']} compares "
                f"in {r['from']}), scaled to {cand['fraction']:.0%} ")
    return (f"of {cand['iterations']:,} iterations ({cand['extra_s'] * 1e6:.0f} µs, {cand['fraction']:.0%} of "
            f"the {cand['p50_s'] * 1e3:.2f} ms p50 measured before) ")


def rounds_text(runs: dict[str, list[dict[str, Any]]]) -> str:
    """The latency rounds compare ran with: first run – most (runs recorded before the setting was: 40–120)."""
    seen = sorted({tuple(r.get("rounds_setting", (40, 120))) for k in KINDS for r in runs[k]})
    return ", ".join(f"{a}–{b}" for a, b in seen) or "40–120"


def other_figures(aa: list[dict[str, Any]]) -> list[str]:
    """The A/A distribution of the p90 and batch changes (first runs), from which their floors are set."""
    from slimbench.commands.ab import DEFAULT_FLOORS

    rows = []
    for figure in ("p90", "batch"):
        for key in sorted({k for r in aa for k in r.get("others", {}) if k.endswith(f":{figure}")}):
            c = [r["others"][key] for r in aa if key in r.get("others", {})]
            ch = [x[0] for x in c]
            rows.append(f"| {key.split(':')[0]} | {figure} | {len(c)} | {min(ch):.3f} | {np.median(ch):.3f} | "
                        f"{max(ch):.3f} | {max(abs(x - 1) for x in ch) * 100:.1f} % | "
                        f"{sum(x[1] > 1 or x[2] < 1 for x in c)} | {DEFAULT_FLOORS[figure] * 100:g} % |")
    if not rows:
        return []
    return ["", "A/A p90 and batch changes per variant, first runs (their floors are set from these):", "",
            "| variant | figure | compares | min | median | max | max abs | intervals excluding 1 | floor now |",
            "|---|---|---|---|---|---|---|---|---|", *rows]


def render(name: str) -> None:
    from slimbench.commands.ab import DEFAULT_FLOORS

    data = json.loads((HERE / f"{name}.json").read_text())
    runs, default = data["runs"], DEFAULT_FLOORS["p50"]
    n = {k: len(v) for k, v in runs.items()}
    rows = []
    for f in sorted(f for f in {*FLOORS, default} if f >= data["run_floor"] - 1e-9):  # below it: not re-measured
        aa = [outcome(r, v, f) for r in runs["aa"] for v in data["variants"]]
        aa_failed = sum(any(outcome(r, v, f) == "confirmed" for v in data["variants"]) for r in runs["aa"])
        caught = {k: sum(outcome(r, TARGET, f) == "confirmed" for r in runs[k]) for k in ("x5", "code5", "x3")}
        first = {k: sum(outcome(r, TARGET, f) != "" for r in runs[k]) for k in ("x5", "code5", "x3")}
        others = [outcome(r, v, f) for k in ("x5", "code5", "x3") for r in runs[k] for v in data["variants"]
                  if v != TARGET]
        rows.append(f"| {f * 100:g} %{' (default)' if f == default else ''} | {aa_failed} of {n['aa']} "
                    f"({aa.count('once')} seen once) | "
                    + " | ".join(f"{caught[k]} of {n[k]} ({first[k]})" for k in ("x5", "code5", "x3"))
                    + f" | {others.count('confirmed')} of {len(others)} ({others.count('once')} seen once) |")
    aa_changes = {v: [r["p50"][v][0] for r in runs["aa"]] for v in data["variants"]}
    dist = [f"| {v} | {min(c):.3f} | {np.median(c):.3f} | {max(c):.3f} | {max(abs(x - 1) for x in c) * 100:.1f} % | "
            f"{sum(r['p50'][v][1] > 1 or r['p50'][v][2] < 1 for r in runs['aa'])} |"
            for v, c in aa_changes.items() if c]
    measured = {k: [r["p50"][TARGET][0] for r in runs[k]] for k in ("x5", "code5", "x3")}
    steal = sorted(r["steal"].get("latency", 0.0) or 0.0 for k in KINDS for r in runs[k])
    other = sum(bool(r["other_failures"]) for k in KINDS for r in runs[k])
    cand = data.get("candidate")
    md = [f"<!-- written by `python experiments/gate-calibration/catch_rate.py --render {name}` -->",
          "# Catching a 5 % slowdown: A/A, +5 % and +3 % compares", "",
          f"`slimbench compare` ({data.get('worker_processes') or data.get('default_worker_processes', 2)} worker "
          "processes per variant and "
          f"side, {rounds_text(runs)} rounds, "
          f"`--confirm 1`), latency only, on {', '.join(data['variants'])}, with a p50 floor of "
          f"{data['run_floor'] * 100:g} % in force so that every first-run change above it was measured again. "
          f"{data.get('elapsed_s', 0) / 60:.0f} min in all. Batches: " + "; ".join(
              f"{b['machine']}, commit {b['commit']}, load average before {b['loadavg_before']}: "
              + ", ".join(f"{n} {KINDS[k]}" for k, n in b["runs"].items() if n)
              for b in data.get("batches") or [data | {"runs": n}]) + ".", "",
          *[line for k, line in (
              ("aa", "- **A/A**: this checkout against itself."),
              ("x5", f"- **+5 % (extra work)**: `--candidate-extra-work {TARGET}=0.05`, a spin of 5 % of each call's "
                     "duration."),
              ("code5", f"- **+5 % (code change)**: a candidate checkout whose {TARGET} runner runs a fixed Python loop "
               + (calibration(cand) if cand else "")
               + "after each call (`code_candidate.py`)."),
              ("x3", f"- **+3 % (extra work)**: `--candidate-extra-work {TARGET}=0.03`.")) if n[k]], "",
          "Each cell: compares that **failed** on the figure at that p50 floor (a first-run regression beyond the "
          "floor that the re-measurement found again: a significant slowdown beyond half the floor, compare's "
          "rule); in brackets, the first runs that flagged it. Every first-run change above the run floor was "
          "re-measured and its re-measured change recorded, so each row is judged exactly as compare would "
          "judge it at that floor.", "",
          "| p50 floor | A/A failed | +5 % extra work caught | +5 % code change caught | +3 % extra work caught "
          "| unchanged variants in A/B runs failed |", "|---|---|---|---|---|---|", *rows, "",
          "Measured change of the slowed variant's p50 (candidate / baseline, first run): "
          + "; ".join(f"{KINDS[k]} {min(c):.3f}–{max(c):.3f}, median {np.median(c):.3f}"
                      for k, c in measured.items() if c) + ".", "",
          f"Other figures (p90, batch) failing a compare: {other}. Steal during the latency rounds: "
          + (f"{steal[0]:.1%}–{steal[-1]:.1%}." if steal else "not recorded."), "",
          "A/A p50 change (candidate / baseline) per variant, first runs:", "",
          "| variant | min | median | max | max abs | intervals excluding 1 |", "|---|---|---|---|---|---|", *dist,
          *other_figures(runs["aa"])]
    (HERE / f"{name}.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--aa", type=int, default=4, help="A/A compares")
    p.add_argument("--x5", type=int, default=10, help="+5 %% compares made by --candidate-extra-work")
    p.add_argument("--code5", type=int, default=10, help="+5 %% compares against --code-candidate")
    p.add_argument("--x3", type=int, default=6, help="+3 %% compares made by --candidate-extra-work")
    p.add_argument("--code-candidate", type=Path, default=Path("/tmp/cand-5pct"),
                   help="the checkout code_candidate.py made")
    p.add_argument("--run-floor", type=float, default=0.03, help="the p50 floor in force during the runs")
    p.add_argument("--minutes", type=float, default=0, help="start no compare after this many minutes (0: no limit)")
    p.add_argument("--name", default="catch-5pct")
    p.add_argument("--append", action="store_true", help="add the runs to the recorded NAME.json")
    p.add_argument("--worker-processes", type=int, default=None,
                   help="compare's --worker-processes (default: compare's own)")
    p.add_argument("--render", metavar="NAME", default=None, help="measure nothing: rewrite NAME.md from NAME.json")
    args = p.parse_args()
    if args.render:
        render(args.render)
    else:
        measure(args)


if __name__ == "__main__":
    sys.exit(main())
