"""The regression gate: compare a run's saved results with a committed baseline.

A gate is a list of small checks, each returning a `Finding` or nothing; all are collected and the
verdict is given once (failing kinds: regression, budget, missing; reported but not failing:
inconclusive, machine, improvement, note). It reads saved results only: no model, no torch.

Timings and memory are compared as the variant's ratio to the reference variant (`standard`)
measured in the same run, which travels across machines and absorbs machine-wide slowdowns. The
reference itself has nothing to be divided by: its absolute figures are compared only when both
runs come from the same machine. Rules and thresholds: see `slimbench.analysis.gate_rules`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import numpy as np

from slimbench.analysis.gate_rules import (
    CATALOGUE,
    STAND_INS,
    Budget,
    GateConfig,
    GateConfigError,
    Rule,
    load_config,
    quantile_ratio_ci,
    ratio_of_ratios,
    ratio_of_ratios_ci,
    raw_samples,
)
from slimbench.analysis.judge import IMPROVEMENT, REGRESSION, judge, judge_drop, judge_growth
from slimbench.analysis.results import Figure, Measurement, ResultsError, Run
from slimbench.labels import split_group_figure
from slimbench.stats import bootstrap_ratio_ci, mann_whitney_p

__all__ = ["FAILING", "Finding", "GateConfig", "GateConfigError", "GateResult", "gate", "load_config"]

KINDS = ("regression", "budget", "missing", "inconclusive", "history", "machine", "improvement", "note")
FAILING = frozenset({"regression", "budget", "missing"})


# --- findings -------------------------------------------------------------------------------------

def fmt(value: float | None, unit: str) -> str:
    """A value for humans; units are scaled here only (B -> MB, s -> ms, ratio -> %)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if unit == "B":
        return f"{value / 1e6:.2f} MB" if abs(value) >= 1e5 else f"{value:,.0f} B"
    if unit == "s":
        return f"{value * 1e3:.3g} ms" if abs(value) < 1 else f"{value:.3g} s"
    if unit == "ratio":
        return f"{value * 100:.2f} %"
    if unit == "x":
        return f"{value:.3f}×"
    if unit == "count":
        return f"{value:,.0f}"
    return f"{value:.4g} {unit}".strip()


def pct(x: float) -> str:
    return f"{x * 100:+.1f} %"


@dataclass(frozen=True)
class Finding:
    """One thing the gate has to say: what, both values, the threshold and how sure it is."""

    kind: str  # one of KINDS
    variant: str
    metric: str
    figure: str = ""
    baseline: float | None = None
    current: float | None = None
    unit: str = ""  # of baseline/current; "x" = ratio to the reference variant
    change: str = ""  # e.g. "+21.0 %" or "-0.80 points"
    threshold: str = ""  # e.g. "+10 % floor" or "<= 5.00 MB"
    confidence: str = ""  # e.g. "95 % CI [+17 %, +25 %], Mann-Whitney p=3e-30" or "deterministic"
    message: str = ""
    p_value: float | None = None
    ci: tuple[float, float] | None = None  # of the current/baseline ratio (1 = no change)

    @property
    def failing(self) -> bool:
        return self.kind in FAILING

    @property
    def what(self) -> str:
        metric = f"{self.metric}.{self.figure}" if self.figure else self.metric
        return f"{self.variant} {metric}" if self.variant else metric

    def __str__(self) -> str:
        parts = [f"{self.kind.upper():<12} {self.what}"]
        detail = []
        if self.baseline is not None or self.current is not None:
            values = f"{fmt(self.baseline, self.unit)} → {fmt(self.current, self.unit)}"
            detail.append(f"{values} ({self.change})" if self.change else values)
        if self.threshold:
            detail.append(f"threshold {self.threshold}")
        if self.confidence:
            detail.append(self.confidence)
        if self.message:
            detail.append(self.message)
        return ": ".join([parts[0], "; ".join(detail)]) if detail else parts[0]


