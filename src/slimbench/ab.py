"""Paired A/B: `slimbench compare` measures two builds of the zoo, interleaved, in one run.

A baseline and a candidate -- each a code checkout with its own `src/` and `models/`, each with
its artifacts already built (`slimbench build` in that checkout; a shared cache makes unchanged
specs free) -- are measured side by side on the same machine in the same minutes:

- every (side, variant) gets its own timing worker, importing slimbench from *its* checkout, all
  alive together; latency and throughput are sampled in rounds in which the two sides of a
  variant run back to back (which goes first alternates), so the machine's drift hits both;
- each figure's change is the paired ratio candidate / baseline over rounds, with a bootstrap CI,
  judged by `slimbench.compare.judge` against a floor calibrated from A/A runs on this machine;
- fresh-process start-up and peak-RSS probes alternate between the sides the same way;
- deterministic figures (bytes on disk, parameters, test accuracy from the workers' predictions on
  the same sentences) are compared exactly, with the gate's tolerances;
- a timing regression (p50, p90, batch) is measured again, in a second interleaved run of only the
  flagged variants, before it fails the comparison: a burst of the host's other load (steal) that
  moved one run's rounds is not a regression, a real change is found twice (`--confirm`).

Measurement loops and statistics are this checkout's; the runtime and the artifacts are each
side's. Both checkouts must speak worker protocol 1 (slimbench with `slimbench.worker`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from slimbench.compare import IMPROVEMENT, INCONCLUSIVE, REGRESSION, judge, judge_drop, judge_growth
from slimbench.errors import SlimbenchError
from slimbench.fsutil import atomic_write_text
from slimbench.gate import fmt
from slimbench.workers import CAN_FREEZE, idle_pause_s

SIDES = ("baseline", "candidate")
CORE = ("standard", "light", "ultra-light", "quantized", "onnx", "onnx-int8", "ultra-light-onnx-int8")
SCHEMA = 1

# Floors on a paired ratio, calibrated from A/A runs on the 2-core reference VM (reports/evidence/
# paired/): the largest |change| of 20 A/A compares, rounded up. Override with --floor FIGURE=F.
DEFAULT_FLOORS: dict[str, float] = {"p50": 0.065, "p90": 0.10, "batch": 0.25, "start": 0.15, "peak_rss": 0.10}
STARTUP_PREDICTIONS = 5  # warm predictions before a start-up probe reads peak RSS (both sides alike)
MIN_ROUNDS = 6  # fewer paired rounds than this cannot make a timing verdict, only "inconclusive"
CONFIRMED_FIGURES = ("p50", "p90", "batch")  # timing figures from rounds: a regression is re-measured
# Deterministic tolerances: the gate's defaults (gate_rules.CATALOGUE).
SIZE_TOLERANCE, PARAM_TOLERANCE, ACCURACY_TOLERANCE = 0.01, 0.0, 0.005


class CompareError(SlimbenchError):
    """A side cannot be compared: not a checkout, or its variants are not built."""


@dataclass(frozen=True)
class Side:
    name: str  # baseline | candidate
    checkout: Path
    extra_work: Mapping[str, float] = field(default_factory=dict)

    @property
    def src(self) -> Path:
        return self.checkout / "src"

    def key(self, variant: str) -> str:
        return f"{self.name}:{variant}"


@dataclass(frozen=True)
class Verdict:
    """One compared figure of one variant."""

    variant: str
    figure: str
    unit: str
    baseline: float | None
    candidate: float | None
    change: float | None  # candidate / baseline (1 = same); for accuracy: candidate - baseline
    low: float | None
    high: float | None
    n: int
    floor: float
    how: str
    kind: str | None  # regression | improvement | inconclusive | None
    # a re-measurement of a timing regression: change, low, high, n, kind and run (2: the second) of it
    confirm: dict[str, Any] | None = None

    @property
    def failing(self) -> bool:
        return self.kind == REGRESSION


# --- resolving each side's artifacts ------------------------------------------------------------------

def resolve_side(side: Side, variants: Sequence[str], list_args: Sequence[str]) -> dict[str, Path]:
    """Each variant's artifact directory, as the side's own code computes it (`slimbench list --json`)."""
    if not (side.src / "slimbench" / "__init__.py").is_file():
        raise CompareError(f"{side.name} checkout {side.checkout} has no src/slimbench; give the root of a "
                           "slimbench checkout")
    env = dict(os.environ, PYTHONPATH=str(side.src), HF_HUB_OFFLINE="1")
    env.pop("SLIMBENCH_MODELS", None)  # each side's own models/
    proc = subprocess.run([sys.executable, "-m", "slimbench.cli", "list", "--json", *list_args],
                          capture_output=True, text=True, env=env, cwd=side.checkout, timeout=600)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise CompareError(f"{side.name} checkout {side.checkout}: `slimbench list --json` failed: {last}")
    listed = {v["name"]: v for v in json.loads(proc.stdout)["variants"]}
    out: dict[str, Path] = {}
    for name in variants:
        if name not in listed:
            raise CompareError(f"{side.name} checkout {side.checkout} has no variant {name!r}; "
                               f"it has: {', '.join(listed)}")
        if not listed[name]["built"]:
            raise CompareError(f"{side.name} variant {name!r} is not built (expected {listed[name]['artifact']}); "
                               f"run `slimbench build --variants {name}` in {side.checkout}")
        out[name] = Path(listed[name]["artifact"])
    return out


# --- measuring ------------------------------------------------------------------------------------

@dataclass
class Settings:
    rounds: int = 30
    max_rounds: int = 60
    ci_half_width: float = 0.04
    block: int = 12
    warmup: int = 10
    # Idle workers stopped (SIGSTOP, WorkerPool.freeze_idle) where the OS can, else a pause before
    # each block (pause_s); the A/A runs of aa-ab-frozen.md calibrated the floors so.
    freeze_idle: bool = CAN_FREEZE
    min_block_s: float = 0.12
    throughput_rounds: int = 4
    throughput_batch: int = 32
    confirm: int = 1
    processes: int = 1  # worker processes per side and variant; rounds alternate between them
    probes: int = 1
    accuracy: bool = True
    threads: int = 2
    timeout_s: float = 300.0
    floors: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_FLOORS))

    @property
    def pause_s(self) -> float:
        """The pause before each block: none while idle workers are stopped."""
        return idle_pause_s(self.freeze_idle)


@dataclass
class Measured:
    latency: Any = None
    throughput: Any = None
    labels: dict[str, list[int]] = field(default_factory=dict)
    start: dict[str, list[float | None]] = field(default_factory=dict)  # key -> per probe round
    peak_rss: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    label_source: dict[str, str] = field(default_factory=dict)  # key -> why its labels were not predicted again
    repeat: dict[str, int] = field(default_factory=dict)  # key -> times a latency block repeats its texts
    steal: dict[str, float] = field(default_factory=dict)  # phase -> share of CPU time given to other guests


def code_fingerprint(side: Side) -> str:
    """sha256 over the side's slimbench sources: equal fingerprints run the same code."""
    from slimbench.memo import code_fingerprint as fingerprint

    return fingerprint(side.src)


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def measure(sides: Sequence[Side], artifacts: Mapping[str, Mapping[str, Path]], variants: Sequence[str],
            texts: Sequence[str], st: Settings, log: Callable[[str], None] = _log) -> Measured:
    """Every (side, variant) worker alive together; rounds in paired order; then probes."""
    from slimbench.interleave import (
        DISCARD,
        equal_time_repeats,
        paired_order,
        progress_log,
        run_rounds,
        wide_ratios,
    )
    from slimbench.machine import StealMeter
    from slimbench.workers import WorkerPool, WorkerSpec

    out = Measured()
    # A variant's two sides start together, one per core (a 2-core machine), variants one after the
    # other: each worker's start-up is timed as a fresh-process probe (probe round 0), the pair in
    # the same conditions. Which side is spawned first alternates by variant.
    specs = [WorkerSpec(s.key(v), artifacts[s.name][v], st.threads, s.extra_work.get(v, 0.0), str(s.src))
             for i, v in enumerate(variants) for s in (sides if i % 2 == 0 else sides[::-1])]
    t0 = time.perf_counter()
    log(f"compare: starting {len(specs)} timing workers ({len(variants)} variants x 2 sides), a variant's two "
        "sides together")
    with WorkerPool(specs, texts, timeout_s=st.timeout_s,
                    startup_predictions=STARTUP_PREDICTIONS if st.probes else None, together=2,
                    processes=st.processes, freeze_idle=st.freeze_idle) as pool:
        out.seconds["workers_start"] = time.perf_counter() - t0
        for key, records in pool.startup.items():
            for r in records:
                out.start.setdefault(key, []).append(r.start_to_first_prediction_s)
                out.peak_rss.setdefault(key, []).append(float(r.vmhwm_bytes["after_inference"]))
        warm = pool.warm_up(st.warmup)
        out.repeat = equal_time_repeats(warm, st.block, st.min_block_s, group=lambda key: key.split(":", 1)[1])
        t, meter = time.perf_counter(), StealMeter()
        pairs = {sides[1].key(v): sides[0].key(v) for v in variants}
        more = wide_ratios(pairs, st.ci_half_width) if st.max_rounds > st.rounds else None
        out.latency = run_rounds(pool.alive, st.rounds, pool.blocks("latency", st.block, repeat=out.repeat),
                                 discard=DISCARD, more=more, max_rounds=st.max_rounds,
                                 order=paired_order, progress=progress_log(log, "compare: latency"),
                                 settle_s=st.pause_s)
        out.seconds["latency"] = time.perf_counter() - t
        if (steal := meter.lap()) is not None:
            out.steal["latency"] = steal
        if st.throughput_rounds:
            t = time.perf_counter()
            out.throughput = run_rounds(pool.alive, st.throughput_rounds, pool.blocks("batch", 2, st.throughput_batch),
                                        discard=1, order=paired_order, settle_s=st.pause_s)
            out.seconds["throughput"] = time.perf_counter() - t
        if st.accuracy:
            t = time.perf_counter()
            _predict_test_split(pool, sides, artifacts, variants, texts, st.threads, out)
            out.seconds["accuracy"] = time.perf_counter() - t
        out.errors.update(pool.errors)
    if st.probes:
        t = time.perf_counter()
        _probe(sides, artifacts, variants, texts, st, out, log)
        out.seconds["probes"] = time.perf_counter() - t
    return out


