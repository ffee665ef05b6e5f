"""Evidence for the paired timing harness (issue 11), re-runnable on any machine with a built zoo.

    python experiments/paired-timing/evidence.py bare-loop   # harness vs a bare perf_counter loop, interleaved
    python experiments/paired-timing/evidence.py spin        # does an idle worker steal CPU? blocks vs single calls
    python experiments/paired-timing/evidence.py freeze      # idle workers stopped (SIGSTOP) vs a pause before each block
    python experiments/paired-timing/evidence.py startup     # a worker's start-up vs a fresh probe's: the same figures?
    python experiments/paired-timing/evidence.py aa-ab       # 20 A/A + 20 A/B `slimbench compare` runs
    python experiments/paired-timing/evidence.py processes   # two processes of one variant: a per-process effect?
    python experiments/paired-timing/evidence.py staggered   # does a ratio move with process start or with time?
    python experiments/paired-timing/evidence.py repro       # 5 back-to-back `pytest bench -k latency` runs

Each writes <name>.json (raw numbers) and <name>.md (the summary) next to this file. Run it on an
idle machine (check `uptime`), one at a time: the point is to measure the harness, not a neighbour.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
THREE = ("standard", "onnx-int8", "ultra-light-onnx-int8")
AB_VARIANTS = ("standard", "quantized", "onnx-int8", "ultra-light-onnx-int8")


def context() -> Any:
    from slimbench.build.context import default_context

    return default_context(log=lambda s: None)


def write(name: str, data: dict[str, Any], md: list[str]) -> None:
    (HERE / f"{name}.json").write_text(json.dumps(data, indent=1))
    header = [f"<!-- written by `python experiments/paired-timing/evidence.py {' '.join(sys.argv[1:]) or name}` -->",
              f"machine: {os.uname().nodename}, {os.cpu_count()} cores; load average before: {data['loadavg_before']}", ""]
    (HERE / f"{name}.md").write_text("\n".join(header + md) + "\n")
    print("\n".join(md))


def head_commit() -> str:
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO).stdout.strip()


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


# --- harness vs bare loop -------------------------------------------------------------------------

class Bare:
    """The bare-loop child (bare_loop_child.py), block by block."""

    def __init__(self, artifact: Path, threads: int, texts_file: Path):
        from slimbench.runtimes.probes import measuring_env

        self.proc = subprocess.Popen([sys.executable, str(HERE / "bare_loop_child.py"), str(artifact), str(threads),
                                      str(texts_file)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     env=measuring_env(threads))
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "ready"

    def block(self, start: int, n: int) -> list[float]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"{start} {n}\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def bare_loop(args: argparse.Namespace) -> None:
    from slimbench.measure.interleave import DISCARD, SETTLE_S, paired_order, run_rounds
    from slimbench.measure.workers import WorkerPool, WorkerSpec
    from slimbench.stats import paired_ratio

    ctx = context()
    texts = [e.text for e in ctx.splits.test]
    texts_file = HERE / ".texts.json"
    texts_file.write_text(json.dumps(texts))
    before = loadavg()
    three = args.variants.split(",")
    specs = [WorkerSpec(f"harness:{v}", ctx.artifact_dir(v), args.threads) for v in three]
    bares = {f"bare:{v}": Bare(ctx.artifact_dir(v), args.threads, texts_file) for v in three}
    with WorkerPool(specs, texts) as pool:
        for key in pool.alive:
            pool.request(key, {"op": "latency", "start": 0, "n": 20})
        for b in bares.values():
            b.block(0, 20)

        def run(key: str, r: int) -> list[float] | None:
            start = r * args.block
            if key.startswith("bare:"):
                return bares[key].block(start, args.block)
            reply = pool.request(key, {"op": "latency", "start": start, "n": args.block})
            return None if reply is None else reply["s"]

        rounds = run_rounds([k for v in three for k in (f"harness:{v}", f"bare:{v}")], args.rounds, run,
                            discard=DISCARD, order=paired_order, settle_s=SETTLE_S)
    for b in bares.values():
        b.close()
    texts_file.unlink()
    rows, data = [], {"loadavg_before": before, "rounds": args.rounds, "block": args.block, "variants": {}}
    for v in three:
        h, b = rounds.samples(f"harness:{v}"), rounds.samples(f"bare:{v}")
        pr = paired_ratio(rounds.rounds_of(f"harness:{v}"), rounds.rounds_of(f"bare:{v}"))
        diff = np.median(h) / np.median(b) - 1
        data["variants"][v] = {"harness_p50_s": float(np.median(h)), "bare_p50_s": float(np.median(b)),
                               "n": len(h), "paired_ratio": [pr.value, pr.low, pr.high],
                               "harness_rounds": rounds.rounds_of(f"harness:{v}"), "bare_rounds": rounds.rounds_of(f"bare:{v}")}
        rows.append(f"| {v} | {np.median(h) * 1e3:.3f} | {np.median(b) * 1e3:.3f} | {diff * 100:+.1f} % | "
                    f"{pr.value:.3f} [{pr.low:.3f}, {pr.high:.3f}] | {len(h)} | {'yes' if abs(diff) <= 0.05 else 'NO'} |")
    md = ["# Harness vs bare loop, interleaved in one run", "",
          f"Each variant: slimbench's timing worker (`slimbench.runtimes.worker`, GC off, JSON protocol) and a bare "
          f"`perf_counter` loop in its own fresh process (`bare_loop_child.py`), both loaded once, alternating "
          f"blocks of {args.block} calls on the same sentences ({args.rounds} rounds, a 60 ms pause before each "
          f"block, its first two calls dropped, {args.threads} threads). Load average before: {before}.", "",
          "| variant | harness p50 (ms) | bare p50 (ms) | difference | paired ratio [95 % CI] | n each | within 5 % |",
          "|---|---|---|---|---|---|---|", *rows]
    write("bare-loop", data, md)


# --- idle workers: do they steal CPU? ---------------------------------------------------------------

def _cpu_s(pid: int) -> float:
    import psutil

    t = psutil.Process(pid).cpu_times()
    return t.user + t.system


def spin(args: argparse.Namespace) -> None:
    """Per variant: p50 alone; p50 with the other workers alive and blocks of 10 (default);
    p50 with alternating single calls. And the CPU seconds idle workers burn while another runs."""
    from slimbench.measure.workers import WorkerPool, WorkerSpec

    ctx = context()
    texts = [e.text for e in ctx.splits.test]
    before = loadavg()
    data: dict[str, Any] = {"loadavg_before": before, "variants": {}}
    solo: dict[str, float] = {}
    for v in THREE:
        with WorkerPool([WorkerSpec(v, ctx.artifact_dir(v), args.threads)], texts) as pool:
            pool.request(v, {"op": "latency", "start": 0, "n": 20})
            s = [x for r in range(args.rounds) for x in pool.request(v, {"op": "latency", "start": r * 10, "n": 10})["s"][1:]]
            solo[v] = float(np.median(s))
    with WorkerPool([WorkerSpec(v, ctx.artifact_dir(v), args.threads) for v in THREE], texts) as pool:
        pids = {v: pool.workers[v].proc.pid for v in THREE}
        for v in THREE:
            pool.request(v, {"op": "latency", "start": 0, "n": 20})
        modes: dict[str, dict[str, list[float]]] = {"blocks of 10": {v: [] for v in THREE},
                                                    "single calls": {v: [] for v in THREE},
                                                    "settled blocks": {v: [] for v in THREE}}
        settled_pos: dict[str, list[list[float]]] = {v: [] for v in THREE}
        position: dict[str, list[list[float]]] = {v: [] for v in THREE}
        steal: dict[str, list[float]] = {v: [] for v in THREE}
        for r in range(args.rounds):
            for v in THREE:  # blocks of 10, first dropped; idle workers' CPU while v runs
                others = [o for o in THREE if o != v]
                c0 = sum(_cpu_s(pids[o]) for o in others)
                t0 = time.perf_counter()
                s = pool.request(v, {"op": "latency", "start": r * 10, "n": 10})["s"]
                wall = time.perf_counter() - t0
                steal[v].append((sum(_cpu_s(pids[o]) for o in others) - c0) / wall)
                position[v].append(s)
                modes["blocks of 10"][v].extend(s[1:])
            for v in THREE:  # blocks of 10 after a 50 ms pause: spinning threads of the others have gone idle
                time.sleep(0.05)
                s = pool.request(v, {"op": "latency", "start": r * 10, "n": 10})["s"]
                settled_pos[v].append(s)
                modes["settled blocks"][v].extend(s[1:])
            for k in range(10):  # alternating single calls
                for v in THREE:
                    modes["single calls"][v].extend(pool.request(v, {"op": "latency", "start": r * 10 + k, "n": 1})["s"])
    rows = []
    for v in THREE:
        pos = np.median(np.asarray(position[v]), axis=0)
        rel = pos / np.median(pos[2:])
        b, s1 = np.median(modes["blocks of 10"][v]), np.median(modes["single calls"][v])
        spos = np.median(np.asarray(settled_pos[v]), axis=0)
        srel = spos / np.median(spos[2:])
        sb = np.median(modes["settled blocks"][v])
        data["variants"][v] = {"solo_p50_s": solo[v], "blocks_p50_s": float(b), "single_p50_s": float(s1),
                               "position_median_rel": rel.tolist(), "settled_p50_s": float(sb),
                               "settled_position_median_rel": srel.tolist(),
                               "idle_workers_cpu_per_wall_s": float(np.median(steal[v]))}
        rows.append(f"| {v} | {solo[v] * 1e3:.3f} | {b * 1e3:.3f} ({b / solo[v]:.2f}×) | {s1 * 1e3:.3f} "
                    f"({s1 / solo[v]:.2f}×) | {sb * 1e3:.3f} ({sb / solo[v]:.2f}×) | {rel[0]:.2f} / {rel[1]:.2f} / "
                    f"{rel[2]:.2f} | {srel[0]:.2f} / {srel[1]:.2f} | {np.median(steal[v]):.3f} |")
    md = ["# Do idle workers steal CPU from the one being timed?", "",
          f"Three workers ({', '.join(THREE)}), {args.threads} threads each, {args.rounds} rounds. 'alone' = only "
          "that worker alive; 'blocks of 10' = all alive, blocks of 10 calls, the first dropped (slimbench's "
          "default); 'single calls' = all alive, one call each in turn; 'after a 50 ms pause' = blocks of 10 "
          "with the parent sleeping 50 ms before each. Position = median latency of the "
          "block's 1st / 2nd / 3rd call relative to calls 3-10. Idle CPU = CPU-seconds the other two workers "
          f"used per wall-second of this worker's block. Load average before: {before}.", "",
          "| variant | alone p50 (ms) | blocks of 10 p50 (ms) | single calls p50 (ms) | blocks after a 50 ms pause p50 (ms) "
          "| position 1/2/3 | paused: position 1/2 | idle CPU (s/s) |",
          "|---|---|---|---|---|---|---|---|", *rows]
    write("spin", data, md)


# --- idle workers: frozen (SIGSTOP) instead of a pause ----------------------------------------------

FREEZE_VARIANTS = ("standard", "light", "quantized", "onnx-int8", "ultra-light-onnx-int8")
FREEZE_MODES = ("pause 60 ms", "frozen", "neither")


def freeze(args: argparse.Namespace) -> None:
    """The same workers, three ways of keeping an idle worker off the CPU, interleaved round by
    round: a 60 ms pause before each block (slimbench's way before), idle workers stopped with
    SIGSTOP and no pause, and neither (the control: idle workers' spinning threads are free to
    take a core). Per mode: each variant's p50, its paired p50 ratio to standard, and the
    seconds a round took."""
    from slimbench.measure.interleave import DISCARD, equal_time_repeats, rotated
    from slimbench.measure.workers import WorkerPool, WorkerSpec
    from slimbench.stats import paired_ratio

    ctx = context()
    texts = [e.text for e in ctx.splits.test]
    variants = args.variants.split(",")
    before = loadavg()
    blocks: dict[str, dict[str, list[list[float] | None]]] = {m: {v: [] for v in variants} for m in FREEZE_MODES}
    round_s: dict[str, list[float]] = {m: [] for m in FREEZE_MODES}
    with WorkerPool([WorkerSpec(v, ctx.artifact_dir(v), args.threads) for v in variants], texts,
                    freeze_idle=False) as pool:
        warm = pool.warm_up(20)
        repeat = equal_time_repeats(warm, args.block)
        run = pool.blocks("latency", args.block, repeat=repeat)
        for r in range(args.rounds):
            for mode in rotated(FREEZE_MODES, r):
                pool.freeze_idle = mode == "frozen"
                if mode != "frozen":
                    for procs in pool.processes.values():
                        for w in procs:
                            w.thaw()
                else:
                    for v in variants:
                        pool._freeze(v)
                time.sleep(0.2)  # whatever the switch woke has gone idle
                t = time.perf_counter()
                for v in rotated(variants, r):
                    if mode == "pause 60 ms":
                        time.sleep(0.06)
                    s = run(v, r)
                    blocks[mode][v].append(list(s[DISCARD:]) if s else None)
                round_s[mode].append(time.perf_counter() - t)
        pool.freeze_idle = False
    data: dict[str, Any] = {"loadavg_before": before, "commit": head_commit(), "rounds": args.rounds,
                            "block": args.block, "repeat": repeat, "threads": args.threads, "modes": {}}
    rows = []
    for mode in FREEZE_MODES:
        d: dict[str, Any] = {"round_s_median": float(np.median(round_s[mode])), "variants": {}}
        for v in variants:
            samples = [x for b in blocks[mode][v] if b for x in b]
            entry: dict[str, Any] = {"p50_s": float(np.median(samples)), "n": len(samples), "rounds": blocks[mode][v]}
            if v != "standard":
                pr = paired_ratio(blocks[mode][v], blocks[mode]["standard"])
                entry["ratio"] = [pr.value, pr.low, pr.high]
            d["variants"][v] = entry
        data["modes"][mode] = d
    for v in variants:
        cells = []
        for mode in FREEZE_MODES:
            e = data["modes"][mode]["variants"][v]
            cell = f"{e['p50_s'] * 1e3:.3f}"
            if "ratio" in e:
                cell += f" · {e['ratio'][0]:.3f} [{e['ratio'][1]:.3f}, {e['ratio'][2]:.3f}]"
            cells.append(cell)
        rows.append(f"| {v} | " + " | ".join(cells) + " |")
    rows.append("| seconds a round (median) | " + " | ".join(f"{data['modes'][m]['round_s_median']:.2f}"
                                                            for m in FREEZE_MODES) + " |")
    md = ["# Idle workers stopped (SIGSTOP) instead of a pause before each block", "",
          f"One worker process per variant ({', '.join(variants)}), {args.threads} threads each, all alive. "
          f"{args.rounds} rounds; in each, the three modes in a rotated order, and in each mode every variant "
          f"runs one block of {args.block} batch-1 calls (fast variants repeat them to last ~120 ms, as "
          f"`pytest bench` does: {', '.join(f'{k} ×{n}' for k, n in repeat.items() if n > 1) or 'none'}), "
          f"the first {DISCARD} dropped. 'pause 60 ms' = the parent sleeps 60 ms before each block (the way "
          "before); 'frozen' = every idle worker stopped with SIGSTOP, continued for its own block, no pause; "
          "'neither' = no pause, nothing stopped (the control). Cell: p50 (ms) · paired p50 ratio to standard "
          f"[95 % CI]. Commit {data['commit']}; load average before: {before}.", "",
          "| variant | " + " | ".join(FREEZE_MODES) + " |", "|---|---|---|---|", *rows]
    write(args.name, data, md)


# --- start-up: a timing worker's own vs a fresh-process probe's ---------------------------------------

STARTUP_VARIANTS = ("standard", "onnx", "standard-numpy", "onnx-int8")


def startup(args: argparse.Namespace) -> None:
    """Phase by phase, the start-up a timing worker times for itself (started alone, the others
    idle) against the fresh-process probe's, alternating: probes, a pool, probes, a pool, ..."""
    from slimbench.measure.workers import WorkerPool, WorkerSpec
    from slimbench.runtimes.probes import run_probe

    ctx = context()
    variants = args.variants.split(",")
    all_texts = [e.text for e in ctx.splits.test]
    texts = all_texts[:50]
    before = loadavg()
    samples: dict[str, dict[str, list[dict[str, float]]]] = {v: {} for v in variants}
    rusage: dict[str, dict[str, list[dict[str, float]]]] = {}  # the load phase's user/sys seconds and page faults

    def keep(v: str, how: str, phases: dict[str, float]) -> None:
        samples[v].setdefault(how, []).append({k: round(x, 4) for k, x in phases.items()})

    for rep in range(args.n):
        for v in variants:
            r = run_probe(ctx.artifact_dir(v), args.threads, texts, n_predict=50)
            keep(v, "fresh probe", r.phases_s)
            rusage.setdefault(v, {}).setdefault("fresh probe", []).append(r.load_rusage)
        if args.pretouch_gb:  # back the memory the pool will take (a VM's host backs a guest page at first touch)
            block = np.ones(int(args.pretouch_gb * 2**30), dtype=np.uint8)
            del block
        for worker_texts, how in ((all_texts, "worker, full test split"), (texts, "worker, 50 texts")):
            with WorkerPool([WorkerSpec(v, ctx.artifact_dir(v), args.threads) for v in variants], worker_texts,
                            startup_predictions=50, processes=2) as pool:
                for v, recs in pool.startup.items():
                    for k, rec in enumerate(recs):
                        keep(v, f"{how}, process {k + 1}", rec.phases_s)
                        rusage.setdefault(v, {}).setdefault(f"{how}, process {k + 1}", []).append(rec.load_rusage)
        print(f"repetition {rep + 1}/{args.n} done", flush=True)
    data = {"loadavg_before": before, "commit": head_commit(), "variants": samples, "load_rusage": rusage}
    hows = list(next(iter(samples.values())))
    rows = []
    for v in variants:
        for how in hows:
            recs = samples[v][how]
            med = {k: float(np.median([r[k] for r in recs])) for k in ("interpreter", "import", "load", "first_predict")}
            total = sum(med.values())
            rows.append(f"| {v} | {how} | {len(recs)} | " + " | ".join(f"{med[k] * 1e3:.0f}" for k in med)
                        + f" | {total * 1e3:.0f} |")
    md = ["# A timing worker's start-up against a fresh probe's", "",
          f"{args.n} repetitions of: one fresh-process probe of each of {', '.join(variants)}; then a pool of their "
          "timing workers (2 processes each, started one at a time, each timing its own start-up), handed the "
          "full test split; then the same pool handed 50 texts (what a probe gets). Medians in ms. "
          f"Commit {data['commit']}; load average before: {before}.", "",
          "| variant | how | n | interpreter | import | load | first predict | sum |", "|---|---|---|---|---|---|---|---|",
          *rows]
    write(args.name, data, md)


# --- A/A and A/B compares -------------------------------------------------------------------------

def compare_once(extra: str | None, out: Path, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "slimbench.cli", "compare", "--baseline", str(REPO), "--candidate", str(REPO),
           "--variants", ",".join(AB_VARIANTS), "--no-probes", "--no-accuracy",
           "--out", str(out)]
    if args.rounds:  # else compare's own default
        cmd += ["--latency-rounds", str(args.rounds)]
    if args.worker_processes:
        cmd += ["--worker-processes", str(args.worker_processes)]
    if extra:
        cmd += ["--candidate-extra-work", extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=1800)
    if not out.is_file():
        raise SystemExit(f"compare wrote no results (exit {proc.returncode}): {proc.stderr[-2000:]}")
    doc = json.loads(out.read_text())
    out.unlink()
    return doc


def aa_ab(args: argparse.Namespace) -> None:
    if args.render_only:  # judge the committed runs again (e.g. after a floor changed)
        data = json.loads((HERE / f"{args.name}.json").read_text())
        write(args.name, data, render_aa_ab(data))
        return
    before = loadavg()
    runs: dict[str, list[dict[str, Any]]] = {"aa": [], "ab10": [], "ab5": []}
    sessions: list[dict[str, Any]] = []
    earlier_s = 0.0
    if args.append:  # more runs on top of the committed ones (same latency path; say so in the note)
        earlier = json.loads((HERE / f"{args.name}.json").read_text())
        runs, earlier_s = earlier["runs"], earlier["elapsed_s"]
        sessions = earlier.get("sessions") or [{"commit": "bb120b6", "loadavg_before": earlier["loadavg_before"],
                                                "runs": {k: len(v) for k, v in runs.items()}}]
    counted = {k: len(v) for k, v in runs.items()}
    plan: list[tuple[str, str | None]] = []
    n_10 = args.n if args.n_10 is None else args.n_10
    for i in range(args.n):  # A/A and A/B alternate, so that a run cut short by --deadline stays balanced
        plan += [("aa", None)] + ([("ab10", "onnx-int8=0.10")] if i < n_10 else [])
        if i < args.n_5:
            plan.append(("ab5", "onnx-int8=0.05"))
    tmp = HERE / ".compare.json"
    t0 = time.perf_counter()
    deadline = time.time() + args.minutes * 60 if args.minutes else None
    for i, (kind, extra) in enumerate(plan):
        if deadline and time.time() > deadline:
            print(f"deadline reached after {i} of {len(plan)} compares", flush=True)
            break
        doc = compare_once(extra, tmp, args)
        p50 = {v["variant"]: v for v in doc["verdicts"] if v["figure"] == "p50"}
        runs[kind].append({"status": doc["status"], "elapsed_s": doc["elapsed_s"],
                           "p50": {k: [x["change"], x["low"], x["high"], x["kind"], x["n"]] for k, x in p50.items()},
                           "failing": [(v["variant"], v["figure"]) for v in doc["verdicts"] if v["kind"] == "regression"],
                           # a timing regression of the first run, measured again (`--confirm`): the second
                           # run's [change, low, high, kind, n]; the verdict above is after it
                           "confirm": {f"{v['variant']} {v['figure']}": [v["confirm"][k] for k in
                                                                         ("change", "low", "high", "kind", "n")]
                                       for v in doc["verdicts"] if v.get("confirm")},
                           "steal": doc.get("steal", {})})
        print(f"[{i + 1}/{len(plan)}] {kind}: {doc['status']} in {doc['elapsed_s']:.0f} s; onnx-int8 p50 change "
              f"{p50['onnx-int8']['change']:.3f}; re-measured {sorted(runs[kind][-1]['confirm']) or 'nothing'}; "
              f"steal {doc.get('steal')}", flush=True)
    from slimbench.machine import machine_facts

    sessions.append({"commit": head_commit(), "loadavg_before": before, "machine": machine_facts()["label"],
                     "runs": {k: len(v) - counted[k] for k, v in runs.items()}})
    from slimbench.commands.ab import DEFAULT_FLOORS

    data = {"loadavg_before": before, "rounds": args.rounds, "worker_processes": args.worker_processes,
            "p50_floor_in_force": DEFAULT_FLOORS["p50"],
            "variants": AB_VARIANTS, "runs": runs,
            "elapsed_s": time.perf_counter() - t0 + earlier_s, "sessions": sessions}
    write(args.name, data, render_aa_ab(data))


def _signal(change: float, low: float, high: float, floor: float) -> str | None:
    """slimbench.analysis.judge.judge on a recorded p50 change (no p-value: the compare gives none)."""
    from slimbench.analysis.judge import judge

    kind = judge(change, low, high, floor)
    return kind if kind in ("regression", "improvement") else None


def _compare_defaults(processes: int | None) -> str:
    """The latency settings of a compare at its defaults (read from slimbench's knob table)."""
    from slimbench.measure.settings import MeasureSettings

    st = MeasureSettings()
    return (f"compare's defaults: {st.latency_rounds}–{st.latency_max_rounds} rounds of {st.latency_block} calls, more "
            f"while a change's CI is wider than ±{st.latency_ci * 100:g} %, blocks of at least "
            f"{st.latency_min_block_ms:g} ms, {processes or st.worker_processes} worker processes per variant and side")


def render_aa_ab(data: dict[str, Any]) -> list[str]:
    """The summary of the recorded compares, and every recorded change judged again at other p50
    floors (the verdict is a pure function of change, CI and floor): where the default comes from."""
    from slimbench.commands.ab import DEFAULT_FLOORS

    runs, sessions = data["runs"], data["sessions"]
    floor = DEFAULT_FLOORS["p50"]
    aa_changes = {v: [r["p50"][v][0] for r in runs["aa"]] for v in data["variants"]}
    worst = max(abs(c - 1) for cs in aa_changes.values() for c in cs)
    false_alarms = sum(r["status"] == "FAIL" for r in runs["aa"])

    def outcome(f: float) -> tuple[int, int, int, int, str]:
        aa = [_signal(*x[:3], f) for r in runs["aa"] for x in r["p50"].values()]
        caught10 = sum(_signal(*r["p50"]["onnx-int8"][:3], f) == "regression" for r in runs["ab10"])
        caught5 = sum(_signal(*r["p50"]["onnx-int8"][:3], f) == "regression" for r in runs["ab5"])
        other = [_signal(*x[:3], f) for r in runs["ab10"] + runs["ab5"] for v, x in r["p50"].items() if v != "onnx-int8"]
        return (aa.count("regression"), aa.count("improvement"), caught10, caught5,
                f"{other.count('regression')} regressions, {other.count('improvement')} improvements of {len(other)}")

    rows = [f"| {v} | {min(cs):.3f} | {np.median(cs):.3f} | {max(cs):.3f} | {max(abs(c - 1) for c in cs) * 100:.1f} % |"
            for v, cs in aa_changes.items()]
    floors = sorted({0.03, 0.035, 0.04, 0.045, 0.05, 0.055, 0.06, 0.065, 0.07, floor})
    floor_rows = [f"| {f * 100:g} %{' (default)' if f == floor else ''} | {a} | {i} | {c10} of {len(runs['ab10'])} | "
                  f"{c5} of {len(runs['ab5'])} | {o} |" for f in floors for a, i, c10, c5, o in [outcome(f)]]
    ab10 = [r["p50"]["onnx-int8"][0] for r in runs["ab10"]]
    ab5 = [r["p50"]["onnx-int8"][0] for r in runs["ab5"]]
    at = outcome(floor)
    confirmed = [r for k in ("aa", "ab10", "ab5") for r in runs[k] if "confirm" in r]  # runs made with --confirm

    def remeasured(kind: str) -> str:
        flagged = [x for r in runs[kind] for x in r.get("confirm", {}).values()]
        caught = sum(r["p50"]["onnx-int8"][3] == "regression" for r in runs[kind])
        return (f"{len(flagged)} timing regression(s) of a first run re-measured, "
                f"{sum(x[3] == 'regression' for x in flagged)} found again"
                + (f"; onnx-int8's p50 a confirmed regression in {caught} of {len(runs[kind])}" if kind != "aa" else ""))

    steal = sorted(r["steal"]["latency"] for r in confirmed if r.get("steal", {}).get("latency") is not None)
    confirm_lines = [
        (f"- The compares ran with a p50 floor of {data['p50_floor_in_force'] * 100:g} %: their verdicts and "
         "re-measurements (the next line) were judged at that floor; the lines after it judge the first runs again "
         "at today's." if data.get("p50_floor_in_force") and data["p50_floor_in_force"] != floor else ""),
        f"- **Compares that failed, with their timing regressions re-measured (`--confirm 1`, the default): A/A "
        f"{sum(r['status'] == 'FAIL' for r in runs['aa'])} of {len(runs['aa'])}**. A/A: {remeasured('aa')}. "
        f"A/B +10 %: {remeasured('ab10')}." + (f" A/B +5 %: {remeasured('ab5')}." if runs["ab5"] else ""),
        f"- Steal (the hypervisor's other guests) during each compare's latency rounds: {steal[0]:.1%}–{steal[-1]:.1%}, "
        f"median {np.median(steal):.1%}." if steal else ""] if confirmed else []
    return ["# Paired A/A and A/B compares", "",
            f"`slimbench compare` of this checkout against itself ({', '.join(data['variants'])}; latency only, with "
            + (f"the defaults: {data['rounds']}–60 rounds of 12 calls, more while a change's CI is wider than ±4 %, "
               "blocks of at least 120 ms" if data["rounds"] else _compare_defaults(data.get("worker_processes")))
            + "), A/A and A/B runs alternating; A/B = `--candidate-extra-work "
            f"onnx-int8=0.10` (and 0.05): the candidate's onnx-int8 does 10 % (5 %) more CPU work per call. "
            f"{data['elapsed_s'] / 60:.0f} min in all.", "",
            "Sessions: " + "; ".join(
                f"{x['commit']}: {x['runs']['aa']} A/A, {x['runs']['ab10']} A/B +10 %, {x['runs']['ab5']} A/B +5 % "
                f"(load before {x['loadavg_before']}{'; ' + x['machine'] if x.get('machine') else ''})"
                for x in sessions) + ".", "",
            *confirm_lines,
            (f"- **A/A false alarms: {false_alarms} of {len(runs['aa'])}** at the floor the runs used (5 %); at the "
             if not confirmed else "- One run's verdict (before re-measuring), at the ")
            + f"default p50 floor ({floor * 100:g} %): {at[0]} regressions and {at[1]} improvements among "
            f"{sum(len(r['p50']) for r in runs['aa'])} A/A variant comparisons.",
            f"- **A/B +10 % caught{' by the first run' if confirmed else ''}: {at[2]} of {len(runs['ab10'])}** at the default floor; measured change "
            f"{min(ab10):.3f}–{max(ab10):.3f} (median {np.median(ab10):.3f})." if ab10 else "",
            f"- **A/B +5 % caught{' by the first run' if confirmed else ''}: {at[3]} of {len(runs['ab5'])}**; measured change {min(ab5):.3f}–{max(ab5):.3f}."
            if ab5 else "",
            f"- The unchanged variants of the A/B runs at the default floor: {at[4]} comparisons.",
            f"- Largest A/A |change| of a p50 ratio: {worst * 100:.1f} %."
            + (" The default p50 floor is that, rounded up to half a percent: a change the machine made on its own "
               "in 20 runs, in either direction, is never a finding." if not confirmed else
               f" The default p50 floor is {floor * 100:g} % (where it comes from: gate-calibration/README.md)."), "",
            "Every recorded change (first runs) judged again at other floors (a verdict is a pure function of "
            "change, CI and floor; `slimbench.analysis.judge.judge`):", "",
            "| p50 floor | A/A regressions | A/A improvements | A/B +10 % caught | A/B +5 % caught | unchanged variants in A/B runs |",
            "|---|---|---|---|---|---|", *floor_rows, "",
            "A/A p50 change (candidate / baseline) per variant:", "",
            "| variant | min | median | max | max abs |", "|---|---|---|---|---|", *rows]


# --- where does a ratio's run-to-run spread come from? ---------------------------------------------

PROCESS_VARIANTS = ("standard", "ultra-light", "quantized", "onnx", "ultra-light-onnx-int8")


def processes(args: argparse.Namespace) -> None:
    """Two worker processes per variant, in one pool, in one run: if the two processes of one variant
    differ by more than their paired CI, a run's ratio carries a per-process effect that more rounds
    cannot average away (Kalibera & Jones: repeat at the level where the variance is)."""
    from slimbench.measure.interleave import DISCARD, SETTLE_S, equal_time_repeats, paired_order, run_rounds
    from slimbench.measure.workers import WorkerPool, WorkerSpec
    from slimbench.stats import paired_ratio

    ctx = context()
    texts = [e.text for e in ctx.splits.test]
    variants = args.variants.split(",")
    before = loadavg()
    data: dict[str, Any] = {"loadavg_before": before, "rounds": args.rounds, "block": args.block,
                            "min_block_ms": args.min_block_ms, "runs": []}
    for run in range(args.n):
        specs = [WorkerSpec(f"{side}:{v}", ctx.artifact_dir(v), args.threads) for v in variants for side in "ab"]
        with WorkerPool(specs, texts) as pool:
            warm = pool.warm_up(10)
            repeat = equal_time_repeats(warm, args.block, args.min_block_ms / 1000, group=lambda k: k.split(":")[1])
            rounds = run_rounds(pool.alive, args.rounds, pool.blocks("latency", args.block, repeat=repeat),
                                discard=DISCARD, order=paired_order, settle_s=SETTLE_S)
        res: dict[str, Any] = {}
        for v in variants:
            aa = paired_ratio(rounds.rounds_of(f"a:{v}"), rounds.rounds_of(f"b:{v}"))
            res[v] = {"aa": [aa.value, aa.low, aa.high]}
            if v != "standard":
                for x in "ab":
                    for y in "ab":
                        pr = paired_ratio(rounds.rounds_of(f"{x}:{v}"), rounds.rounds_of(f"{y}:standard"))
                        res[v][f"{x}/{y}"] = [pr.value, pr.low, pr.high]
        data["runs"].append({"ratios": res, "repeat": repeat, "blocks": rounds.blocks})
        print(f"run {run + 1}/{args.n}: " + "; ".join(
            f"{v} a/b {r['aa'][0]:.3f} [{r['aa'][1]:.3f}, {r['aa'][2]:.3f}]" for v, r in res.items()), flush=True)
    rows = []
    for v in variants:
        aas = [r["ratios"][v]["aa"] for r in data["runs"]]
        outside = sum(not (lo <= 1 <= hi) for _, lo, hi in aas)
        line = f"| {v} | {' · '.join(f'{x:.3f} [{lo:.3f}, {hi:.3f}]' for x, lo, hi in aas)} | {outside} of {len(aas)} |"
        if v != "standard":
            to_std = [r["ratios"][v][k][0] for r in data["runs"] for k in ("a/a", "a/b", "b/a", "b/b")]
            line += f" {min(to_std):.3f}–{max(to_std):.3f} |"
        else:
            line += " – |"
        rows.append(line)
    md = ["# Two processes of the same variant in one run", "",
          f"{args.n} runs; in each, two worker processes per variant ({', '.join(variants)}) alive together, "
          f"{args.rounds} interleaved rounds of {args.block} calls (paired order, first {DISCARD} dropped, "
          f"60 ms pause; a variant faster than {args.min_block_ms:g} ms a block repeats the round's texts). Process a / process b of the same artifact is an A/A ratio: its 95 % CI should hold 1 "
          f"if a process has no lasting effect of its own. Load average before: {before}.", "",
          "| variant | a / b per run [95 % CI] | runs whose CI misses 1 | ratio to standard, 4 pairings x runs |",
          "|---|---|---|---|", *rows]
    write(args.name, data, md)


# --- start time or run time? ---------------------------------------------------------------------

def staggered(args: argparse.Namespace) -> None:
    """Two generations of worker processes in one run: generation a starts, runs `--rounds` rounds
    alone (phase 1); then generation b starts and both run `--rounds` more (phase 2). If a run's
    ratio moves with when its processes *started* (a state they keep for life), a and b disagree in
    phase 2; if it moves with the *time* (the host's state now), a's ratio changes from phase 1 to
    phase 2 while a and b agree."""
    from slimbench.measure.interleave import DISCARD, SETTLE_S, equal_time_repeats, paired_order, run_rounds
    from slimbench.measure.workers import WorkerPool, WorkerSpec
    from slimbench.stats import paired_ratio

    ctx = context()
    texts = [e.text for e in ctx.splits.test]
    variants = args.variants.split(",")
    before = loadavg()
    data: dict[str, Any] = {"loadavg_before": before, "rounds": args.rounds, "block": args.block, "runs": []}
    group = lambda k: k.split(":")[1]  # noqa: E731
    for run in range(args.n):
        pools: dict[str, Any] = dict.fromkeys("ab")
        try:
            pools["a"] = WorkerPool([WorkerSpec(f"a:{v}", ctx.artifact_dir(v), args.threads) for v in variants], texts)
            warm = pools["a"].warm_up(10)
            repeat = equal_time_repeats(warm, args.block, args.min_block_ms / 1000, group=group)
            phase1 = run_rounds(pools["a"].alive, args.rounds, pools["a"].blocks("latency", args.block, repeat=repeat),
                                discard=DISCARD, order=paired_order, settle_s=SETTLE_S)
            pools["b"] = WorkerPool([WorkerSpec(f"b:{v}", ctx.artifact_dir(v), args.threads) for v in variants], texts)
            pools["b"].warm_up(10)
            repeat.update({f"b:{v}": repeat[f"a:{v}"] for v in variants})
            runners = {g: pools[g].blocks("latency", args.block, repeat=repeat) for g in "ab"}
            phase2 = run_rounds([k for g in "ab" for k in pools[g].alive], args.rounds,
                                lambda k, r, runners=runners: runners[k[0]](k, r), discard=DISCARD, order=paired_order,
                                settle_s=SETTLE_S)
        finally:
            for pool in pools.values():
                if pool is not None:
                    pool.close()
        res: dict[str, Any] = {}
        for v in variants:
            if v == "standard":
                continue
            def pr(rounds: Any, x: str, y: str, v: str = v) -> list[float]:
                r = paired_ratio(rounds.rounds_of(f"{x}:{v}"), rounds.rounds_of(f"{y}:standard"))
                return [r.value, r.low, r.high]
            res[v] = {"phase1 a/a": pr(phase1, "a", "a"), "phase2 a/a": pr(phase2, "a", "a"),
                      "phase2 b/b": pr(phase2, "b", "b"), "phase2 a/b": pr(phase2, "a", "b"),
                      "phase2 b/a": pr(phase2, "b", "a")}
        data["runs"].append({"ratios": res, "repeat": repeat, "phase1": phase1.blocks, "phase2": phase2.blocks})
        print(f"run {run + 1}/{args.n}: " + "; ".join(
            f"{v} " + " ".join(f"{k} {x[0]:.3f}" for k, x in r.items()) for v, r in res.items()), flush=True)
    rows = []
    for v in variants:
        if v == "standard":
            continue
        for i, r in enumerate(data["runs"], 1):
            x = r["ratios"][v]
            rows.append(f"| {v} | {i} | " + " | ".join(f"{x[k][0]:.3f} [{x[k][1]:.3f}, {x[k][2]:.3f}]"
                                                     for k in ("phase1 a/a", "phase2 a/a", "phase2 b/b", "phase2 a/b", "phase2 b/a")) + " |")
    md = ["# Does a ratio move with the processes' start or with the time?", "",
          f"{args.n} runs of two phases of {args.rounds} interleaved rounds ({', '.join(variants)}; blocks of "
          f"{args.block} calls, first {DISCARD} dropped, 60 ms pause, a variant faster than {args.min_block_ms:g} ms "
          "a block repeating its texts). Phase 1: generation a of worker processes alone. Then generation b "
          "starts; phase 2: both. x/y = variant of generation x ÷ standard of generation y, p50 ratio from the "
          "paired rounds [95 % CI]. A start-time state shows as phase 2 a/a ≠ b/b; a host state that changes "
          f"with time, as phase 1 a/a ≠ phase 2 a/a with a/a = b/b. Load average before: {before}.", "",
          "| variant | run | phase 1 a/a | phase 2 a/a | phase 2 b/b | phase 2 a/b | phase 2 b/a |",
          "|---|---|---|---|---|---|---|", *rows]
    write(args.name, data, md)


# --- ratio reproducibility ------------------------------------------------------------------------

def repro(args: argparse.Namespace) -> None:
    before = loadavg()
    ratios: dict[str, list[float]] = {}
    intervals: dict[str, list[list[float]]] = {}  # per run: CI low, high, rounds
    elapsed: list[float] = []
    steal: list[float | None] = []  # per run: the hypervisor's share of CPU time during the rounds
    processes: list[int] = []  # per run: timing worker processes per variant
    frozen: list[bool] = []  # per run: idle workers stopped (SIGSTOP) rather than paused out
    for i in range(args.n):
        out = HERE / ".repro.json"
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pytest", "bench", "--benchmark-only", "-k", "test_latency", "-q",
                        "-p", "no:cacheprovider", f"--latency-ci={args.latency_ci}", f"--benchmark-json={out}",
                        *([f"--worker-processes={args.worker_processes}"] if args.worker_processes else [])],
                       capture_output=True, text=True,
                       cwd=REPO, timeout=3600)
        elapsed.append(time.perf_counter() - t)
        doc = json.loads(out.read_text())
        if args.keep:  # the raw samples, for estimators.py
            args.keep.mkdir(parents=True, exist_ok=True)
            shutil.copy(out, args.keep / f"{args.name}-{i + 1}.json")
        out.unlink()
        timing = next((b["extra_info"]["context"].get("timing") or {} for b in doc["benchmarks"]), {})
        processes.append(int(timing.get("processes") or 1))
        frozen.append(bool(timing.get("frozen_idle")))
        steal.append((timing.get("steal") or {}).get("latency"))
        for b in doc["benchmarks"]:
            info = b["extra_info"]
            fig = info["figures"].get("p50_ratio")
            if fig:
                ratios.setdefault(info["variant"], []).append(fig["value"])
                intervals.setdefault(info["variant"], []).append([fig["low"], fig["high"], fig["n"]])
        print(f"run {i + 1}/{args.n}: {elapsed[-1]:.0f} s, steal {steal[-1]}", flush=True)
    rows, worst, missed, total = [], 0.0, 0, 0
    for v, rs in ratios.items():
        med = float(np.median(rs))
        dev = max(abs(r / med - 1) for r in rs)
        worst = max(worst, dev)
        ns = [int(x[2]) for x in intervals[v]]
        miss = sum(not (lo <= med <= hi) for lo, hi, _ in intervals[v])
        missed, total = missed + miss, total + len(rs)
        rows.append(f"| {v} | {' · '.join(f'{r:.3f}' for r in rs)} | {med:.3f} | {dev * 100:.1f} % | "
                    f"{min(ns)}–{max(ns)} | {miss} of {len(rs)} |")
    data = {"loadavg_before": before, "commit": head_commit(), "latency_ci": args.latency_ci, "ratios": ratios, "intervals": intervals,
            "elapsed_s": elapsed, "steal": steal, "worker_processes": processes, "frozen_idle": frozen}
    md = ["# Ratio reproducibility: back-to-back runs of the default zoo", "",
          f"{args.n} runs of `pytest bench --benchmark-only -k test_latency` (slimbench's defaults: 40 interleaved rounds of 12 "
          f"calls, the first two discarded, "
          + ("every other worker stopped (SIGSTOP) during a block" if all(frozen) else "60 ms apart" if not any(frozen)
             else "some runs with idle workers stopped, some with 60 ms pauses")
          + "; a variant faster than 120 ms a block repeats its sentences; "
          f"then more rounds, up to 120, for the variants whose ratio's 95 % CI is wider than "
          f"±{args.latency_ci * 100:g} %; {'/'.join(map(str, sorted(set(processes))))} timing worker process(es) per "
          "variant, rounds alternating between them), one after the other; p50 ratio to `standard` from the paired rounds. "
          f"Load average before: {before}; each run {min(elapsed):.0f}–{max(elapsed):.0f} s; steal during each run's "
          "rounds (the hypervisor's other guests, /proc/stat): "
          + " · ".join("–" if x is None else f"{x:.1%}" for x in steal) + ".", "",
          f"**Largest deviation of a run's ratio from its variant's median: {worst * 100:.1f} %.** "
          f"Runs whose own 95 % CI misses the variant's median across runs: {missed} of {total} (an interval that "
          f"also held the run-to-run variation would miss it in at most about 1 of 20).", "",
          "| variant | p50 ratio per run | median | max deviation | rounds | CIs missing the median |",
          "|---|---|---|---|---|---|", *rows]
    write(args.name, data, md)


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("bare-loop")
    p.add_argument("--rounds", type=int, default=40)
    p.add_argument("--block", type=int, default=12)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--variants", default=",".join(THREE))
    p.set_defaults(func=bare_loop)
    p = sub.add_parser("spin")
    p.add_argument("--rounds", type=int, default=30)
    p.add_argument("--threads", type=int, default=2)
    p.set_defaults(func=spin)
    p = sub.add_parser("freeze")
    p.add_argument("--rounds", type=int, default=40)
    p.add_argument("--block", type=int, default=12)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--variants", default=",".join(FREEZE_VARIANTS))
    p.add_argument("--name", default="freeze")
    p.set_defaults(func=freeze)
    p = sub.add_parser("startup")
    p.add_argument("--n", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--variants", default=",".join(STARTUP_VARIANTS))
    p.add_argument("--name", default="startup")
    p.add_argument("--pretouch-gb", type=float, default=0.0,
                   help="write and free this many GB in the parent before each pool starts")
    p.set_defaults(func=startup)
    p = sub.add_parser("aa-ab")
    p.add_argument("--n", type=int, default=20, help="A/A runs, and as many A/B +10 %% runs")
    p.add_argument("--n-5", type=int, default=5, help="A/B +5 %% runs")
    p.add_argument("--n-10", type=int, default=None, help="A/B +10 %% runs (default: --n)")
    p.add_argument("--rounds", type=int, default=None, help="--latency-rounds (default: compare's own)")
    p.add_argument("--worker-processes", type=int, default=None, help="--worker-processes (default: compare's own)")
    p.add_argument("--minutes", type=float, default=0, help="start no compare after this many minutes (0: no limit)")
    p.add_argument("--append", action="store_true", help="add the runs to the committed aa-ab.json instead of replacing it")
    p.add_argument("--render-only", action="store_true", help="measure nothing: rewrite NAME.md from NAME.json")
    p.add_argument("--name", default="aa-ab", help="output name (NAME.json/.md; default aa-ab)")
    p.set_defaults(func=aa_ab)
    p = sub.add_parser("processes")
    p.add_argument("--n", type=int, default=3)
    p.add_argument("--rounds", type=int, default=40)
    p.add_argument("--block", type=int, default=12)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--variants", default=",".join(PROCESS_VARIANTS))
    p.add_argument("--min-block-ms", type=float, default=0.0)
    p.add_argument("--name", default="processes", help="output name (processes.json/.md)")
    p.set_defaults(func=processes)
    p = sub.add_parser("staggered")
    p.add_argument("--n", type=int, default=2)
    p.add_argument("--rounds", type=int, default=120, help="rounds per phase (default 120)")
    p.add_argument("--block", type=int, default=12)
    p.add_argument("--min-block-ms", type=float, default=120)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--variants", default="standard,quantized,onnx-int8,onnx-static-int8")
    p.add_argument("--name", default="staggered")
    p.set_defaults(func=staggered)
    p = sub.add_parser("repro")
    p.add_argument("--n", type=int, default=5)
    p.add_argument("--latency-ci", type=float, default=0.03, help="passed to pytest: the CI half-width the "
                   "adaptive rounds aim for (default 0.03, slimbench's default)")
    p.add_argument("--worker-processes", type=int, default=None,
                   help="passed to pytest: timing worker processes per variant (default: slimbench's)")
    p.add_argument("--name", default="repro", help="output name (repro.json/.md)")
    p.add_argument("--keep", type=Path, default=None, help="keep each run's pytest JSON (raw samples) in this directory")
    p.set_defaults(func=repro)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