@dataclass(frozen=True)
class GateResult:
    """All findings of one gate, the number of checks made, and the verdict."""

    findings: list[Finding]
    checks: int
    baseline: Run
    current: Run

    @property
    def passed(self) -> bool:
        return not any(f.failing for f in self.findings)

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def counts(self) -> dict[str, int]:
        return {k: n for k in KINDS if (n := sum(f.kind == k for f in self.findings))}

    def summary(self) -> str:
        counts = ", ".join(f"{n} {k}" for k, n in self.counts().items()) or "no findings"
        return (f"slimbench gate: {'PASS' if self.passed else 'FAIL'} — {counts} ({self.checks} checks; "
                f"baseline {self.baseline.source}, current {self.current.source})")


# --- checks: each returns a Finding or None -------------------------------------------------------

@dataclass(frozen=True)
class Pair:
    """What every check sees: both runs, the config, and whether they come from one machine."""

    baseline: Run
    current: Run
    config: GateConfig

    @property
    def same_machine(self) -> bool:
        return self.baseline.machine_id == self.current.machine_id

    @property
    def reference(self) -> str:
        return self.config.reference


def _ok(m: Measurement | None) -> bool:
    return m is not None and m.ok


def machine_label_of(run: Run) -> str:
    m = run.machine.get("slimbench_machine", {})
    return f"{run.machine_id} ({m['label']})" if m.get("label") else run.machine_id


def check_machine(pair: Pair) -> Finding | None:
    """A baseline from another machine is flagged: ratios are still compared, absolutes are not."""
    if pair.same_machine:
        return None
    return Finding("machine", "", "machine",
                   message=f"baseline from machine {machine_label_of(pair.baseline)}, current from {machine_label_of(pair.current)}: "
                           f"ratios to {pair.reference} are compared, absolute timings and memory of "
                           f"{pair.reference} are not")


def check_variant_present(pair: Pair, variant: str) -> Finding | None:
    if variant in pair.current.variants:
        return None
    return Finding("missing", variant, "variant", message="in the baseline but not in the current results")


def check_measurement_present(pair: Pair, variant: str, metric: str) -> Finding | None:
    """A metric measured in the baseline must be measured, successfully, now."""
    base, cur = pair.baseline.get(variant, metric), pair.current.get(variant, metric)
    if not _ok(base) or variant not in pair.current.variants:
        return None
    if cur is None:
        return Finding("missing", variant, metric, message="measured in the baseline, absent now")
    if not cur.ok:
        return Finding("missing", variant, metric, message=f"measurement failed: {cur.error or cur.status}")
    return None


def check_baseline_usable(pair: Pair, variant: str, metric: str) -> Finding | None:
    base = pair.baseline.get(variant, metric)
    if base is None or base.ok:
        return None
    return Finding("note", variant, metric, message=f"failed in the baseline ({base.error or base.status}); "
                                                   "nothing to compare with")


def check_figure_present(pair: Pair, variant: str, rule: Rule) -> Finding | None:
    base, cur = pair.baseline.get(variant, rule.metric), pair.current.get(variant, rule.metric)
    if base is None or cur is None or not (base.ok and cur.ok):
        return None
    if rule.figure not in base.figures or rule.figure in cur.figures:
        return None
    return Finding("missing", variant, rule.metric, rule.figure, message="figure in the baseline, absent now")


def _both(pair: Pair, variant: str, metric: str, figure: str) -> tuple[Measurement, Measurement] | None:
    """The baseline and current measurement of `variant`, if both succeeded and hold `figure`."""
    base, cur = pair.baseline.get(variant, metric), pair.current.get(variant, metric)
    if base is None or cur is None or not (base.ok and cur.ok):
        return None
    if figure not in base.figures or figure not in cur.figures:
        return None
    return base, cur


def _figures(pair: Pair, variant: str, rule: Rule) -> tuple[Figure, Figure] | None:
    both = _both(pair, variant, rule.metric, rule.figure)
    return None if both is None else (both[0].figures[rule.figure], both[1].figures[rule.figure])