def _predict_test_split(pool: Any, sides: Sequence[Side], artifacts: Mapping[str, Mapping[str, Path]],
                        variants: Sequence[str], texts: Sequence[str], threads: int, out: Measured) -> None:
    """Every worker's labels for the test split, for accuracy. Labels are a pure function of the
    artifact's files, the code and the libraries, so they are predicted once per such key: a
    variant whose two sides are the same artifact run by the same code is predicted once, and a
    key predicted by an earlier compare is read from the cache (`slimbench.memo`)."""
    from slimbench import memo
    from slimbench.memo import TEST_SPLIT_BATCH

    by_key: dict[str, list[Any]] = {}  # worker -> what its labels depend on (`memo.prediction_key`)
    artifact_of: dict[str, Path] = {}
    for side in sides:
        code = code_fingerprint(side)
        for v in variants:
            if side.key(v) in pool.alive:
                artifact_of[side.key(v)] = artifacts[side.name][v]
                by_key[side.key(v)] = memo.prediction_key(code, artifacts[side.name][v], texts, threads, side.extra_work)
    for key in pool.alive:
        earlier = next((k for k in out.labels if by_key.get(k) == by_key[key]), None)
        if earlier is not None:
            out.labels[key] = out.labels[earlier]
            out.label_source[key] = out.label_source.get(earlier, "same artifact and code on both sides: predicted once")
            continue
        cacheable = memo.in_cache(artifact_of[key])
        hit = memo.labels(by_key[key], len(texts)) if cacheable else None
        if hit is not None:
            out.labels[key] = hit
            out.label_source[key] = "same artifact files and code as an earlier run: cached labels"
            continue
        reply = pool.request(key, {"op": "predict_all", "batch_size": TEST_SPLIT_BATCH})
        if reply is not None:
            out.labels[key] = reply["labels"]
            if cacheable:
                memo.put("predictions", by_key[key], reply["labels"])


