"""The gate's rules as data: which figures are gated, how, with what default thresholds, and how
`[tool.slimbench.gate]` in pyproject.toml overrides them. Plus the statistics only the gate needs.

Every default threshold lives in `CATALOGUE` below, so tuning them (e.g. from A/A runs) is a
one-line change. A threshold means, by rule kind:

- ``deterministic`` (size, parameter count): the relative growth allowed against the baseline
  (0.01 = +1 %). Machine-independent, so compared across machines too.
- ``accuracy`` (accuracy, macro-F1 on the fixed test split): the absolute drop allowed, in ratio
  units (0.005 = 0.5 points). Deterministic given the artifact; compared across machines.
- ``timing`` (latency, throughput batch time, load): the effect-size floor on the relative growth
  of the variant's ratio to the reference variant measured in the same run. A change counts only
  when it exceeds the floor *and* is significant on the raw samples (see `gate.check_timing`).
- ``memory`` (peak RSS; peak RSS less its file-backed pages where both runs recorded them, see
  `gate.check_memory`): the relative growth floor of the ratio to the reference. Only ~3 fresh
  processes are sampled, too few for a test, but VmHWM is near-deterministic; so it is treated as a
  deterministic-ish figure: regression when the growth exceeds the floor and the normalised samples
  of the two runs do not overlap, inconclusive when they do.

A threshold of ``None`` (``false`` in TOML) switches the rule off.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from slimbench.errors import SlimbenchError
from slimbench.labels import split_group_figure
from slimbench.stats import bootstrap_quantiles

KINDS = ("deterministic", "accuracy", "timing", "memory")


class GateConfigError(SlimbenchError):
    """`[tool.slimbench.gate]` is malformed: an unknown key or a bad value."""


@dataclass(frozen=True)
class Rule:
    """How one figure of one metric is compared with the baseline."""

    figure: str
    metric: str
    kind: str
    threshold: float | None
    samples: str | None = None  # raw-samples key (or a derived one, see DERIVED_SAMPLES)
    quantile: float = 50.0  # the statistic of the samples that the figure is (50 = median)


# A figure judged in place of another where both runs have it (the other then stands aside,
# `gate.check_memory`), with the other's configured threshold unless it has its own: peak RSS less
# its file-backed pages, which the page cache cannot move, stands in for peak RSS.
STAND_INS = {"peak_rss_bytes": "peak_rss_less_file_bytes"}
_STANDS_IN_FOR = {v: k for k, v in STAND_INS.items()}

# The one place for default thresholds. Rules with threshold None are known (can be switched on in
# pyproject.toml or per variant) but off by default.
CATALOGUE: tuple[Rule, ...] = (
    Rule("total_bytes", "size", "deterministic", 0.01),
    Rule("weights_bytes", "size", "deterministic", 0.01),
    Rule("gzip_bytes", "size", "deterministic", 0.01),
    Rule("parameters", "size", "deterministic", 0.0),
    Rule("accuracy", "accuracy", "accuracy", 0.005),
    Rule("macro_f1", "accuracy", "accuracy", 0.005),
    Rule("agreement_with_standard", "accuracy", "accuracy", None),
    Rule("p50_s", "latency", "timing", 0.10, samples="latency_s", quantile=50),
    Rule("p90_s", "latency", "timing", 0.15, samples="latency_s", quantile=90),
    Rule("p99_s", "latency", "timing", None, samples="latency_s", quantile=99),
    Rule("batch_s", "throughput", "timing", 0.10, samples="batch_s"),
    Rule("start_to_first_prediction_s", "load", "timing", 0.15, samples="start_to_first_prediction_s"),
    Rule("import_s", "load", "timing", None, samples="import_s"),
    Rule("load_s", "load", "timing", None, samples="load_s"),
    Rule("first_predict_s", "load", "timing", None, samples="first_predict_s"),
    Rule("warm_reload_s", "load", "timing", None, samples="warm_reload_s"),
    # peak RSS less the file-backed pages (mapped libraries, whose resident count follows the page
    # cache: up to +20 % between runs of the same files) -- when both runs have it, `peak_rss_bytes`
    # defers to it; older results only have the latter
    Rule("peak_rss_less_file_bytes", "memory", "memory", 0.10, samples="peak_rss_less_file"),
    Rule("peak_rss_bytes", "memory", "memory", 0.10, samples="after_inference"),
    Rule("baseline_rss_bytes", "memory", "memory", None, samples="after_import"),
    Rule("load_increment_bytes", "memory", "memory", None, samples="load_increment_bytes"),
    Rule("inference_increment_bytes", "memory", "memory", None, samples="inference_increment_bytes"),
)
RULES: dict[str, Rule] = {r.figure: r for r in CATALOGUE}

# Every figure the suite records, by metric (see measure.py); budgets may name any of them.
FIGURES: dict[str, str] = {
    **{f: "size" for f in ("total_bytes", "weights_bytes", "gzip_bytes", "parameters", "sparsity")},
    **{f: "load" for f in ("interpreter_s", "import_s", "load_s", "first_predict_s",
                           "start_to_first_prediction_s", "warm_reload_s")},
    **{f: "memory" for f in ("baseline_rss_bytes", "load_increment_bytes", "inference_increment_bytes",
                             "peak_rss_bytes", "child_latency_p50_s")},
    **{f: "latency" for f in ("p50_s", "p90_s", "p99_s", "mean_s", "min_s", "iqr_s")},
    **{f: "throughput" for f in ("sentences_per_s", "batch_s", "batch_size")},
    **{f: "accuracy" for f in ("accuracy", "macro_f1", "agreement_with_standard", "only_standard_right",
                               "only_variant_right", "exact_match", "implicit_micro_f1")},
}
BUDGET_SUFFIXES = ("_ratio_max", "_ratio_min", "_max", "_min")


def _sum(*keys: str) -> Callable[[Mapping[str, list[float]]], list[float] | None]:
    def f(s: Mapping[str, list[float]]) -> list[float] | None:
        cols = [s.get(k) for k in keys]
        if any(c is None for c in cols) or len({len(c) for c in cols if c is not None}) != 1:
            return None
        return [float(sum(v)) for v in zip(*[c for c in cols if c is not None], strict=True)]
    return f


def _diff(later: str, earlier: str) -> Callable[[Mapping[str, list[float]]], list[float] | None]:
    def f(s: Mapping[str, list[float]]) -> list[float] | None:
        a, b = s.get(later), s.get(earlier)
        if a is None or b is None or len(a) != len(b):
            return None
        return [x - y for x, y in zip(a, b, strict=True)]
    return f


# Samples the suite does not store directly but that follow per process from those it does.
DERIVED_SAMPLES: dict[str, Callable[[Mapping[str, list[float]]], list[float] | None]] = {
    "start_to_first_prediction_s": _sum("interpreter_s", "import_s", "load_s", "first_predict_s"),
    "load_increment_bytes": _diff("after_load", "after_import"),
    "inference_increment_bytes": _diff("after_inference", "after_load"),
    "peak_rss_less_file": _diff("after_inference", "rss_file"),
}


def raw_samples(samples: Mapping[str, list[float]], key: str | None) -> list[float] | None:
    """The raw samples stored under `key`, or derived from the stored ones; None if unavailable."""
    if key is None:
        return None
    if key in samples and samples[key]:
        return list(samples[key])
    derive = DERIVED_SAMPLES.get(key)
    out = derive(samples) if derive else None
    return out or None


@dataclass(frozen=True)
class Budget:
    """An absolute SLO a user declared for one variant, e.g. `p90_s_max = 0.002`."""

    variant: str
    key: str
    figure: str
    bound: str  # "max" or "min"
    relative: bool  # True: a limit on the ratio to the reference variant in the same run
    limit: float

    @property
    def metric(self) -> str:
        return FIGURES[split_group_figure(self.figure)[0]]


@dataclass(frozen=True)
class GateConfig:
    """`[tool.slimbench.gate]`, validated once; built-in defaults where it says nothing."""

    reference: str = "standard"
    confidence: float = 0.95
    resamples: int = 2000
    seed: int = 0
    thresholds: Mapping[str, float | None] = field(default_factory=dict)
    variants: Mapping[str, Mapping[str, float | None]] = field(default_factory=dict)
    budgets: Mapping[str, Sequence[Budget]] = field(default_factory=dict)
    source: str = "built-in defaults"
    # "verdict": timing changes against the baseline fail the gate; "history": they are reported but
    # never fail it -- runs minutes or machines apart are not paired, `slimbench compare` is.
    timings: str = "verdict"

    @property
    def alpha(self) -> float:
        return 1.0 - self.confidence

    def rules_for(self, variant: str) -> list[Rule]:
        """The enabled rules for one variant: defaults, then the global table, then the variant's."""
        out = []
        overrides = self.variants.get(variant, {})
        for rule in CATALOGUE:
            threshold = rule.threshold
            names = [n for n in (_STANDS_IN_FOR.get(rule.figure), rule.figure) if n]  # a stand-in's own last
            for table in (self.thresholds, overrides):
                for name in names:
                    if name in table:
                        threshold = table[name]
            if threshold is not None:
                out.append(replace(rule, threshold=threshold))
        return out


