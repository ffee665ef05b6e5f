"""Which variant to ship: the accuracy budget, the Pareto fronts, the variants something else
beats on every count, the verdict sentence that opens the report, and the run's noise line.

Pure functions over rows and runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from slimbench.analysis.results import Run
from slimbench.render.grouping import MachineReport
from slimbench.render.rows import ACCURACY_TOLERANCE, STANDARD, Row, fmt_sig

NOISY_SPREAD = 0.2  # latency IQR above 20 % of the median earns a noise warning


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