def _probe(sides: Sequence[Side], artifacts: Mapping[str, Mapping[str, Path]], variants: Sequence[str],
           texts: Sequence[str], st: Settings, out: Measured, log: Callable[[str], None]) -> None:
    """Fresh-process probes after the workers' own start-ups (round 0): round k runs each variant's
    two sides back to back, alternating. A worker that gave no start-up record (a checkout from
    before workers timed their start) gets a fresh probe in round 0 instead."""
    from slimbench.interleave import paired_order
    from slimbench.probes import run_probe

    by_key = {s.key(v): (s, v) for v in variants for s in sides}
    alive = [k for k in by_key if k not in out.errors]
    missing = [k for k in alive if not out.start.get(k)]
    if st.probes > 1 or missing:
        log(f"compare: {st.probes - 1} more fresh-process probe rounds of {len(alive)} workers' variants"
            + (f" (and round 0 of {len(missing)})" if missing else ""))
    for k in range(st.probes):
        for key in paired_order(alive, k):
            if k == 0 and key not in missing:
                continue
            side, v = by_key[key]
            env = dict(os.environ, PYTHONPATH=str(side.src))
            if side.extra_work.get(v):
                env["SLIMBENCH_EXTRA_WORK"] = str(side.extra_work[v])
            r = run_probe(artifacts[side.name][v], st.threads, list(texts[:STARTUP_PREDICTIONS]),
                          n_predict=STARTUP_PREDICTIONS, timeout_s=st.timeout_s, env=env)
            if r.ok:
                out.start.setdefault(key, []).append(r.start_to_first_prediction_s)
                out.peak_rss.setdefault(key, []).append(float(r.vmhwm_bytes["after_inference"]))
            else:
                out.start.setdefault(key, []).append(None)
                out.errors.setdefault(key, r.error or "probe failed")