TOP_KEYS = ("reference", "confidence", "resamples", "seed", "timings", "thresholds", "variants", "budgets")
TIMINGS = ("verdict", "history")


def _known(keys: Sequence[str]) -> str:
    return ", ".join(keys)


def _check_keys(table: Mapping[str, Any], known: Sequence[str], where: str) -> None:
    unknown = [k for k in table if k not in known]
    if unknown:
        raise GateConfigError(f"unknown key(s) {', '.join(map(repr, unknown))} in {where}; "
                              f"known keys: {_known(known)}")


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise GateConfigError(f"{where} must be a number, got {value!r}")
    return float(value)


def _thresholds(table: Any, where: str) -> dict[str, float | None]:
    if not isinstance(table, dict):
        raise GateConfigError(f"{where} must be a table, got {table!r}")
    _check_keys(table, list(RULES), where)
    out: dict[str, float | None] = {}
    for key, value in table.items():
        if value is False:
            out[key] = None
            continue
        number = _number(value, f"{where}.{key}")
        if number < 0:
            raise GateConfigError(f"{where}.{key} must be >= 0 (or false to switch the rule off), got {value!r}")
        out[key] = number
    return out


def _budget_figure(figure: str) -> bool:
    """A figure a budget may name: one the suite records, or a label group's accuracy figure ("accuracy:fuel")."""
    base, group = split_group_figure(figure)
    return figure in FIGURES if group is None else FIGURES.get(base) == "accuracy"


