"""The numbers behind the report: rows per variant, ratios to `standard`, Pareto fronts, changes
against a baseline, and the records of the machine-readable summary.json.

Pure functions over `slimbench.results.Run`: no I/O, no plotting, no measuring, no model. Values stay
in the units the results carry (B, s, count, ratio, 1/s); only the renderers scale them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from slimbench.results import Figure, Measurement, ResultsError, Run

SUMMARY_SCHEMA = 1
STANDARD = "standard"
ACCURACY_TOLERANCE = 0.99  # "keeps 99 % of the reference's accuracy" (the MLPerf rule)
NOISY_SPREAD = 0.2  # latency IQR above 20 % of the median earns a noise warning
LOAD_PHASES = ("interpreter", "import", "load", "first_predict")
DASH = "–"


def fmt_sig(x: float, sig: int = 3) -> str:
    """x with `sig` significant digits, never in scientific notation (integers above 10^sig)."""
    if not math.isfinite(x):
        return DASH
    if x == 0:
        return "0"
    r = float(f"{x:.{sig - 1}e}")
    mag = math.floor(math.log10(abs(r)))
    if mag >= sig - 1:
        return f"{x:.0f}"
    return f"{r:.{sig - 1 - mag}f}"


@dataclass(frozen=True)
class Column:
    """A headline-table column: where its value comes from, how it is shown, which way is better."""

    key: str
    header: str
    metric: str  # results metric ("size", "latency", ...), or "ratio" for the × vs standard columns
    figure: str  # figure name within the metric (for ratios: the column the ratio is taken of)
    scale: float = 1.0  # results unit -> displayed unit
    better: str = "low"  # "low", "high", or "" (not ranked)
    kind: str = "sig"  # "sig": 3 significant digits, "pct": percent with 1 decimal, "n": the figure's sample
    # count, "int": the figure's value as a whole number
    short: str = ""  # header in the comparison table (no unit)


COLUMNS: tuple[Column, ...] = (
    Column("size", "size (MB)", "size", "total_bytes", 1e-6, short="size"),
    Column("gzip", "gzip (MB)", "size", "gzip_bytes", 1e-6, short="gzip"),
    Column("params", "params (M)", "size", "parameters", 1e-6, short="params"),
    Column("cold_load", "cold load (s)", "load", "start_to_first_prediction_s", short="cold load"),
    Column("first_pred", "1st pred. (ms)", "load", "first_predict_s", 1e3, short="1st pred."),
    Column("p50", "p50 (ms)", "latency", "p50_s", 1e3, short="p50"),
    Column("p90", "p90 (ms)", "latency", "p90_s", 1e3, short="p90"),
    Column("p99", "p99 (ms)", "latency", "p99_s", 1e3, short="p99"),
    Column("n", "n", "latency", "p50_s", better="", kind="n"),
    Column("throughput", "throughput (sent/s)", "throughput", "sentences_per_s", better="high", short="throughput"),
    Column("peak_rss", "peak RSS (MB)", "memory", "peak_rss_bytes", 1e-6, short="peak RSS"),
    Column("accuracy", "accuracy (%)", "accuracy", "accuracy", 100.0, "high", "pct", short="accuracy"),
    Column("macro_f1", "macro-F1 (%)", "accuracy", "macro_f1", 100.0, "high", "pct", short="macro-F1"),
    # what the variant never reads: its max length and the share of the test texts longer than that
    Column("max_length", "max length (tokens)", "accuracy", "max_length", better="", kind="int", short="max length"),
    Column("cut", "test texts cut (%)", "accuracy", "truncated_share", 100.0, "low", "pct", short="texts cut"),
)
RATIO_COLUMNS: tuple[Column, ...] = (
    Column("speedup", "speed-up ×", "ratio", "p50", better="high"),  # standard p50 / variant p50
    Column("size_ratio", "size ×", "ratio", "size"),  # variant / standard, here and below
    Column("memory_ratio", "memory ×", "ratio", "peak_rss"),
    Column("accuracy_ratio", "accuracy ×", "ratio", "accuracy", better="high"),
)
ALL_COLUMNS = COLUMNS + RATIO_COLUMNS
COLUMN = {c.key: c for c in ALL_COLUMNS}

# Columns of the comparison table; size, parameters and accuracy are deterministic ("exact").
COMPARE_COLUMNS = ("size", "gzip", "params", "cold_load", "first_pred", "p50", "p90", "p99", "throughput",
                   "peak_rss", "accuracy", "macro_f1")
EXACT_COLUMNS = frozenset({"size", "gzip", "params", "accuracy", "macro_f1"})
POINT_COLUMNS = frozenset({"accuracy", "macro_f1"})  # change in percentage points, not percent


# --- rows -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Cell:
    """One value of a row, in the results' unit; `state` says why there is no value."""

    value: float | None
    state: str = "ok"  # ok | missing | failed | untrained
    n: int | None = None

    @property
    def ok(self) -> bool:
        return self.state == "ok" and self.value is not None