# --- judging --------------------------------------------------------------------------------------

def _paired(variant: str, figure: str, num: Sequence[Sequence[float] | None], den: Sequence[Sequence[float] | None],
            q: float, floor: float, how: str) -> Verdict | None:
    from slimbench.stats import paired_ratio

    try:
        r = paired_ratio(num, den, q)
    except ValueError:
        return None
    base = float(np.median([np.percentile(b, q) for b in den if b]))
    cand = float(np.median([np.percentile(a, q) for a in num if a]))
    kind = judge(r.value, r.low, r.high, floor)
    if r.rounds < MIN_ROUNDS and kind is not None:
        kind = INCONCLUSIVE if r.value - 1 > floor else None  # a bootstrap over a handful of rounds is no proof
    return Verdict(variant, figure, "s", base, cand, r.value, r.low, r.high, r.rounds, floor, how, kind)


def judge_all(sides: Sequence[Side], artifacts: Mapping[str, Mapping[str, Path]], variants: Sequence[str],
              gold: Sequence[int], num_labels: int, m: Measured, st: Settings) -> list[Verdict]:
    from slimbench.measure import accuracy_figures
    from slimbench.stats import paired_accuracy_difference_ci

    base, cand = sides
    out: list[Verdict] = []
    for v in variants:
        kb, kc = base.key(v), cand.key(v)
        if kb in m.errors or kc in m.errors:
            continue
        lat_b, lat_c = m.latency.rounds_of(kb), m.latency.rounds_of(kc)
        how = "paired rounds (worker processes, interleaved)"
        for figure, q in (("p50", 50.0), ("p90", 90.0)):
            verdict = _paired(v, figure, lat_c, lat_b, q, st.floors[figure], how)
            if verdict:
                out.append(verdict)
        if m.throughput is not None:
            verdict = _paired(v, "batch", m.throughput.rounds_of(kc), m.throughput.rounds_of(kb), 50.0,
                              st.floors["batch"], how)
            if verdict:
                out.append(verdict)
        if m.start.get(kb) and m.start.get(kc):
            rounds_b = [[x] if x is not None else None for x in m.start[kb]]
            rounds_c = [[x] if x is not None else None for x in m.start[kc]]
            verdict = _paired(v, "start", rounds_c, rounds_b, 50.0, st.floors["start"],
                              "paired fresh-process probes (start to first prediction)")
            if verdict:
                out.append(verdict)
        if m.peak_rss.get(kb) and m.peak_rss.get(kc):
            b, c = float(np.median(m.peak_rss[kb])), float(np.median(m.peak_rss[kc]))
            out.append(Verdict(v, "peak_rss", "B", b, c, c / b, None, None, len(m.peak_rss[kc]),
                               st.floors["peak_rss"], "median VmHWM of the probes",
                               judge_growth(b, c, st.floors["peak_rss"])))
        out.extend(_deterministic(v, artifacts[base.name][v], artifacts[cand.name][v]))
        if kb in m.labels and kc in m.labels:
            figs = accuracy_figures(m.labels[kc], gold, num_labels, reference_pred=m.labels[kb])
            ab = accuracy_figures(m.labels[kb], gold, num_labels)["accuracy"]["value"]
            ac = figs["accuracy"]["value"]
            # the verdict is exact (same recipe, same labels); the interval says how far another text
            # sample of this size could move the difference (paired bootstrap over sentences)
            _, lo, hi = paired_accuracy_difference_ci(len(gold), int(figs["only_standard_right"]["value"]),
                                                      int(figs["only_variant_right"]["value"]))
            how = "; ".join(dict.fromkeys(m.label_source[k] for k in (kb, kc) if k in m.label_source)) \
                or "test split, same sentences (deterministic)"
            out.append(Verdict(v, "accuracy", "ratio", ab, ac, ac - ab, lo, hi, len(gold), ACCURACY_TOLERANCE,
                               how + "; interval: paired bootstrap over sentences", judge_drop(ab, ac, ACCURACY_TOLERANCE)))
    return out


def flagged_for_confirmation(verdicts: Sequence[Verdict]) -> list[str]:
    """The variants with a timing regression that a second run must find again, in verdict order."""
    return list(dict.fromkeys(v.variant for v in verdicts if v.failing and v.figure in CONFIRMED_FIGURES))