def check_deterministic(pair: Pair, variant: str, rule: Rule) -> Finding | None:
    """Size-like figures: growth beyond a relative tolerance is a regression (no statistics needed)."""
    figs = _figures(pair, variant, rule)
    if figs is None or rule.threshold is None:
        return None
    b, c = figs[0].value, figs[1].value
    tol = rule.threshold
    change = (c / b - 1) if b else (math.inf if c > b else 0.0)
    common: dict[str, Any] = dict(baseline=b, current=c, unit=figs[1].unit, threshold=f"{pct(tol)} max growth",
                                  confidence="deterministic")
    ch = pct(change) if math.isfinite(change) else "from zero"
    kind = judge_growth(b, c, tol)
    if kind == REGRESSION:
        return Finding("regression", variant, rule.metric, rule.figure, change=ch, **common)
    if kind == IMPROVEMENT:
        return Finding("improvement", variant, rule.metric, rule.figure, change=ch,
                       message="smaller than the baseline; consider promoting a new baseline", **common)
    return None


def check_accuracy(pair: Pair, variant: str, rule: Rule) -> Finding | None:
    """Accuracy on the fixed test split: a drop of more than the tolerance (in points) is a regression."""
    figs = _figures(pair, variant, rule)
    if figs is None or rule.threshold is None:
        return None
    b, c = figs[0].value, figs[1].value
    tol = rule.threshold
    drop = b - c
    common: dict[str, Any] = dict(baseline=b, current=c, unit=figs[1].unit, change=f"{-drop * 100:+.2f} points",
                                  threshold=f"-{tol * 100:.2f} points max drop",
                                  confidence=f"deterministic on the fixed test split (n={figs[1].n})")
    kind = judge_drop(b, c, tol)
    caveat = _int8_across_machines(pair, variant)
    if kind == REGRESSION:
        return Finding("regression", variant, rule.metric, rule.figure, message=caveat, **common)
    if kind == IMPROVEMENT:
        return Finding("improvement", variant, rule.metric, rule.figure,
                       message=" ".join(filter(None, ["better than the baseline; consider promoting a new baseline",
                                                      caveat])), **common)
    return None


def _int8_across_machines(pair: Pair, variant: str) -> str:
    """Why an INT8 variant's accuracy can move between two machines with the same spec: its labels
    come from the CPU's integer kernels (e.g. with or without VNNI), which round differently
    (reports/evidence/first-report/cold-run-11.md). The verdict stands (a change of the code looks
    the same); the message says what else it can be."""
    if pair.same_machine:
        return ""
    runs = (pair.baseline.get(variant, "accuracy"), pair.current.get(variant, "accuracy"))
    if not any(m is not None and m.context.get("precision") == "int8" for m in runs):
        return ""
    return ("the runs come from different machines, and an INT8 variant's labels depend on the CPU it is built "
            "and run on, through its integer kernels (onnx-static-int8 from the same spec: 86.93 % on an Intel CPU "
            "with VNNI, 86.38 % on an AVX2-only AMD one); a baseline recorded on this machine tells a change of "
            "the code from one of the CPU")


def _median(xs: Sequence[float]) -> float:
    return float(np.median(np.asarray(xs, dtype=float)))