MISSING_CELL = Cell(None, "missing")


@dataclass
class Row:
    """One variant of one run: a cell per column, and what failed."""

    variant: str
    cells: dict[str, Cell]
    failures: dict[str, str] = field(default_factory=dict)  # metric -> error
    untrained: bool = False
    accuracy_vs_standard: PairedAccuracy | None = None  # the accuracy ratio's paired interval

    @property
    def failed(self) -> bool:
        """Every measurement of the variant failed (e.g. it could not be built or loaded)."""
        return bool(self.failures) and not any(c.ok for k, c in self.cells.items() if COLUMN[k].metric != "ratio")

    def value(self, key: str) -> float | None:
        cell = self.cells.get(key, MISSING_CELL)
        return cell.value if cell.ok else None


def _cell(run: Run, variant: str, column: Column, untrained: bool) -> Cell:
    m = run.get(variant, column.metric)
    if m is None:
        return MISSING_CELL
    if not m.ok:
        return Cell(None, "failed")
    fig = m.figures.get(column.figure)
    if fig is None:
        return MISSING_CELL
    if untrained and column.metric == "accuracy" and column.kind != "int":
        return Cell(None, "untrained", fig.n)
    if column.kind == "n":
        return Cell(float(fig.n), n=fig.n)
    return Cell(fig.value, n=fig.n)


def _ratio(row: Row, standard: Row | None, column: Column) -> Cell:
    source = column.figure
    if row.untrained and source == "accuracy":
        return Cell(None, "untrained")
    if standard is None:
        return MISSING_CELL
    mine, ref = row.value(source), standard.value(source)
    if mine is None or ref is None or mine == 0 or ref == 0:
        return MISSING_CELL
    return Cell(ref / mine if column.key == "speedup" else mine / ref)


def build_rows(run: Run) -> list[Row]:
    """One row per variant of the run, in the order the run measured them."""
    rows: list[Row] = []
    for variant in run.variants:
        ms = [m for m in run.measurements if m.variant == variant]
        untrained = any(bool(m.context.get("untrained")) for m in ms)
        failures: dict[str, str] = {}
        for m in ms:
            if not m.ok and m.metric not in failures:
                failures[m.metric] = m.error or "failed (no error recorded)"
        cells = {c.key: _cell(run, variant, c, untrained) for c in COLUMNS}
        rows.append(Row(variant, cells, failures, untrained))
    standard = next((r for r in rows if r.variant == STANDARD), None)
    for row in rows:
        for c in RATIO_COLUMNS:
            row.cells[c.key] = _ratio(row, standard, c)
        paired = paired_ratios(run, row.variant).get("p50_ratio")
        if paired is not None and paired.value > 0 and row.cells["speedup"].state == "ok":
            row.cells["speedup"] = Cell(1 / paired.value, n=paired.n)  # from rounds paired in time
        row.accuracy_vs_standard = paired_accuracy(run, row.variant)
    return rows


PAIRED_FIGURES = (("latency", "p50_ratio"), ("latency", "p90_ratio"), ("throughput", "batch_ratio"))


def paired_ratios(run: Run, variant: str) -> dict[str, Figure]:
    """The variant's ratios to `standard` computed from interleaved rounds, with their CIs."""
    out: dict[str, Figure] = {}
    for metric, name in PAIRED_FIGURES:
        m = run.get(variant, metric)
        if m is not None and m.ok and name in m.figures:
            out[name] = m.figures[name]
    return out


@dataclass(frozen=True)
class PairedAccuracy:
    """A variant's accuracy ÷ standard's on the same test sentences, with a 95 % bootstrap CI over
    sentences, and the sentences only one of the two gets right."""

    ratio: float
    low: float
    high: float
    only_standard: int
    only_variant: int
    n: int