def confirm_verdicts(first: Sequence[Verdict], again: Sequence[Verdict], measured_again: Sequence[str],
                     run: int = 2) -> list[Verdict]:
    """A timing regression stands only if the re-measurement (the compare's `run`-th run of those
    variants) finds it too; otherwise it becomes "inconclusive" (a change seen once, not reproduced:
    not a failure). The first run's figures stay; the re-measurement's are in `confirm`."""
    by_key = {(v.variant, v.figure): v for v in again}
    out = []
    for v in first:
        if v.failing and v.figure in CONFIRMED_FIGURES and v.variant in measured_again:
            r = by_key.get((v.variant, v.figure))
            record = ({"change": r.change, "low": r.low, "high": r.high, "n": r.n, "kind": r.kind, "run": run} if r
                      else {"change": None, "low": None, "high": None, "n": 0, "kind": None, "run": run})
            kind = v.kind if r is not None and r.kind == REGRESSION else INCONCLUSIVE
            v = replace(v, kind=kind, confirm=record)
        out.append(v)
    return out


def _deterministic(variant: str, base_dir: Path, cand_dir: Path) -> list[Verdict]:
    from slimbench.measure import file_figures
    from slimbench.runtime import read_manifest

    fb, fc = file_figures(base_dir, read_manifest(base_dir)), file_figures(cand_dir, read_manifest(cand_dir))
    out = []
    for figure, tol in (("total_bytes", SIZE_TOLERANCE), ("gzip_bytes", SIZE_TOLERANCE), ("parameters", PARAM_TOLERANCE)):
        b, c = float(fb[figure]["value"]), float(fc[figure]["value"])
        out.append(Verdict(variant, figure, fb[figure]["unit"], b, c, c / b if b else None, None, None, 1, tol,
                           "deterministic", judge_growth(b, c, tol)))
    return out


# --- rendering ------------------------------------------------------------------------------------

def _change(v: Verdict) -> str:
    if v.change is None:
        return "—"
    if v.figure == "accuracy":
        text = f"{v.change * 100:+.2f} points"
        if v.low is not None and v.high is not None:
            text += f" [{v.low * 100:+.1f}, {v.high * 100:+.1f}]"
        return text
    text = f"{(v.change - 1) * 100:+.1f} %"
    if v.low is not None and v.high is not None:
        text += f" [{(v.low - 1) * 100:+.1f}, {(v.high - 1) * 100:+.1f}]"
    return text


MARK = {REGRESSION: "✗ regression", IMPROVEMENT: "✓ improvement", INCONCLUSIVE: "? inconclusive", None: "="}


def _confirm_text(v: Verdict) -> str:
    """What the re-measurement of a timing regression found ("" if it was not re-measured)."""
    if v.confirm is None:
        return ""
    again = replace(v, change=v.confirm["change"], low=v.confirm["low"], high=v.confirm["high"])
    where = "a second run" if v.confirm.get("run", 2) == 2 else f"run {v.confirm['run']}"
    seen = f"{_change(again)} in {where}" if v.confirm["change"] is not None else f"no figure in {where}"
    return f"{'confirmed' if v.kind == REGRESSION else 'not confirmed'}: {seen}"


def _verdict_text(v: Verdict) -> str:
    return MARK[v.kind] + (f" ({_confirm_text(v)})" if v.confirm is not None else "")


def render_markdown(verdicts: Sequence[Verdict], errors: Mapping[str, str], header: str) -> str:
    from tabulate import tabulate

    rows = [[v.variant, v.figure, fmt(v.baseline, v.unit), fmt(v.candidate, v.unit), _change(v),
             v.n, f"{v.floor * 100:g} %" if v.figure != "accuracy" else f"{v.floor * 100:g} points",
             _verdict_text(v)] for v in verdicts]
    table = tabulate(rows, headers=["variant", "figure", "baseline", "candidate", "change [95 % CI]", "n",
                                    "floor", "verdict"], tablefmt="github", disable_numparse=True)
    lines = [header, "", table]
    if errors:
        lines += ["", "Failed (not compared):", ""] + [f"- `{k}`: {e}" for k, e in errors.items()]
    return "\n".join(lines) + "\n"


def _finding_line(v: Verdict) -> str:
    line = (f"{(v.kind or 'same').upper():<12} {v.variant} {v.figure}: {fmt(v.baseline, v.unit)} → "
            f"{fmt(v.candidate, v.unit)} ({_change(v)}); floor {v.floor * 100:g} %; {v.how}, n={v.n}")
    return line if v.confirm is None else f"{line}; {_confirm_text(v)}"


# --- command line ---------------------------------------------------------------------------------

