"""Paired A/B: `slimbench compare` measures two builds of the zoo, interleaved, in one run.

A baseline and a candidate -- each a code checkout with its own `src/` and `models/`, each with
its artifacts already built (`slimbench build` in that checkout; a shared cache makes unchanged
specs free) -- are measured side by side on the same machine in the same minutes:

- every (side, variant) gets its own timing worker, importing slimbench from *its* checkout, all
  alive together; latency and throughput are sampled in rounds in which the two sides of a
  variant run back to back (which goes first alternates), so the machine's drift hits both;
- each figure's change is the paired ratio candidate / baseline over rounds, with a bootstrap CI,
  judged by `slimbench.analysis.judge.judge` against a floor calibrated from A/A runs on this machine;
- fresh-process start-up and peak-RSS probes alternate between the sides the same way;
- deterministic figures (bytes on disk, parameters, test accuracy from the workers' predictions on
  the same sentences) are compared exactly, with the gate's tolerances;
- a timing regression (p50, p90, batch) is measured again, in a second interleaved run of only the
  flagged variants, before it fails the comparison: a burst of the host's other load (steal) that
  moved one run's rounds is not a regression, a real change is found twice (`--confirm`).

Measurement loops and statistics are this checkout's; the runtime and the artifacts are each
side's. Both checkouts must speak worker protocol 1 (slimbench with `slimbench.runtimes.worker`).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from slimbench.analysis.judge import INCONCLUSIVE, REGRESSION, judge, judge_drop, judge_growth
from slimbench.errors import SlimbenchError
from slimbench.labels import LabelGroups
from slimbench.measure.session import Observations
from slimbench.measure.settings import MeasureSettings

SIDES = ("baseline", "candidate")
CORE = ("standard", "light", "ultra-light", "quantized", "onnx", "onnx-int8", "ultra-light-onnx-int8")
SCHEMA = 1

# Floors on a paired ratio, calibrated from A/A runs on a 2-core VM (experiments/gate-calibration/).
# p50: with three worker processes per variant and side, no first run of 71 A/A compares (284
# comparisons) passed 2.5 % with significance (largest change 3.7 %, not significant), and a timing
# regression fails only if a second run finds it too; at 2.5 % a +5 % code change was caught in 38 of
# 40 compares, extra work in 22 of 22, +3 % in 4 of 6 (catch-5pct-fresh.md, catch-2p5pct.md,
# catch-60-rounds.md). p90 and batch: A/A changes up to 4.4 % and 45 % (the latter not significant),
# unchanged variants' p90 up to 5.9 % (catch-60-rounds.md). Override with --floor FIGURE=F.
DEFAULT_FLOORS: dict[str, float] = {"p50": 0.025, "p90": 0.10, "batch": 0.25, "start": 0.15, "peak_rss": 0.10}
MIN_ROUNDS = 6  # fewer paired rounds than this cannot make a timing verdict, only "inconclusive"
CONFIRMED_FIGURES = ("p50", "p90", "batch")  # timing figures from rounds: a regression is re-measured
# What a re-measurement must find for a timing regression to stand: a significant slowdown beyond this
# share of the floor. The first run already showed the size; the second run rules out a one-off (an A/A
# excursion does not repeat in new worker processes), so it need only show the slowdown again, with a
# margin: in 71 A/A compares with three worker processes, no first run passed the 2.5 % floor with
# significance at all, and a true +5 % re-measured between +2.7 and +12.9 % but once at -0.2 %
# (experiments/gate-calibration/catch-5pct-3proc.md, catch-5pct-fresh.md, catch-2p5pct.md,
# catch-60-rounds.md).
CONFIRM_SHARE = 0.5
# Worker processes per variant and side: each process keeps a lasting offset of its own (1-3 %), and
# the rounds alternating between three of them average it out better than between two (the
# measuring default, `pytest bench`'s): the largest A/A p50 change of 20 compares was 3.7 %, and only
# 6 of 80 A/A intervals excluded 1 (the two-process runs: 8 of 18), so that +5 % was flagged
# by every first run (experiments/gate-calibration/catch-5pct-3proc.md). The cost is memory (a third
# more worker processes), not time: compares took as long. More rounds do not replace processes: with
# 60 latency rounds instead of 40, 20 A/A first runs spread as widely (onnx-int8 SD 1.0 %, as at 40)
# for ~20 s more per compare (experiments/gate-calibration/catch-60-rounds.md), so compare keeps 40.
COMPARE_WORKER_PROCESSES = 3


def confirm_floors(floors: Mapping[str, float]) -> dict[str, float]:
    """The floors a re-measurement is judged by: CONFIRM_SHARE of the confirmed figures' floors."""
    return {k: v * CONFIRM_SHARE if k in CONFIRMED_FIGURES else v for k, v in floors.items()}
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
            inputs = " ".join(a if a.startswith("--") else shlex.quote(a) for a in list_args)
            raise CompareError(f"{side.name} variant {name!r} is not built (expected {listed[name]['artifact']}); "
                               f"run `slimbench build --variants {name} {inputs}` in {side.checkout}")
        out[name] = Path(listed[name]["artifact"])
    return out