def paired_accuracy(run: Run, variant: str) -> PairedAccuracy | None:
    """From the run's accuracy measurements (None for standard itself, an untrained variant, or a
    results file from before the paired counts were recorded)."""
    from slimbench.stats import paired_accuracy_ratio_ci

    mine, ref = run.get(variant, "accuracy"), run.get(STANDARD, "accuracy")
    if variant == STANDARD or mine is None or ref is None or not (mine.ok and ref.ok):
        return None
    if mine.context.get("untrained"):
        return None
    f, r = mine.figures, ref.figures
    if not {"only_standard_right", "only_variant_right", "accuracy"} <= f.keys() or "accuracy" not in r:
        return None
    n = f["accuracy"].n
    if r["accuracy"].n != n:
        return None
    only_s, only_v = int(f["only_standard_right"].value), int(f["only_variant_right"].value)
    try:
        ratio, lo, hi = paired_accuracy_ratio_ci(n, round(r["accuracy"].value * n), only_s, only_v)
    except ValueError:
        return None
    return PairedAccuracy(ratio, lo, hi, only_s, only_v, n)


# --- which variant to ship ---------------------------------------------------------------------

@dataclass(frozen=True)
class Point:
    """A variant that can be compared: accuracy (ratio), p50 latency (s), size on disk (B)."""

    variant: str
    accuracy: float
    latency_s: float
    size_bytes: float


def _dominates(a: Point, b: Point, axes: Sequence[str]) -> bool:
    """a is at least as good as b on every axis and better on one (accuracy up, the rest down)."""
    def key(p: Point, axis: str) -> float:
        return -p.accuracy if axis == "accuracy" else getattr(p, axis)

    pairs = [(key(a, ax), key(b, ax)) for ax in axes]
    return all(x <= y for x, y in pairs) and any(x < y for x, y in pairs)


def pareto_front(points: Sequence[Point], cost: str) -> list[Point]:
    """The points no other point beats on both accuracy and `cost` ("latency_s" or "size_bytes")."""
    front = [p for p in points if not any(_dominates(q, p, ("accuracy", cost)) for q in points)]
    return sorted(front, key=lambda p: (getattr(p, cost), -p.accuracy, p.variant))


def dominated(points: Sequence[Point]) -> dict[str, list[str]]:
    """Variant -> the variants at least as accurate, as fast and as small (better in one)."""
    out: dict[str, list[str]] = {}
    for p in points:
        by = [q.variant for q in points if _dominates(q, p, ("accuracy", "latency_s", "size_bytes"))]
        if by:
            out[p.variant] = by
    return out


@dataclass
class ShipAdvice:
    """The "which variant should I ship?" analysis of one run."""

    points: list[Point]
    excluded: dict[str, str]  # variant -> why it is left out
    latency_front: list[Point]
    size_front: list[Point]
    dominated: dict[str, list[str]]
    reference: Point | None = None  # the standard variant, if it can be compared
    threshold: float | None = None  # accuracy a variant must keep (ratio)
    fastest: Point | None = None  # fastest / smallest variant keeping the threshold
    smallest: Point | None = None


def ship_advice(rows: Sequence[Row], tolerance: float = ACCURACY_TOLERANCE) -> ShipAdvice:
    """Pareto fronts and dominated variants from accuracy, p50 latency and size on disk."""
    points: list[Point] = []
    excluded: dict[str, str] = {}
    for row in rows:
        if row.failures:
            excluded[row.variant] = "failed" if row.failed else "failed: " + ", ".join(row.failures)
            continue
        if row.untrained:
            excluded[row.variant] = "untrained"
            continue
        acc, lat, size = row.value("accuracy"), row.value("p50"), row.value("size")
        if acc is None or lat is None or size is None:
            missing = [k for k, v in (("accuracy", acc), ("latency", lat), ("size", size)) if v is None]
            excluded[row.variant] = "not measured: " + ", ".join(missing)
            continue
        points.append(Point(row.variant, acc, lat, size))
    advice = ShipAdvice(points, excluded, pareto_front(points, "latency_s"), pareto_front(points, "size_bytes"),
                        dominated(points))
    reference = next((p for p in points if p.variant == STANDARD), None)
    if reference is not None:
        advice.reference = reference
        advice.threshold = reference.accuracy * tolerance
        keep = [p for p in points if p.accuracy >= advice.threshold]
        advice.fastest = min(keep, key=lambda p: (p.latency_s, -p.accuracy))
        advice.smallest = min(keep, key=lambda p: (p.size_bytes, -p.accuracy))
    return advice


# --- the verdict: the report's first lines --------------------------------------------------------