def parse_budget_key(variant: str, key: str, value: Any, where: str) -> Budget:
    """A Budget from `FIGURE_max`, `FIGURE_min`, `FIGURE_ratio_max` or `FIGURE_ratio_min`."""
    for suffix in BUDGET_SUFFIXES:
        figure = key[: -len(suffix)]
        if key.endswith(suffix) and _budget_figure(figure):
            return Budget(variant=variant, key=key, figure=figure, bound=suffix.rsplit("_", 1)[1],
                          relative="_ratio_" in suffix, limit=_number(value, f"{where}.{key}"))
    known = [f"{f}{s}" for f in FIGURES for s in ("_max", "_min")]
    raise GateConfigError(f"unknown budget {key!r} in {where}; a budget is FIGURE_max, FIGURE_min, "
                          f"FIGURE_ratio_max or FIGURE_ratio_min (ratio to the reference variant), e.g. "
                          f"total_bytes_max, accuracy_ratio_min; known keys: {_known(known)} (and their "
                          f"_ratio_ forms; on label groups also FIGURE:GROUP for the accuracy figures, e.g. "
                          f"\"accuracy:GROUP_min\")")


def parse_config(table: Mapping[str, Any], source: str = "<memory>") -> GateConfig:
    """A GateConfig from the `[tool.slimbench.gate]` table (already parsed TOML)."""
    where = "[tool.slimbench.gate]"
    if not isinstance(table, dict):
        raise GateConfigError(f"{where} in {source} must be a table, got {table!r}")
    _check_keys(table, TOP_KEYS, f"{where} of {source}")
    reference = table.get("reference", "standard")
    if not isinstance(reference, str) or not reference:
        raise GateConfigError(f"{where}.reference must be a variant name, got {reference!r}")
    confidence = _number(table.get("confidence", 0.95), f"{where}.confidence")
    if not 0.5 <= confidence < 1:
        raise GateConfigError(f"{where}.confidence must be in [0.5, 1), got {confidence!r}")
    resamples, seed = table.get("resamples", 2000), table.get("seed", 0)
    if isinstance(resamples, bool) or not isinstance(resamples, int) or resamples < 100:
        raise GateConfigError(f"{where}.resamples must be an integer >= 100, got {resamples!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise GateConfigError(f"{where}.seed must be an integer, got {seed!r}")
    timings = table.get("timings", "verdict")
    if timings not in TIMINGS:
        raise GateConfigError(f"{where}.timings must be one of {', '.join(map(repr, TIMINGS))}, got {timings!r}")
    thresholds = _thresholds(table.get("thresholds", {}), f"{where}.thresholds")
    variants_table = table.get("variants", {})
    if not isinstance(variants_table, dict):
        raise GateConfigError(f"{where}.variants must be a table of variant names, got {variants_table!r}")
    variants = {name: _thresholds(t, f"{where}.variants.{name}") for name, t in variants_table.items()}
    budgets_table = table.get("budgets", {})
    if not isinstance(budgets_table, dict):
        raise GateConfigError(f"{where}.budgets must be a table of variant names, got {budgets_table!r}")
    budgets: dict[str, list[Budget]] = {}
    for name, t in budgets_table.items():
        bw = f"{where}.budgets.{name}"
        if not isinstance(t, dict):
            raise GateConfigError(f"{bw} must be a table, got {t!r}")
        budgets[name] = [parse_budget_key(name, k, v, bw) for k, v in t.items()]
    return GateConfig(reference=reference, confidence=confidence, resamples=resamples, seed=seed,
                      thresholds=thresholds, variants=variants, budgets=budgets, source=source, timings=timings)


def load_config(path: Path | None = None) -> GateConfig:
    """The gate config from a pyproject.toml; built-in defaults if the default file or table is absent.

    An explicitly given path must exist; the default (./pyproject.toml) may be missing.
    """
    explicit = path is not None
    path = Path(path) if path is not None else Path("pyproject.toml")
    if not path.is_file():
        if explicit:
            raise GateConfigError(f"gate config file {path} does not exist")
        return GateConfig()
    try:
        doc = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise GateConfigError(f"cannot read gate config {path}: {err}") from None
    table = doc.get("tool", {}).get("slimbench", {}).get("gate")
    if table is None:
        return GateConfig(source=f"{path} (no [tool.slimbench.gate]; built-in defaults)")
    return parse_config(table, str(path))


# --- statistics the gate needs beyond stats.py ----------------------------------------------------

def ratio_of_ratios(cur: Sequence[float], cur_ref: Sequence[float], base: Sequence[float],
                    base_ref: Sequence[float], quantile: float = 50.0) -> float:
    """(q(cur)/q(cur_ref)) / (q(base)/q(base_ref)), q the `quantile` (0..100) of each sample."""
    q = [float(np.percentile(np.asarray(a, dtype=float), quantile)) for a in (cur, cur_ref, base, base_ref)]
    return (q[0] / q[1]) / (q[2] / q[3])


def ratio_of_ratios_ci(cur: Sequence[float], cur_ref: Sequence[float], base: Sequence[float],
                       base_ref: Sequence[float], quantile: float = 50.0, confidence: float = 0.95,
                       resamples: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """(q(cur)/q(cur_ref)) / (q(base)/q(base_ref)) and its percentile-bootstrap CI.

    q is the `quantile` (0..100) of each sample; the four samples are resampled independently, so
    the noise of the reference variant in both runs is part of the interval.
    """
    arrays = [np.asarray(x, dtype=float) for x in (cur, cur_ref, base, base_ref)]
    if any(a.size == 0 for a in arrays):
        raise ValueError("ratio_of_ratios_ci needs four non-empty samples")
    rng = np.random.default_rng(seed)
    # one sample at a time, in memory bounded whatever its size (stats.bootstrap_quantiles)
    c, cr, b, br = (bootstrap_quantiles(a, quantile, resamples, rng) for a in arrays)
    ratios = (c / cr) / (b / br)
    lo, hi = np.percentile(ratios, [(1 - confidence) / 2 * 100, (1 + confidence) / 2 * 100])
    return ratio_of_ratios(cur, cur_ref, base, base_ref, quantile), float(lo), float(hi)


def quantile_ratio_ci(cur: Sequence[float], base: Sequence[float], quantile: float = 50.0, confidence: float = 0.95,
                      resamples: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """q(cur)/q(base) and its percentile-bootstrap CI (the reference's own absolute change)."""
    one = [1.0]
    return ratio_of_ratios_ci(cur, one, base, one, quantile, confidence, resamples, seed)