def _parse_pairs(items: Sequence[str], what: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in items:
        name, _, value = item.partition("=")
        try:
            out[name] = float(value)
        except ValueError:
            raise CompareError(f"{what} expects NAME=NUMBER, got {item!r}") from None
        if not name or out[name] < 0:
            raise CompareError(f"{what} expects NAME=NUMBER with a non-negative number, got {item!r}")
    return out


def _settings(args: argparse.Namespace) -> Settings:
    least = {"rounds": 1, "block": 3, "throughput_rounds": 0, "threads": 1, "min_block_ms": 0}
    for name, low in least.items():
        if getattr(args, name) < low:
            raise CompareError(f"--{name.replace('_', '-')} must be >= {low}, got {getattr(args, name)}")
    if args.probes < 0:
        raise CompareError(f"--probes must be >= 0, got {args.probes}")
    floors = dict(DEFAULT_FLOORS)
    for name, value in _parse_pairs(args.floor, "--floor").items():
        if name not in floors:
            raise CompareError(f"--floor: unknown figure {name!r}; known: {', '.join(floors)}")
        floors[name] = value
    if not 0 <= args.ci < 1:
        raise CompareError(f"--ci must be a fraction in [0, 1), got {args.ci}")
    if args.confirm < 0:
        raise CompareError(f"--confirm must be >= 0, got {args.confirm}")
    if args.processes < 1:
        raise CompareError(f"--processes must be >= 1, got {args.processes}")
    return Settings(rounds=args.rounds, max_rounds=args.max_rounds, ci_half_width=args.ci, block=args.block,
                    throughput_rounds=args.throughput_rounds, min_block_s=args.min_block_ms / 1000,
                    confirm=args.confirm, processes=args.processes, probes=args.probes,
                    accuracy=not args.no_accuracy, threads=args.threads, floors=floors,
                    freeze_idle=not args.no_freeze_idle_workers)


def _header(status: str, variants: Sequence[str], sides: Sequence[Side], st: Settings, elapsed: float,
            steal: Mapping[str, float] | None = None) -> str:
    """The verdict line and how the comparison was measured."""
    from slimbench.report import steal_text

    return (f"## slimbench compare: {status}\n\n{len(variants)} variants, baseline `{sides[0].checkout}` vs "
              f"candidate `{sides[1].checkout}`, measured interleaved in one run ({st.rounds}–{max(st.rounds, st.max_rounds)} latency rounds "
              f"(more while a change's 95 % CI is wider than ±{st.ci_half_width:.0%}) of "
              f"{st.block} calls, the first two discarded, "
              + ("the other workers stopped meanwhile" if st.pause_s == 0 else f"{st.pause_s * 1e3:.0f} ms apart")
              + f", a variant faster than {st.min_block_s * 1000:g} ms "
              f"a block repeating its sentences; {st.probes} probe rounds, the first the workers' own start-ups"
              + (f" ({st.processes} worker processes per side and variant, the rounds alternating between them, so "
                 f"{st.processes + st.probes - 1} start-up samples)" if st.processes > 1 and st.probes else "")
              + ", "
              "a variant's two sides starting together, one per core; "
              f"{st.threads} threads; "
              f"{elapsed:.0f} s). Change = candidate / baseline, paired by round, with its 95 % bootstrap CI; "
              "a regression is beyond the floor and significant"
              + (f", and a timing regression (p50, p90, batch) must be found again when its variant is measured "
                 f"again in {'a second run' if st.confirm == 1 else f'{st.confirm} more runs'}" if st.confirm else "")
              + "." + steal_text(steal or {}))


def _write_json(out: Path, sides: Sequence[Side], variants: Sequence[str], extra: Mapping[str, float], st: Settings,
                measured: Measured, verdicts: Sequence[Verdict], status: str, elapsed: float,
                again: Measured | None = None) -> None:
    """The whole comparison, raw rounds included, written atomically."""
    doc = {"slimbench_compare_schema": SCHEMA, "status": status, "elapsed_s": elapsed,
           "baseline": str(sides[0].checkout), "candidate": str(sides[1].checkout),
           "candidate_extra_work": dict(extra), "variants": list(variants), "settings": asdict(st),
           "seconds": measured.seconds, "steal": measured.steal, "errors": measured.errors, "repeat": measured.repeat,
           "verdicts": [asdict(v) for v in verdicts],
           "rounds": {"latency": measured.latency.blocks if measured.latency else {},
                      "throughput": measured.throughput.blocks if measured.throughput else {}},
           "start_s": measured.start, "peak_rss_bytes": measured.peak_rss,
           "confirm_rounds": None if again is None else {
               "latency": again.latency.blocks if again.latency else {},
               "throughput": again.throughput.blocks if again.throughput else {}}}
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, json.dumps(doc, indent=1))