@dataclass(frozen=True)
class Pick:
    """One variant the verdict names, with what it gains and loses against `standard` in the same run."""

    variant: str
    role: str  # ship | smallest-in-budget | fastest | smallest | fastest-and-smallest
    speedup: float | None  # standard p50 / variant p50 (paired where the run has rounds)
    size_x: float | None  # standard size / variant size: "N× smaller"
    memory_x: float | None  # standard peak RSS / variant peak RSS: "N× less peak memory"
    p50_s: float | None
    ref_p50_s: float | None
    size_bytes: float | None
    ref_size_bytes: float | None
    accuracy: float | None
    ref_accuracy: float | None
    points_ci: tuple[float, float] | None  # accuracy change in percentage points, 95 % CI
    within_budget: bool

    @property
    def points(self) -> float | None:
        """Accuracy change against `standard`, in percentage points."""
        if self.accuracy is None or self.ref_accuracy is None:
            return None
        return (self.accuracy - self.ref_accuracy) * 100


@dataclass
class Verdict:
    """Which variant to ship from one run, computed by `ship_advice`; rendered first in REPORT.md and
    written to summary.json."""

    machine: str
    label: str
    tolerance: float
    threshold: float | None  # accuracy a variant must keep (absolute), None without a standard
    ship: Pick | None
    others: list[Pick]
    not_worth_it: list[str]
    excluded: dict[str, str]
    noise: str
    lines: list[str]  # the Markdown lines, as the report prints them


def _pick(rows: Sequence[Row], variant: str, role: str, advice: ShipAdvice) -> Pick:
    row = next(r for r in rows if r.variant == variant)
    ref = next((r for r in rows if r.variant == STANDARD), None)

    def inverse(key: str) -> float | None:
        mine, theirs = row.value(key), ref.value(key) if ref is not None else None
        return theirs / mine if mine and theirs else None

    speedup = row.value("speedup")
    pa = row.accuracy_vs_standard
    ref_acc = ref.value("accuracy") if ref is not None else None
    ci = None
    if pa is not None and ref_acc is not None:
        ci = ((pa.low - 1) * ref_acc * 100, (pa.high - 1) * ref_acc * 100)
    acc = row.value("accuracy")
    within = advice.threshold is not None and acc is not None and acc >= advice.threshold
    return Pick(variant, role, speedup, inverse("size"), inverse("peak_rss"), row.value("p50"),
                ref.value("p50") if ref is not None else None, row.value("size"),
                ref.value("size") if ref is not None else None, acc, ref_acc, ci, within)


def _times(x: float, better: str, worse: str, same: str) -> str:
    """"3.94× faster", "1.2× slower", or `same` within half a percent."""
    if abs(x - 1) < 0.005:
        return same
    return f"{fmt_sig(x)}× {better}" if x > 1 else f"{fmt_sig(1 / x)}× {worse}"


def _signed(points: float) -> str:
    return "±0.0" if round(points, 1) == 0 else f"{points:+.1f}".replace("-", "−")


def _gains(p: Pick, detail: bool) -> str:
    """"3.94× faster (p50 3.90 vs 15.4 ms), 3.89× smaller (…), …, −0.7 accuracy points [95 % CI −1.8, +0.4]"."""
    parts = []
    if p.speedup is not None:
        parts.append(_times(p.speedup, "faster", "slower", "as fast")
                     + (f" (p50 {fmt_sig(p.p50_s * 1e3)} vs {fmt_sig(p.ref_p50_s * 1e3)} ms)"
                        if detail and p.p50_s and p.ref_p50_s else ""))
    if p.size_x is not None:
        parts.append(_times(p.size_x, "smaller", "larger", "the same size")
                     + (f" ({fmt_sig(p.size_bytes / 1e6)} vs {fmt_sig(p.ref_size_bytes / 1e6)} MB)"
                        if detail and p.size_bytes and p.ref_size_bytes else ""))
    if p.memory_x is not None:
        parts.append(_times(p.memory_x, "less peak memory", "more peak memory", "the same peak memory"))
    if p.points is not None:
        text = f"{_signed(p.points)} accuracy points"
        if p.points_ci is not None:
            text += f" [95 % CI {_signed(p.points_ci[0])}, {_signed(p.points_ci[1])}]"
        if detail and p.accuracy is not None and p.ref_accuracy is not None:
            text += f" ({p.accuracy * 100:.1f} vs {p.ref_accuracy * 100:.1f} %)"
        parts.append(text)
    return ", ".join(parts)