def check_timing(pair: Pair, variant: str, rule: Rule) -> Finding | None:
    """A timing regression must be larger than the effect floor *and* significant on the raw samples.

    For a variant V != reference R the compared quantity is q(V)/q(R) within each run (q = the
    rule's quantile, e.g. the median for p50_s); the change is the ratio of those ratios.
    Significant means both: the percentile-bootstrap CI of the change (all four samples resampled
    independently) lies wholly above 1, and Mann-Whitney U on V's samples divided by R's median in
    their run gives p < 1 - confidence. Requiring both guards against the bootstrap's
    over-confidence on a handful of samples (e.g. 5 load probes). A change beyond the floor that is
    not significant is inconclusive, not failed. R itself is compared in absolute terms, and only
    when both runs come from the same machine.
    """
    both = _both(pair, variant, rule.metric, rule.figure)
    if both is None or rule.threshold is None:
        return None
    cfg = pair.config
    base_m, cur_m = both
    figs = base_m.figures[rule.figure], cur_m.figures[rule.figure]
    scale = _scale(pair, variant, rule, figs[1].unit)
    if scale is None:
        return None  # another machine (the machine finding says so), or the reference's own finding covers it
    base_s, cur_s = raw_samples(base_m.samples, rule.samples), raw_samples(cur_m.samples, rule.samples)
    base_ref_s, cur_ref_s = scale.base_samples, scale.current_samples
    floor = rule.threshold
    b, c, what = figs[0].value / scale.base, figs[1].value / scale.current, scale.what
    common: dict[str, Any] = dict(baseline=b, current=c, unit=scale.unit,
                                  threshold=f"{pct(floor)} floor, {cfg.confidence * 100:.0f} % confidence")
    if not (base_s and cur_s and base_ref_s and cur_ref_s):
        change = c / b
        if change - 1 > floor:
            return Finding("inconclusive", variant, rule.metric, rule.figure, change=pct(change - 1),
                           confidence="no raw samples, significance not testable", message=what, **common)
        return None
    point = ratio_of_ratios(cur_s, cur_ref_s, base_s, base_ref_s, rule.quantile)
    if abs(point - 1) <= floor:
        return None  # within the floor whatever the CI says: skip the bootstrap
    change, lo, hi = _change_interval(cfg, rule.quantile, variant == pair.reference, (base_s, cur_s),
                                      (base_ref_s, cur_ref_s))
    base_d, cur_d = _median(base_ref_s), _median(cur_ref_s)
    p = mann_whitney_p([x / base_d for x in base_s], [x / cur_d for x in cur_s])
    kind = judge(change, lo, hi, floor, p, cfg.alpha)
    if kind is None:
        return None
    n = f"n={len(base_s)}→{len(cur_s)}"
    confidence = (f"{cfg.confidence * 100:.0f} % CI [{pct(lo - 1)}, {pct(hi - 1)}], Mann-Whitney p={p:.2g}, {n}")
    message = what
    if kind == "inconclusive":
        message += "; larger than the floor but not significant: re-run with more samples"
    elif kind == "improvement":
        message += "; faster than the baseline: consider promoting a new baseline"
    return Finding(kind, variant, rule.metric, rule.figure, change=pct(change - 1), confidence=confidence,
                   message=message, p_value=p, ci=(lo, hi), **common)


@dataclass(frozen=True)
class _Scale:
    """How a variant's figure is compared between the runs: as it is (the reference itself, on the
    same machine only), or as a ratio to the reference's figure in the same run."""

    base: float  # what the baseline run's figure is divided by
    current: float
    base_samples: list[float] | None  # the reference's raw samples in each run ([1.0]: as it is)
    current_samples: list[float] | None
    unit: str
    what: str


def _scale(pair: Pair, variant: str, rule: Rule, unit: str) -> _Scale | None:
    """The comparison scale of `variant`, or None when it cannot be compared (the reference on
    another machine; the reference's figure missing, which has a finding of its own)."""
    if variant == pair.reference:
        return _Scale(1.0, 1.0, [1.0], [1.0], unit, "absolute, same machine") if pair.same_machine else None
    refs = _both(pair, pair.reference, rule.metric, rule.figure)
    if refs is None:
        return None
    base_r, cur_r = refs
    return _Scale(base_r.figures[rule.figure].value, cur_r.figures[rule.figure].value,
                  raw_samples(base_r.samples, rule.samples), raw_samples(cur_r.samples, rule.samples),
                  "x", f"ratio to {pair.reference}")