def cmd_compare(args: argparse.Namespace) -> int:
    from slimbench.data import load_dataset
    from slimbench.options import use_cache_root
    from slimbench.zoo import Zoo

    started = time.perf_counter()
    st = _settings(args)
    extra = _parse_pairs(args.candidate_extra_work, "--candidate-extra-work")
    sides = (Side("baseline", args.baseline.resolve()), Side("candidate", args.candidate.resolve(), extra))
    if args.variants.strip() == "":
        raise CompareError("--variants is empty; name at least one variant, `core` or `all`")
    if args.variants in ("core", "all"):
        names = list(Zoo.load(sides[1].checkout / "models").names)
        variants = [v for v in names if args.variants == "all" or v in CORE]
    else:
        variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in extra if v not in variants]
    if unknown:
        raise CompareError(f"--candidate-extra-work names {', '.join(unknown)}, not among the compared variants")
    list_args = ["--dataset", args.dataset, "--text-column", args.text_column, "--label-column", args.label_column]
    if args.cache:
        list_args += ["--cache", str(args.cache.resolve())]
    if args.base:
        list_args += ["--base", args.base]
    if args.test_file:
        list_args += ["--test-file", str(args.test_file.resolve())]
    use_cache_root(args.cache)
    # The two sides resolve their artifacts in child processes while this one reads the dataset.
    with ThreadPoolExecutor(max_workers=2) as ex:
        resolving = {s.name: ex.submit(resolve_side, s, variants, list_args) for s in sides}
        splits = load_dataset(args.dataset, args.text_column, args.label_column, args.test_file)
        artifacts = {name: f.result() for name, f in resolving.items()}
    texts = [e.text for e in splits.test]
    gold = [e.label for e in splits.test]
    measured = measure(sides, artifacts, variants, texts, st)
    verdicts = judge_all(sides, artifacts, variants, gold, splits.num_labels, measured, st)
    again: Measured | None = None
    if st.confirm and (flagged := flagged_for_confirmation(verdicts)):
        verdicts, again = _confirm(sides, artifacts, flagged, texts, gold, splits.num_labels, st, verdicts, measured)
    elapsed = time.perf_counter() - started
    regressions = [v for v in verdicts if v.failing]
    status = "FAIL" if regressions or measured.errors else "PASS"
    header = _header(status, variants, sides, st, elapsed, measured.steal)
    markdown = render_markdown(verdicts, measured.errors, header)
    for v in verdicts:
        if v.kind:
            print(_finding_line(v))
    for key, err in measured.errors.items():
        print(f"FAILED       {key}: {err}")
    print(f"slimbench compare: {status} — {len(regressions)} regression(s), "
          f"{sum(v.kind == INCONCLUSIVE for v in verdicts)} inconclusive, {len(verdicts)} figures compared, "
          f"{len(measured.errors)} failed, in {elapsed:.0f} s")
    if args.markdown:
        args.markdown.write_text(markdown)
    if args.step_summary:
        with open(args.step_summary, "a") as f:
            f.write(markdown)
    if args.out:
        _write_json(args.out, sides, variants, extra, st, measured, verdicts, status, elapsed, again)
    return 1 if status == "FAIL" else 0


def _confirm(sides: Sequence[Side], artifacts: Mapping[str, Mapping[str, Path]], flagged: Sequence[str],
             texts: Sequence[str], gold: Sequence[int], num_labels: int, st: Settings, verdicts: Sequence[Verdict],
             measured: Measured) -> tuple[list[Verdict], Measured]:
    """Measure the variants with a timing regression again -- new workers, new interleaved rounds,
    the same settings, no probes or accuracy (deterministic or not re-judged) -- `st.confirm` times;
    a regression stands only if every re-measurement finds it. A variant that fails while re-measured
    is a failed variant, as in the first run."""
    t = time.perf_counter()
    again = Measured()
    for attempt in range(st.confirm):
        _log(f"compare: timing regression in {', '.join(flagged)}; measuring {'it' if len(flagged) == 1 else 'them'} "
             f"again ({attempt + 1}/{st.confirm}) before failing")
        batch = any(v.failing and v.figure == "batch" for v in verdicts)  # throughput rounds only if needed
        again = measure(sides, artifacts, flagged, texts, replace(st, probes=0, accuracy=False,
                                                                   throughput_rounds=st.throughput_rounds if batch else 0))
        measured.errors.update(again.errors)
        redone = [v for v in judge_all(sides, artifacts, flagged, gold, num_labels, again, st)
                  if v.figure in CONFIRMED_FIGURES]
        verdicts = confirm_verdicts(verdicts, redone, flagged, run=attempt + 2)
        for phase, steal in again.steal.items():
            measured.steal[f"confirm {phase}"] = steal
        if not (flagged := flagged_for_confirmation(verdicts)):
            break
    measured.seconds["confirm"] = time.perf_counter() - t
    return list(verdicts), again