def noise_line(run: Run) -> str:
    """One sentence on the run's noise: the paired ratios' intervals where the run has them, else the
    latency spread. Replaces a warning per row."""
    ratios = [(m.variant, f) for m in run.measurements if m.metric == "latency" and m.ok
              and (f := m.figures.get("p50_ratio")) is not None and f.relative_half_width is not None]
    ns = [m.figures["p50_s"].n for m in run.measurements if m.metric == "latency" and m.ok and "p50_s" in m.figures]
    samples = f"; {min(ns):,}–{max(ns):,} batch-1 samples per variant" if ns and min(ns) != max(ns) else (
        f"; {ns[0]:,} batch-1 samples per variant" if ns else "")
    if ratios:
        widths = sorted(((f.relative_half_width or 0.0), v) for v, f in ratios)
        rounds = sorted({f.n for _, f in ratios})
        span = f"{rounds[0]}" if len(rounds) == 1 else f"{rounds[0]}–{rounds[-1]}"
        lo, (hi, widest) = widths[0][0], widths[-1]
        return (f"**Noise**: speed-ups are paired over {span} interleaved rounds; their 95 % intervals are "
                f"±{lo * 100:.1f}–{hi * 100:.1f} % (widest: `{widest}`){samples}. Differences inside an interval are not "
                "findings; `slimbench compare` judges a change.")
    spread = noisy_latencies(run, 0.0)
    if not spread:
        return ""
    values = sorted(s for _, s, _ in spread)
    return (f"**Noise**: this run has no paired rounds; a variant's latency IQR is {values[0] * 100:.0f}–{values[-1] * 100:.0f} % "
            f"of its median{samples} (sentence lengths and the machine's noise together). Compare rows as "
            "ratios; `slimbench compare` judges a change.")


def ship_verdict(report: MachineReport, tolerance: float = ACCURACY_TOLERANCE) -> Verdict:
    """The verdict of one machine's run: the fastest variant keeping `tolerance` of `standard`'s accuracy
    (the Pareto/budget logic of `ship_advice`), the smallest and fastest overall, the dominated ones."""
    rows = report.rows
    advice = ship_advice(rows, tolerance)
    picks: list[Pick] = []
    lines: list[str] = []
    budget = (f"≥ {tolerance * 100:.0f} % of `{STANDARD}`'s accuracy, ≥ {advice.threshold * 100:.1f} %"
              if advice.threshold is not None else "")
    ship = None
    if advice.reference is not None and advice.fastest is not None:
        ship = _pick(rows, advice.fastest.variant, "ship", advice)
        if ship.variant == STANDARD:
            lines.append(f"**Keep `{STANDARD}`**: no variant is faster while keeping its accuracy budget ({budget}).")
        else:
            lines.append(f"**Ship `{ship.variant}`**: {_gains(ship, True)} against `{STANDARD}`; the fastest variant "
                         f"within the accuracy budget ({budget}).")
        if advice.smallest is not None and advice.smallest.variant not in (ship.variant, STANDARD):
            picks.append(_pick(rows, advice.smallest.variant, "smallest-in-budget", advice))
    elif advice.points:
        lines.append(f"**No verdict**: this run has no comparable `{STANDARD}` variant, so no accuracy budget "
                     "applies; the fronts below rank the variants by accuracy against latency and size.")
    else:
        lines.append("**No verdict**: no variant has accuracy, latency and size all measured.")
    if advice.points:
        fastest, smallest = advice.latency_front[0].variant, advice.size_front[0].variant
        named = {p.variant for p in picks} | ({ship.variant} if ship else set())
        if fastest == smallest and fastest not in named:
            picks.append(_pick(rows, fastest, "fastest-and-smallest", advice))
        else:
            picks.extend(_pick(rows, v, role, advice) for v, role in ((fastest, "fastest"), (smallest, "smallest"))
                         if v not in named)
    title = {"smallest-in-budget": "Smallest within the budget", "fastest": "Fastest overall",
             "smallest": "Smallest overall", "fastest-and-smallest": "Fastest and smallest overall"}
    for p in picks:
        gains = _gains(p, False) if advice.reference is not None else ""
        budget_note = "" if p.within_budget or advice.threshold is None else ", below the accuracy budget"
        lines.append(f"- **{title[p.role]}**: `{p.variant}`" + (f", {gains}" if gains else "") + budget_note + ".")
    not_worth = list(advice.dominated)
    if not_worth:
        def beaten_by(v: str) -> str:  # name one winner, preferably one nothing beats in turn
            by = advice.dominated[v]
            return next((b for b in by if b not in advice.dominated), by[0])

        lines.append("- **Not worth it here** (another variant is at least as accurate, as fast and as small): "
                     + ", ".join(f"`{v}` (beaten by `{beaten_by(v)}`)" for v in not_worth) + ".")
    noise = noise_line(report.run)
    if noise:
        lines.append(f"- {noise}")
    return Verdict(report.machine_id, report.label, tolerance, advice.threshold, ship, picks, not_worth,
                   advice.excluded, noise, lines)