def _change_interval(cfg: GateConfig, quantile: float, absolute: bool, samples: tuple[list[float], list[float]],
                     ref_samples: tuple[list[float], list[float]]) -> tuple[float, float, float]:
    """(change, low, high): the bootstrap interval of the change of a timing quantile, as it is or as
    a ratio of ratios to the reference."""
    (base_s, cur_s), (base_ref_s, cur_ref_s) = samples, ref_samples
    if absolute and quantile == 50:
        return bootstrap_ratio_ci(base_s, cur_s, cfg.confidence, cfg.resamples, cfg.seed)
    if absolute:
        return quantile_ratio_ci(cur_s, base_s, quantile, cfg.confidence, cfg.resamples, cfg.seed)
    return ratio_of_ratios_ci(cur_s, cur_ref_s, base_s, base_ref_s, quantile, cfg.confidence, cfg.resamples, cfg.seed)


def check_memory(pair: Pair, variant: str, rule: Rule) -> Finding | None:
    """Peak memory: growth of the ratio to the reference beyond the floor, treated as deterministic-ish.

    A few fresh processes (default 3) are too few for a significance test, but the kernel's
    high-water mark barely varies between them. So: regression when the growth of the medians
    exceeds the floor and every current sample (normalised by the reference's median in its run)
    exceeds every baseline sample; inconclusive when the growth exceeds the floor but the samples
    overlap. Without raw samples the figure values are compared directly.

    `peak_rss_bytes` counts the mapped libraries' file-backed pages, whose resident number follows
    the kernel's page cache (the same files read 484 or 581 MB: reports/evidence/memory/
    page-cache.md). Where both runs recorded the split, that rule stands aside and
    `peak_rss_less_file_bytes` (the peak less the file-backed pages) is judged the same way.
    """
    both = _both(pair, variant, rule.metric, rule.figure)
    if both is None or rule.threshold is None:
        return None
    stand_in = STAND_INS.get(rule.figure)
    if (stand_in and any(r.figure == stand_in for r in pair.config.rules_for(variant))
            and all(_both(pair, v, rule.metric, stand_in) for v in {variant, pair.reference})):
        return None  # judged on its stand-in (the peak less its file-backed pages)
    floor = rule.threshold
    base_m, cur_m = both
    figs = base_m.figures[rule.figure], cur_m.figures[rule.figure]
    base_s, cur_s = raw_samples(base_m.samples, rule.samples), raw_samples(cur_m.samples, rule.samples)
    scale = _scale(pair, variant, rule, figs[1].unit)
    if scale is None:
        return None
    base_d, cur_d, unit, what = scale.base, scale.current, scale.unit, scale.what
    b_fig, c_fig = figs[0].value, figs[1].value
    if base_d <= 0 or cur_d <= 0 or b_fig <= 0:
        return Finding("note", variant, rule.metric, rule.figure, message="a zero value; ratio not comparable")
    b, c = b_fig / base_d, c_fig / cur_d
    change = c / b
    common: dict[str, Any] = dict(baseline=b, current=c, unit=unit, change=pct(change - 1),
                                  threshold=f"{pct(floor)} floor")
    if not (base_s and cur_s):
        kind = "regression" if change - 1 > floor else "improvement" if 1 - change > floor else None
        if kind is None:
            return None
        return Finding(kind, variant, rule.metric, rule.figure, confidence="figures only (no raw samples)",
                       message=what, **common)
    bn, cn = [x / base_d for x in base_s], [x / cur_d for x in cur_s]
    ranges = [f"{fmt(min(x), unit)}–{fmt(max(x), unit)}" for x in (bn, cn)]
    confidence = f"n={len(bn)}→{len(cn)}, ranges {ranges[0]} → {ranges[1]}"
    if change - 1 > floor:
        separated = min(cn) > max(bn)
        kind = "regression" if separated else "inconclusive"
        msg = what if separated else f"{what}; samples of the two runs overlap: re-run with more --memory-samples"
        return Finding(kind, variant, rule.metric, rule.figure, confidence=confidence, message=msg, **common)
    if 1 - change > floor and max(cn) < min(bn):
        return Finding("improvement", variant, rule.metric, rule.figure, confidence=confidence,
                       message=f"{what}; consider promoting a new baseline", **common)
    return None


