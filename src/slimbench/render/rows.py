"""The numbers behind the report: the columns, one row per variant, ratios to `standard`, and the
paired ratios and accuracy comparisons a run recorded.

Pure functions over `slimbench.analysis.results.Run`: no I/O, no plotting, no measuring, no model. Values stay
in the units the results carry (B, s, count, ratio, 1/s); only the renderers scale them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from slimbench.analysis.results import Figure, Run

STANDARD = "standard"
ACCURACY_TOLERANCE = 0.99  # "keeps 99 % of the reference's accuracy" (the MLPerf rule)
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