def verdict_record(verdict: Verdict) -> dict[str, Any]:
    """The verdict as summary.json carries it: the same sentences and the numbers behind them."""
    def pick(p: Pick | None) -> dict[str, Any] | None:
        if p is None:
            return None
        return {"variant": p.variant, "role": p.role, "speedup": p.speedup, "smaller_x": p.size_x,
                "less_memory_x": p.memory_x, "accuracy": p.accuracy, "accuracy_points": p.points,
                "accuracy_points_ci95": list(p.points_ci) if p.points_ci else None,
                "within_budget": p.within_budget}

    return {"machine": verdict.machine, "label": verdict.label, "accuracy_budget": verdict.tolerance,
            "accuracy_threshold": verdict.threshold, "ship": pick(verdict.ship),
            "also": [pick(p) for p in verdict.others], "not_worth_it": verdict.not_worth_it,
            "excluded": verdict.excluded, "text": "\n".join(verdict.lines)}


# --- noise ------------------------------------------------------------------------------------

def latency_spread(run: Run, variant: str) -> tuple[float, int] | None:
    """(IQR / median, n) of a variant's latency: from the raw samples, else from the figures."""
    m = run.get(variant, "latency")
    if m is None or not m.ok:
        return None
    samples = m.samples.get("latency_s") or []
    if len(samples) > 1:
        from slimbench.stats import relative_spread

        return relative_spread(samples), len(samples)
    p50, iqr = m.figures.get("p50_s"), m.figures.get("iqr_s")
    if p50 is None or iqr is None or not p50.value:
        return None
    return iqr.value / p50.value, p50.n


def noisy_latencies(run: Run, threshold: float = NOISY_SPREAD) -> list[tuple[str, float, int]]:
    """(variant, relative spread, n) for each latency whose IQR exceeds `threshold` of its median."""
    out = []
    for variant in run.variants:
        spread = latency_spread(run, variant)
        if spread is not None and spread[0] > threshold:
            out.append((variant, spread[0], spread[1]))
    return out


# --- comparison with a baseline ------------------------------------------------------------------

@dataclass(frozen=True)
class Change:
    """One metric of one variant against the baseline."""

    before: float | None
    after: float | None
    delta: float | None  # relative (after / before - 1), or absolute for accuracy-like columns
    verdict: str  # better | worse | same | noise | unknown | failed | missing | untrained
    method: str = "none"  # exact | mann-whitney | ranges | none
    p: float | None = None


@dataclass
class VariantChanges:
    variant: str
    status: str  # both | new (not in the baseline) | gone (not in this run)
    changes: dict[str, Change] = field(default_factory=dict)


# The gate figure that judges each comparison column (throughput is judged on its batch times).
GATE_FIGURE = {"size": "total_bytes", "gzip": "gzip_bytes", "params": "parameters",
               "cold_load": "start_to_first_prediction_s", "first_pred": "first_predict_s", "p50": "p50_s",
               "p90": "p90_s", "p99": "p99_s", "throughput": "batch_s", "peak_rss": "peak_rss_bytes",
               "accuracy": "accuracy", "macro_f1": "macro_f1"}
KIND_VERDICT = {"regression": "worse", "improvement": "better", "inconclusive": "noise", "history": "noise"}


def compare_measurements(key: str, before: Measurement | None, after: Measurement | None,
                         untrained: bool = False) -> Change:
    """The values of one column in both runs and the raw change; the verdict comes from the gate."""
    column = COLUMN[key]
    if after is not None and not after.ok:
        return Change(None, None, None, "failed")
    if before is None or after is None or not before.ok:
        return Change(None, None, None, "missing")
    fb, fa = before.figures.get(column.figure), after.figures.get(column.figure)
    if fb is None or fa is None:
        return Change(None, None, None, "missing")
    if untrained and column.metric == "accuracy" and column.kind != "int":
        return Change(fb.value, fa.value, None, "untrained")
    b, a = fb.value, fa.value
    delta: float | None = a - b if key in POINT_COLUMNS else (a / b - 1 if b else None)
    return Change(b, a, delta, "same" if a == b else "unknown", "exact" if key in EXACT_COLUMNS else "none")