def check_budget(pair: Pair, budget: Budget) -> Finding | None:
    """An absolute SLO on the current run (e.g. p90_s_max = 0.002), or a ratio to the reference in it.

    Budgets hold wherever the suite runs, so they are checked whatever machine the baseline is from.
    """
    cur = pair.current.get(budget.variant, budget.metric)
    label = f"{budget.key} = {budget.limit:g}"
    if cur is None or not cur.ok or budget.figure not in cur.figures:
        return Finding("missing", budget.variant, budget.metric, budget.figure,
                       message=f"budget {label} cannot be checked: no such figure in the current results")
    fig = cur.figures[budget.figure]
    value, unit = fig.value, fig.unit
    if budget.relative:
        ref = pair.current.get(pair.reference, budget.metric)
        if ref is None or not ref.ok or not ref.figures.get(budget.figure, Figure(0.0, "", 0)).value:
            return Finding("missing", budget.variant, budget.metric, budget.figure,
                           message=f"budget {label} cannot be checked: {pair.reference} has no {budget.figure}")
        value, unit = value / ref.figures[budget.figure].value, "x"
    violated = value > budget.limit if budget.bound == "max" else value < budget.limit
    if not violated:
        return None
    sign = "≤" if budget.bound == "max" else "≥"
    limit = fmt(budget.limit, unit)
    what = f"ratio to {pair.reference}" if budget.relative else "absolute SLO"
    return Finding("budget", budget.variant, budget.metric, budget.figure, current=value, unit=unit,
                   threshold=f"{sign} {limit}", confidence=f"point estimate (n={fig.n})",
                   message=f"{what}, budget {budget.key}")


def check_new_variant(pair: Pair, variant: str) -> Finding | None:
    if variant in pair.baseline.variants:
        return None
    return Finding("note", variant, "variant", message="not in the baseline: only its budgets are checked")


def check_config_variant(pair: Pair, variant: str) -> Finding | None:
    if variant in pair.baseline.variants or variant in pair.current.variants:
        return None
    return Finding("note", variant, "config",
                   message=f"{pair.config.source} names a variant that is in neither run (a typo?)")


COMPARE: dict[str, Callable[[Pair, str, Rule], Finding | None]] = {
    "deterministic": check_deterministic,
    "accuracy": check_accuracy,
    "timing": check_timing,
    "memory": check_memory,
}


def group_rules(pair: Pair, variant: str, rule: Rule) -> list[Rule]:
    """A multi-label run's per-group accuracies (`accuracy:GROUP`, `labels.group_figure`), judged by
    the accuracy rule's tolerance, as the accuracy (their exact match) is: one rule per group the
    baseline measured."""
    if rule.figure != "accuracy" or rule.threshold is None:
        return []
    m = pair.baseline.get(variant, "accuracy")
    if m is None:
        return []
    return [replace(rule, figure=name) for name in m.figures
            if (parts := split_group_figure(name))[0] == "accuracy" and parts[1] is not None]


def checks_for(pair: Pair) -> list[Callable[[], Finding | None]]:
    """Every check this pair of runs calls for, in report order."""
    checks: list[Callable[[], Finding | None]] = [partial(check_machine, pair)]
    for variant in pair.baseline.variants:
        checks.append(partial(check_variant_present, pair, variant))
        metrics = list(dict.fromkeys(m.metric for m in pair.baseline.measurements if m.variant == variant))
        for metric in metrics:
            checks.append(partial(check_baseline_usable, pair, variant, metric))
            checks.append(partial(check_measurement_present, pair, variant, metric))
        for rule in pair.config.rules_for(variant):
            if rule.metric not in metrics:
                continue
            checks.append(partial(check_figure_present, pair, variant, rule))
            checks.append(partial(COMPARE[rule.kind], pair, variant, rule))
            for group_rule in group_rules(pair, variant, rule):
                checks.append(partial(check_figure_present, pair, variant, group_rule))
                checks.append(partial(check_accuracy, pair, variant, group_rule))
    for variant in pair.current.variants:
        checks.append(partial(check_new_variant, pair, variant))
    for budgets in pair.config.budgets.values():
        checks.extend(partial(check_budget, pair, b) for b in budgets)
    for variant in dict.fromkeys([*pair.config.variants, *pair.config.budgets]):
        checks.append(partial(check_config_variant, pair, variant))
    return checks


