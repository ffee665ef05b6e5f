"""The report's Markdown tables and the formatting of their cells: the main and full tables, the
comparison with a baseline, the runs of several machines side by side; `--columns`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from tabulate import tabulate

from slimbench.errors import SlimbenchError
from slimbench.render.grouping import Change, MachineReport, VariantChanges
from slimbench.render.rows import (
    ALL_COLUMNS,
    COLUMN,
    COMPARE_COLUMNS,
    DASH,
    POINT_COLUMNS,
    Cell,
    Column,
    Row,
    fmt_sig,
)

# The first table's columns (with `variant`, 10): what a reader choosing a variant needs first. The full
# table further down has every column; `slimbench report --columns` chooses others.
MAIN_COLUMNS = ("size", "cold_load", "p50", "p90", "peak_rss", "accuracy", "speedup", "size_ratio", "accuracy_ratio")

ERROR_CHARS = 48  # a failure inside a table cell; the list of failures below gets more
VERDICT_MARKS = {"better": "✓", "worse": "✗", "noise": "≈", "unknown": "?"}


class ReportError(SlimbenchError):
    """The report could not be written (output path unusable)."""


# --- formatting -----------------------------------------------------------------------------------

def cell_text(column: Column, cell: Cell) -> str:
    """A cell as the table shows it: scaled to the column's unit, or why there is no value."""
    if cell.state == "failed":
        return "failed"
    if cell.state == "untrained":
        return "untrained"
    if not cell.ok or cell.value is None:
        return DASH
    if column.kind in ("n", "int"):
        return str(round(cell.value))
    value = cell.value * column.scale
    return f"{value:.1f}" if column.kind == "pct" else fmt_sig(value)


def short_error(text: str | None, limit: int = ERROR_CHARS) -> str:
    """One line, at most `limit` characters (an ellipsis marks the cut)."""
    one = " ".join((text or "no error recorded").split())
    return one if len(one) <= limit else one[: limit - 1].rstrip() + "…"


def escape_cell(text: str) -> str:
    """Make text safe inside a Markdown table cell."""
    return text.replace("|", "\\|")


def fmt_date(value: str) -> str:
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        return value or "unknown date"
    if dt.tzinfo is None:
        return dt.strftime("%Y-%m-%d %H:%M")
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def fmt_set(values: Sequence[Any]) -> str:
    """"5" or "3–5" (numbers), or "a, b" (anything else); "?" when empty."""
    uniq = sorted(set(values), key=str)
    if not uniq:
        return "?"
    if all(isinstance(v, int | float) for v in uniq):
        lo, hi = min(uniq), max(uniq)
        return f"{lo:g}" if lo == hi else f"{lo:g}–{hi:g}"
    return ", ".join(map(str, uniq))


def code_names(names: Sequence[str]) -> str:
    return ", ".join(f"`{n}`" for n in names)


# --- tables ---------------------------------------------------------------------------------------

def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _best(rows: Sequence[Row], column: Column) -> float | None:
    """The best displayed value of a ranked column, or None if nothing distinguishes the rows."""
    if not column.better:
        return None
    shown = [_number(cell_text(column, r.cells[column.key])) for r in rows if not r.failed and r.cells[column.key].ok]
    values = [v for v in shown if v is not None]
    if len(set(values)) < 2:
        return None
    return min(values) if column.better == "low" else max(values)


def parse_columns(text: str) -> tuple[Column, ...]:
    """`--columns size,p50,accuracy` -> those columns, in that order; an unknown key names the known ones."""
    keys = [k.strip() for k in text.split(",") if k.strip()]
    unknown = [k for k in keys if k not in COLUMN]
    if unknown or not keys:
        raise ReportError(f"--columns {text!r}: unknown column {', '.join(map(repr, unknown)) or '(none given)'}; "
                          f"choose from {', '.join(c.key for c in ALL_COLUMNS)}")
    return tuple(COLUMN[k] for k in dict.fromkeys(keys))


def render_headline_table(rows: Sequence[Row], columns: Sequence[Column] = ALL_COLUMNS) -> str:
    """The headline table: one row per variant, units in the headers, best value per column in bold."""
    best = {c.key: _best(rows, c) for c in columns}
    table: list[list[str]] = []
    for row in rows:
        if row.failed:
            error = next(iter(row.failures.values()))
            table.append([escape_cell(f"{row.variant} (failed: {short_error(error)})")] + [DASH] * len(columns))
            continue
        line = [row.variant]
        for c in columns:
            text = cell_text(c, row.cells[c.key])
            if row.cells[c.key].ok and best[c.key] is not None and _number(text) == best[c.key]:
                text = f"**{text}**"
            line.append(text)
        table.append(line)
    headers = ["variant"] + [c.header for c in columns]
    return tabulate(table, headers, tablefmt="pipe", colalign=("left",) + ("right",) * len(columns),
                    disable_numparse=True)


def change_text(key: str, change: Change) -> str:
    """A comparison cell: Δ in % (accuracy-like: percentage points) and a significance mark."""
    if change.verdict in ("failed", "untrained"):
        return change.verdict
    if change.verdict == "same":
        return "="
    if change.verdict == "missing" or change.delta is None:
        return DASH
    unit = "pt" if key in POINT_COLUMNS else "%"
    number = f"{change.delta * 100:+.1f}"
    number = "±0.0" if float(number) == 0 else number
    text = f"{number} {unit} {VERDICT_MARKS[change.verdict]}"
    return f"**{text}**" if change.verdict in ("better", "worse") else text


def render_comparison_table(changes: Sequence[VariantChanges]) -> str:
    """Δ per variant and metric against the baseline, significant changes marked."""
    table: list[list[str]] = []
    for vc in changes:
        if vc.status != "both":
            label = "new: not in the baseline" if vc.status == "new" else "not in this run"
            table.append([f"{vc.variant} ({label})"] + [DASH] * len(COMPARE_COLUMNS))
            continue
        table.append([vc.variant] + [change_text(k, vc.changes[k]) for k in COMPARE_COLUMNS])
    headers = ["variant"] + [COLUMN[k].short for k in COMPARE_COLUMNS]
    return tabulate(table, headers, tablefmt="pipe", colalign=("left",) + ("right",) * len(COMPARE_COLUMNS),
                    disable_numparse=True)


def render_cross_machine_table(reports: Sequence[MachineReport]) -> str:
    """Per variant and machine: p50 and the four ratios to standard (comparable across machines)."""
    keys = ("p50", "speedup", "size_ratio", "memory_ratio", "accuracy_ratio")
    variants: list[str] = []
    for r in reports:
        variants.extend(v.variant for v in r.rows if v.variant not in variants)
    table: list[list[str]] = []
    for variant in variants:
        for r in reports:
            row = next((x for x in r.rows if x.variant == variant), None)
            if row is None:
                continue
            if row.failed:
                table.append([variant, escape_cell(r.label), "failed"] + [DASH] * (len(keys) - 1))
            else:
                table.append([variant, escape_cell(r.label)] + [cell_text(COLUMN[k], row.cells[k]) for k in keys])
    headers = ["variant", "machine"] + [COLUMN[k].header for k in keys]
    return tabulate(table, headers, tablefmt="pipe", colalign=("left", "left") + ("right",) * len(keys),
                    disable_numparse=True)