# --- measuring: the one session, both sides ----------------------------------------------------------

@dataclass(frozen=True)
class Settings:
    """How a comparison measures (the shared knobs) and judges."""

    measure: MeasureSettings = field(default_factory=lambda: MeasureSettings(worker_processes=COMPARE_WORKER_PROCESSES))
    confirm: int = 1
    accuracy: bool = True
    probes: bool = True  # fresh-process start-up and peak-RSS probes beyond the workers' own start-ups
    floors: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_FLOORS))


def code_fingerprint(side: Side) -> str:
    """sha256 over the side's slimbench sources: equal fingerprints run the same code."""
    from slimbench.cache.memo import code_fingerprint as fingerprint

    return fingerprint(side.src)


def log_line(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def measure(sides: Sequence[Side], artifacts: Mapping[str, Mapping[str, Path]], variants: Sequence[str],
            texts: Sequence[str], st: Settings, log: Callable[[str], None] = log_line,
            metrics: Sequence[str] | None = None) -> Observations:
    """Every (side, variant) measured by the one measuring session, paired: a variant's two sides
    start together (one per core), run back to back in every round and probe round (which goes first
    alternating), and more latency rounds go to the variants whose change is still uncertain."""
    from slimbench.measure.session import Request, Subject, measure_session

    if metrics is None:
        metrics = ["latency", "throughput"] + (["accuracy"] if st.accuracy else []) + (
            ["load", "memory"] if st.probes else [])
    subjects = [Subject(s.key(v), v, artifacts[s.name][v], s.extra_work.get(v, 0.0), s.src)
                for v in variants for s in sides]
    keys = [s.key for s in subjects]
    code = {s.key(v): fp for s in sides for fp in [code_fingerprint(s)] for v in variants}
    req = Request(subjects, texts, st.measure, wanted={m: keys for m in metrics},
                  pairs={sides[1].key(v): sides[0].key(v) for v in variants}, paired=True, code=code,
                  label="compare")
    return measure_session(req, log)


def observation_errors(m: Observations) -> dict[str, str]:
    return {**m.probe_errors, **m.errors}


def start_rounds(m: Observations, key: str) -> list[list[float] | None]:
    return [[r.start_to_first_prediction_s] for r in m.probes.get(key, [])]


def peak_rss_samples(m: Observations, key: str) -> list[float]:
    return [float(r.vmhwm_bytes["after_inference"]) for r in m.probes.get(key, []) if "after_inference" in r.vmhwm_bytes]


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
              gold: Sequence[Any], num_labels: int, m: Observations, st: Settings,
              groups: LabelGroups | None = None) -> list[Verdict]:
    base, cand = sides
    out: list[Verdict] = []
    for v in variants:
        kb, kc = base.key(v), cand.key(v)
        if kb in observation_errors(m) or kc in observation_errors(m):
            continue
        how = "paired rounds (worker processes, interleaved)"
        if m.latency is not None:
            lat_b, lat_c = m.latency.rounds_of(kb), m.latency.rounds_of(kc)
            for figure, q in (("p50", 50.0), ("p90", 90.0)):
                verdict = _paired(v, figure, lat_c, lat_b, q, st.floors[figure], how)
                if verdict:
                    out.append(verdict)
        if m.throughput is not None:
            verdict = _paired(v, "batch", m.throughput.rounds_of(kc), m.throughput.rounds_of(kb), 50.0,
                              st.floors["batch"], how)
            if verdict:
                out.append(verdict)
        rounds_b, rounds_c = start_rounds(m, kb), start_rounds(m, kc)
        if rounds_b and rounds_c:
            n = min(len(rounds_b), len(rounds_c))  # paired probe rounds; a side may have one more
            rounds_b, rounds_c = rounds_b[:n], rounds_c[:n]
            verdict = _paired(v, "start", rounds_c, rounds_b, 50.0, st.floors["start"],
                              "paired fresh-process probes (start to first prediction)")
            if verdict:
                out.append(verdict)
        rss_b, rss_c = peak_rss_samples(m, kb), peak_rss_samples(m, kc)
        if rss_b and rss_c:
            b, c = float(np.median(rss_b)), float(np.median(rss_c))
            out.append(Verdict(v, "peak_rss", "B", b, c, c / b, None, None, len(rss_c),
                               st.floors["peak_rss"], "median VmHWM of the probes",
                               judge_growth(b, c, st.floors["peak_rss"])))
        out.extend(_deterministic(v, artifacts[base.name][v], artifacts[cand.name][v]))
        if kb in m.labels and kc in m.labels:
            how = "; ".join(dict.fromkeys(m.label_source[k] for k in (kb, kc) if k in m.label_source)) \
                or "test split, same sentences (deterministic)"
            out.extend(_accuracy_verdicts(v, m.labels[kb], m.labels[kc], gold, num_labels, groups, how))
    return out