TIMING_FIGURES = frozenset(r.figure for r in CATALOGUE if r.kind == "timing")


def _as_history(f: Finding) -> Finding:
    """A timing change between unpaired runs: recorded as history, never a failing verdict."""
    if f.figure not in TIMING_FIGURES or f.kind not in ("regression", "improvement", "inconclusive"):
        return f
    note = (f"was {f.kind}; unpaired runs (minutes or machines apart) are history, not a verdict: "
            "`slimbench compare` measures both sides interleaved")
    return replace(f, kind="history", message=f"{f.message}; {note}" if f.message else note)


def gate(baseline: Run, current: Run, config: GateConfig | None = None) -> GateResult:
    """Run every check of `current` against `baseline`; collect all findings, decide once."""
    pair = Pair(baseline=baseline, current=current, config=config or GateConfig())
    checks = checks_for(pair)
    findings = [f for check in checks if (f := check()) is not None]
    if pair.config.timings == "history":
        findings = [_as_history(f) for f in findings]
    return GateResult(findings=findings, checks=len(checks), baseline=baseline, current=current)


# --- comparability: the same model, dataset and test set, or no verdict ----------------------------

# Context keys that name what was measured on. `dataset` is recorded today; the others are read when a
# results file carries them (fingerprints of the data, the test split and the base checkpoint).
INPUT_KEYS = ("dataset", "dataset_fingerprint", "test_fingerprint", "labels", "base", "base_fingerprint")


class MismatchError(ResultsError):
    """The baseline and the current run were not measured on the same model and data."""


def run_inputs(run: Run) -> dict[str, str]:
    """What a run was measured on, as far as its results file says: key -> its value(s)."""
    out: dict[str, str] = {}
    for key in INPUT_KEYS:
        values = sorted({json.dumps(m.context[key], sort_keys=True) if not isinstance(m.context[key], str)
                         else m.context[key] for m in run.measurements if m.context.get(key) not in (None, "")})
        if values:
            out[key] = ", ".join(values)
    sizes = sorted({m.figures["accuracy"].n for m in run.measurements
                    if m.ok and m.metric == "accuracy" and "accuracy" in m.figures})
    if sizes:
        out["test examples"] = ", ".join(map(str, sizes))
    return out


def input_mismatches(baseline: Run, current: Run) -> list[str]:
    """Each way the two runs' models or data differ, e.g. "dataset: movie-snippets vs synthetic"."""
    b, c = run_inputs(baseline), run_inputs(current)
    return [f"{key}: {b[key]} vs {c[key]}" for key in b if key in c and b[key] != c[key]]


def check_comparable(baseline: Run, current: Run, allow_mismatch: bool = False) -> str | None:
    """Refuse (MismatchError) runs of another model, dataset or test set unless `allow_mismatch`;
    then return the differences as a note to show beside the verdict."""
    diffs = input_mismatches(baseline, current)
    if not diffs:
        return None
    text = "; ".join(diffs)
    if not allow_mismatch:
        raise MismatchError(f"baseline {baseline.source} and {current.source} were not measured on the same model "
                            f"and data ({text}); their comparison would mean nothing -- promote a baseline from a "
                            "matching run, or pass --allow-mismatch to compare anyway")
    return f"compared although measured on different inputs ({text}): --allow-mismatch"