def register_cli(sub: Any) -> None:
    from slimbench.options import add_inputs

    p = sub.add_parser(
        "compare", help="paired A/B: measure a baseline and a candidate checkout interleaved; exit 1 on a regression",
        description="Measure two builds of the zoo -- BASELINE and CANDIDATE, each a slimbench checkout whose "
                    "variants are built -- interleaved in one run on this machine, and judge every figure: "
                    "latency/throughput/start-up by the paired ratio and its CI against a floor calibrated from "
                    "A/A runs, size/parameters/accuracy exactly. Exit 1 on a regression or a failed variant.")
    p.add_argument("--baseline", type=Path, required=True, help="the baseline checkout (root with src/ and models/)")
    p.add_argument("--candidate", type=Path, default=Path("."), help="the candidate checkout (default: .)")
    p.add_argument("--variants", default="core",
                   help=f"comma-separated variants, `core` ({', '.join(CORE)}; the default) or `all`")
    p.add_argument("--rounds", type=int, default=30, help="interleaved latency rounds (default 30)")
    p.add_argument("--max-rounds", type=int, default=60,
                   help="after --rounds, rounds continue for the variants whose change still has a 95 %% CI wider "
                        "than --ci, up to this many in all (default 60)")
    p.add_argument("--ci", type=float, default=0.04,
                   help="CI half-width, relative, at which a variant needs no more latency rounds (default 0.04)")
    p.add_argument("--block", type=int, default=12,
                   help="batch-1 calls per block, the first two discarded (default 12)")
    p.add_argument("--throughput-rounds", type=int, default=4,
                   help="interleaved rounds of 2 batches of 32, the first discarded; 0 to skip (default 4)")
    p.add_argument("--min-block-ms", type=int, default=120,
                   help="a variant faster than this per block repeats the round's sentences until its block lasts "
                        "about this long, the same for both sides (default 120; 0: off)")
    p.add_argument("--probes", type=int, default=1,
                   help="fresh-process start-up/peak-RSS probes per side and variant, 0 to skip (default 1: the "
                        "timing workers time their own start-up as a probe does, a variant's two sides starting "
                        "together, one per core, so the "
                        "first costs nothing extra; peak RSS is near-deterministic; start-up needs "
                        f">= {MIN_ROUNDS} for a verdict)")
    p.add_argument("--confirm", type=int, default=1,
                   help="measure the variants with a timing regression (p50, p90, batch) again, in this many more "
                        "interleaved runs of only those variants; the regression fails the comparison only if every "
                        "run finds it, else it is reported inconclusive (default 1; 0: off)")
    p.add_argument("--processes", type=int, default=1,
                   help="timing worker processes per side and variant; rounds alternate between them, so a "
                        "process's own lasting offset (1-3 %% measured) averages out. Each extra one costs a "
                        "start-up per side and variant (default 1: the A/A-calibrated floors absorb it)")
    p.add_argument("--no-freeze-idle-workers", action="store_true",
                   help="do not stop idle timing workers (SIGSTOP) while another runs its block; pause 60 ms "
                        "before each block instead, until the previous worker's runtime threads stop spinning")
    p.add_argument("--no-accuracy", action="store_true",
                   help="skip the test-split predictions (accuracy is deterministic per artifact; timing-only runs)")
    p.add_argument("--threads", type=int, default=2, help="intra-op threads for every runtime (default 2)")
    p.add_argument("--floor", action="append", default=[], metavar="FIGURE=FRACTION",
                   help="override a floor, e.g. p50=0.05 (figures: " + ", ".join(
                       f"{k} {v:g}" for k, v in DEFAULT_FLOORS.items()) + ")")
    p.add_argument("--candidate-extra-work", action="append", default=[], metavar="NAME=FRACTION",
                   help="make the candidate's variant NAME do FRACTION more CPU work per call (a real, known "
                        "slowdown: for A/B tests of this gate)")
    add_inputs(p.add_argument, skip=("models",))  # the dataset and checkpoint both sides were built from
    p.add_argument("--out", type=Path, default=None, help="write the full comparison (raw rounds too) as JSON")
    p.add_argument("--markdown", type=Path, default=None, help="write the comparison table as Markdown")
    p.add_argument("--step-summary", type=Path, default=None, metavar="FILE",
                   help="append the Markdown to FILE (e.g. \"$GITHUB_STEP_SUMMARY\")")
    p.set_defaults(func=cmd_compare)