def compare_runs(current: Run, baseline: Run, config: Any = None) -> list[VariantChanges]:
    """Every comparison column of every variant, judged by the gate on the same two runs (one judge:
    the report's ✓/✗ and `slimbench gate`'s verdict cannot disagree); this run's variants first,
    then those it lost."""
    from slimbench.gate import GateConfig, gate
    from slimbench.gate_rules import STAND_INS

    cfg = config or GateConfig()
    judged = {(f.variant, f.figure): f for f in gate(baseline, current, cfg).findings if f.figure}
    out: list[VariantChanges] = []
    base_variants = set(baseline.variants)
    for variant in current.variants:
        if variant not in base_variants:
            out.append(VariantChanges(variant, "new"))
            continue
        untrained = any(bool(m.context.get("untrained")) for m in current.measurements if m.variant == variant)
        gated = {r.figure for r in cfg.rules_for(variant)}
        changes = {}
        for key in COMPARE_COLUMNS:
            c = compare_measurements(key, baseline.get(variant, COLUMN[key].metric),
                                     current.get(variant, COLUMN[key].metric), untrained)
            if c.verdict in ("same", "unknown"):
                # the gate's verdict on the figure that stands in for this one where it judged that
                f = judged.get((variant, STAND_INS.get(GATE_FIGURE[key], ""))) or judged.get((variant, GATE_FIGURE[key]))
                if f is not None and f.kind in KIND_VERDICT:
                    c = replace(c, verdict=KIND_VERDICT[f.kind], method=f.kind, p=f.p_value)
                elif GATE_FIGURE[key] in gated and c.verdict == "unknown":
                    c = replace(c, verdict="noise", method="within the gate's threshold")
            changes[key] = c
        out.append(VariantChanges(variant, "both", changes))
    out.extend(VariantChanges(v, "gone") for v in baseline.variants if v not in current.variants)
    return out


# --- summary.json ---------------------------------------------------------------------------------

def _spread(m: Measurement, name: str) -> tuple[float | None, float | None, float | None]:
    fig = m.figures[name]
    if fig.iqr is not None or m.metric != "latency" or len(m.samples.get("latency_s") or []) < 2:
        return fig.min, fig.max, fig.iqr
    from slimbench.stats import summarize

    s = summarize(m.samples["latency_s"])  # a latency percentile's spread is its samples'
    return s.min, s.max, s.iqr


def summary_records(run: Run) -> list[dict[str, Any]]:
    """One record per variant × metric figure (value, unit, n, spread), failures included."""
    records: list[dict[str, Any]] = []
    for m in run.measurements:
        base = {"machine": run.machine_id, "variant": m.variant, "metric": m.metric,
                "untrained": bool(m.context.get("untrained"))}
        if not m.ok:
            records.append({**base, "figure": None, "status": m.status, "error": m.error, "value": None,
                            "unit": None, "n": None, "min": None, "max": None, "iqr": None,
                            "relative_spread": None})
            continue
        for name, fig in m.figures.items():
            lo, hi, iqr = _spread(m, name)
            rel = iqr / fig.value if iqr is not None and fig.value and name != "iqr_s" else None
            records.append({**base, "figure": name, "status": "ok", "error": None, "value": fig.value,
                            "unit": fig.unit, "n": fig.n, "min": lo, "max": hi, "iqr": iqr,
                            "relative_spread": rel})
    return records


def ratio_records(run: Run, rows: Sequence[Row]) -> list[dict[str, Any]]:
    """The × vs standard columns as records (None where there is no standard or no value)."""
    out = []
    for row in rows:
        rec: dict[str, Any] = {"machine": run.machine_id, "variant": row.variant, **{c.key: row.cells[c.key].value for c in RATIO_COLUMNS}}
        pa = row.accuracy_vs_standard
        if pa is not None:
            rec["accuracy_ci95"] = [pa.low, pa.high]
        out.append(rec)
    return out