def _accuracy_verdicts(variant: str, base: Sequence[Any], cand: Sequence[Any], gold: Sequence[Any], num_labels: int,
                       groups: LabelGroups | None, how: str) -> list[Verdict]:
    """The candidate's accuracy against the baseline's on the same sentences: a drop beyond
    ACCURACY_TOLERANCE is a regression. With label `groups`, `accuracy` is the exact match, and each
    group's accuracy (`accuracy:GROUP`) is judged by the same rule. The verdict is exact (same recipe,
    same labels); the interval says how far another text sample of this size could move the difference
    (paired bootstrap over sentences)."""
    from slimbench.labels import group_figure
    from slimbench.measure import accuracy_figures
    from slimbench.stats import paired_accuracy_difference_ci

    figs = accuracy_figures(cand, gold, num_labels, reference_pred=base, groups=groups)
    alone = accuracy_figures(base, gold, num_labels, groups=groups)
    names = ["accuracy", *(group_figure("accuracy", g) for g in (groups.names if groups else ()))]
    out = []
    for name in names:
        suffix = name[len("accuracy"):]
        ab, ac = alone[name]["value"], figs[name]["value"]
        _, lo, hi = paired_accuracy_difference_ci(len(gold), int(figs["only_standard_right" + suffix]["value"]),
                                                  int(figs["only_variant_right" + suffix]["value"]))
        what = " (exact match: every label group right)" if groups and name == "accuracy" else ""
        out.append(Verdict(variant, name, "ratio", ab, ac, ac - ab, lo, hi, len(gold), ACCURACY_TOLERANCE,
                           how + what + "; interval: paired bootstrap over sentences",
                           judge_drop(ab, ac, ACCURACY_TOLERANCE)))
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
    from slimbench.runtimes.runners import read_manifest

    fb, fc = file_figures(base_dir, read_manifest(base_dir)), file_figures(cand_dir, read_manifest(cand_dir))
    out = []
    for figure, tol in (("total_bytes", SIZE_TOLERANCE), ("gzip_bytes", SIZE_TOLERANCE), ("parameters", PARAM_TOLERANCE)):
        b, c = float(fb[figure]["value"]), float(fc[figure]["value"])
        out.append(Verdict(variant, figure, fb[figure]["unit"], b, c, c / b if b else None, None, None, 1, tol,
                           "deterministic", judge_growth(b, c, tol)))
    return out