def change_records(run: Run, changes: Sequence[VariantChanges]) -> list[dict[str, Any]]:
    """The comparison with the baseline as records: one per variant × compared column."""
    out: list[dict[str, Any]] = []
    for vc in changes:
        if vc.status != "both":
            out.append({"machine": run.machine_id, "variant": vc.variant, "status": vc.status})
            continue
        for key, ch in vc.changes.items():
            col = COLUMN[key]
            out.append({"machine": run.machine_id, "variant": vc.variant, "status": "both",
                        "metric": col.metric, "figure": col.figure, "before": ch.before, "after": ch.after,
                        "delta": ch.delta, "delta_unit": "ratio-points" if key in POINT_COLUMNS else "relative",
                        "verdict": ch.verdict, "method": ch.method, "p": ch.p})
    return out


def run_record(run: Run) -> dict[str, Any]:
    """Where a run came from: file name, machine, commit, date."""
    sm = run.machine.get("slimbench_machine") or {}
    return {"source": Path(run.source).name, "machine": run.machine_id, "label": sm.get("label"),
            "commit": run.commit.get("id"), "dirty": run.commit.get("dirty"), "datetime": run.datetime}


def _json_safe(x: Any) -> Any:
    """JSON has no inf/nan: null instead, recursively."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_json_safe(v) for v in x]
    return x


def summary_document(reports: Sequence[MachineReport]) -> dict[str, Any]:
    """summary.json: the reported runs, one record per variant × metric figure, ratios, changes."""
    doc = {
        "slimbench_summary": SUMMARY_SCHEMA,
        "runs": [run_record(r.run) for r in reports],
        "verdict": [verdict_record(ship_verdict(r)) for r in reports],
        "baselines": [{**run_record(r.baseline), "for_machine": r.machine_id, "kind": r.baseline_kind}
                      for r in reports if r.baseline is not None],
        "records": [rec for r in reports for rec in summary_records(r.run)],
        "ratios_vs_standard": [rec for r in reports for rec in ratio_records(r.run, r.rows)],
        "changes": [rec for r in reports if r.changes is not None for rec in change_records(r.run, r.changes)],
    }
    return _json_safe(doc)


# --- grouping runs by machine -------------------------------------------------------------------

@dataclass
class MachineReport:
    """What the report says about one machine: its newest run, its rows, and the comparison."""

    machine_id: str
    label: str
    run: Run
    rows: list[Row]
    older: list[Run] = field(default_factory=list)  # earlier runs of this machine, not reported
    baseline: Run | None = None
    baseline_kind: str = ""  # "given" | "previous" (the run before, same machine) | "other-machine"
    changes: list[VariantChanges] | None = None


def machine_label(run: Run) -> str:
    sm = run.machine.get("slimbench_machine") or {}
    return str(sm.get("label") or run.machine.get("node") or run.machine_id)


def _when(run: Run) -> float:
    try:
        dt = datetime.fromisoformat(run.datetime)
    except ValueError:
        return 0.0
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


def _by_machine(runs: Sequence[Run]) -> dict[str, list[Run]]:
    """Machine id -> its runs, oldest first (machines in the order they first appear)."""
    groups: dict[str, list[Run]] = {}
    for run in runs:
        groups.setdefault(run.machine_id, []).append(run)
    return {k: sorted(v, key=_when) for k, v in groups.items()}  # sorted() is stable: ties keep file order


def group_runs(runs: Sequence[Run], baseline: Sequence[Run] | None = None, config: Any = None) -> list[MachineReport]:
    """One MachineReport per machine: its newest run, compared with `baseline` (the newest baseline
    run of the same machine, else the only baseline machine) or, without one, with its previous run."""
    if not runs:
        raise ResultsError("no results to report")
    base = {k: v[-1] for k, v in _by_machine(baseline or []).items()}
    reports: list[MachineReport] = []
    for machine_id, group in _by_machine(runs).items():
        run = group[-1]
        report = MachineReport(machine_id, machine_label(run), run, build_rows(run), older=group[:-1])
        if baseline is not None:
            if machine_id in base:
                report.baseline, report.baseline_kind = base[machine_id], "given"
            elif len(base) == 1:
                report.baseline, report.baseline_kind = next(iter(base.values())), "other-machine"
        elif report.older:
            report.baseline, report.baseline_kind = report.older[-1], "previous"
        if report.baseline is not None:
            report.changes = compare_runs(run, report.baseline, config)
        reports.append(report)
    labels = [r.label for r in reports]
    for r in reports:
        if labels.count(r.label) > 1:
            r.label = f"{r.label} ({r.machine_id})"
    return reports
