"""`slimbench report`: REPORT.md, its plots and summary.json, rendered from saved results only.

Rendering never measures and never imports a model or a runtime: it reads pytest-benchmark JSON
(`--benchmark-json` or `--benchmark-autosave` files) through `slimbench.results`, so it can be re-run
from any saved file. The numbers behind the Markdown live in `report_summary`, the plots in
`report_plots`. The Markdown is deterministic: the same results give the same bytes (no clock).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tabulate import tabulate

from slimbench.errors import SlimbenchError
from slimbench.fsutil import atomic_write_text
from slimbench.report_plots import (
    MANIFEST_PLOT_TITLES,
    PLOT_DIR,
    PLOT_TITLES,
    SWEEP_PLOT,
    draw_manifest_plots,
    draw_plots,
    plot_accuracy_vs_sparsity,
    plot_files,
)
from slimbench.report_summary import (
    ACCURACY_TOLERANCE,
    ALL_COLUMNS,
    COLUMN,
    COMPARE_COLUMNS,
    DASH,
    POINT_COLUMNS,
    STANDARD,
    Cell,
    Change,
    Column,
    MachineReport,
    Point,
    Row,
    VariantChanges,
    build_rows,
    fmt_sig,
    group_runs,
    machine_label,
    paired_ratios,
    ship_advice,
    ship_verdict,
    summary_document,
)
from slimbench.results import LOAD_STOP_RULE, Figure, Run, load_runs

__all__ = ["MAIN_COLUMNS", "ReportError", "build_rows", "cmd_report", "fmt_sig", "group_runs", "parse_columns",
           "register_cli", "render_comparison_table", "render_headline_table", "render_markdown", "render_reports",
           "steal_text", "write_report"]

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


def _esc(text: str) -> str:
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


def _fmt_set(values: Sequence[Any]) -> str:
    """"5" or "3–5" (numbers), or "a, b" (anything else); "?" when empty."""
    uniq = sorted(set(values), key=str)
    if not uniq:
        return "?"
    if all(isinstance(v, int | float) for v in uniq):
        lo, hi = min(uniq), max(uniq)
        return f"{lo:g}" if lo == hi else f"{lo:g}–{hi:g}"
    return ", ".join(map(str, uniq))


def _names(names: Sequence[str]) -> str:
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
            table.append([_esc(f"{row.variant} (failed: {short_error(error)})")] + [DASH] * len(columns))
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
                table.append([variant, _esc(r.label), "failed"] + [DASH] * (len(keys) - 1))
            else:
                table.append([variant, _esc(r.label)] + [cell_text(COLUMN[k], row.cells[k]) for k in keys])
    headers = ["variant", "machine"] + [COLUMN[k].header for k in keys]
    return tabulate(table, headers, tablefmt="pipe", colalign=("left", "left") + ("right",) * len(keys),
                    disable_numparse=True)


# --- sections -------------------------------------------------------------------------------------

def _threads(run: Run) -> str:
    return _fmt_set([m.context["threads"] for m in run.measurements if m.context.get("threads") is not None])


def _commit(run: Run) -> str:
    ident = str(run.commit.get("id") or "")[:12]
    if not ident:
        return "not recorded"
    text = f"`{ident}`"
    if run.commit.get("branch"):
        text += f" on `{run.commit['branch']}`"
    if run.commit.get("dirty"):
        text += " (with uncommitted changes)"
    return text


HOW_TO_READ = [
    "**size / gzip**: bytes on disk of everything the variant needs to run (weights, config, tokenizer), "
    "and of the same files gzip-compressed (the download); MB = 10⁶ bytes. **params**: parameters, millions.",
    "**cold load**: median, over fresh processes, of the time from process start to the first prediction "
    "(interpreter, runtime import, artifact load, first predict): what an application waits for at start-up. "
    "**1st pred.**: the first prediction alone, in that fresh process.",
    "**p50 / p90 / p99**: time per sentence at batch 1 through the public predict path (tokenize + forward + "
    "argmax), percentiles of **n** raw samples. **throughput**: sentences per second at a larger batch.",
    "**peak RSS**: the kernel's high-water mark (VmHWM) of a fresh process that loaded the variant and "
    "predicted, median over processes. It counts the mapped libraries' file-backed pages, whose number "
    "follows the kernel's page cache more than the variant, so compare it between rows of one run (results.json "
    "keeps the anonymous and file-backed split; the gate judges the peak less its file-backed pages).",
    "**accuracy / macro-F1**: on the held-out test split; `untrained` marks a randomly initialised variant, "
    "whose accuracy means nothing.",
    "**× columns**: ratios to `standard` measured in the same run. speed-up = standard p50 / variant p50, "
    "above 1 is faster (in a paired run: 1 / the paired p50 ratio of the interleaved rounds); size, memory and accuracy = variant / standard (below 1 is smaller; accuracy 0.99 "
    "keeps 99 % of standard's).",
    "**bold**: the best value of its column. **–**: not measured (or nothing to compare with). "
    "**failed**: the measurement failed; see below.",
]


def _failures_section(report: MachineReport) -> list[str]:
    lines: list[str] = []
    for row in report.rows:
        errors = set(row.failures.values())
        if len(errors) == 1 and len(row.failures) > 1:
            lines.append(f"- `{row.variant}` (all of {', '.join(row.failures)}): {short_error(errors.pop(), 300)}")
        else:
            lines.extend(f"- `{row.variant}` / {metric}: {short_error(err, 300)}" for metric, err in row.failures.items())
    return ["### Failed measurements", "", *lines, ""] if lines else []


def _ci(f: Figure) -> str:
    if f.low is None or f.high is None:
        return fmt_sig(f.value)
    return f"{fmt_sig(f.value)} [{fmt_sig(f.low)}, {fmt_sig(f.high)}]"


def _paired_section(report: MachineReport) -> list[str]:
    """Ratios to `standard` from interleaved rounds, with their 95 % confidence intervals."""
    rows = []
    for row in report.rows:
        paired = paired_ratios(report.run, row.variant)
        if not paired:
            continue
        cells = [f"`{row.variant}`"]
        for name in ("p50_ratio", "p90_ratio", "batch_ratio"):
            cells.append(_ci(paired[name]) if name in paired else "–")
        p50 = paired.get("p50_ratio")
        cells.append(f"{1 / p50.value:.3g}" if p50 and p50.value > 0 else "–")
        cells.append(str(p50.n) if p50 else "–")
        rows.append(cells)
    if not rows:
        return []
    table = tabulate(rows, headers=["variant", "p50 ÷ standard [95 % CI]", "p90 ÷ standard [95 % CI]",
                                    "batch time ÷ standard [95 % CI]", "speed-up ×", "rounds"],
                     tablefmt="github", colalign=("left",) + ("right",) * 5, disable_numparse=True)
    procs = int((_timing(report.run) or {}).get("processes") or 1)
    who = ("Every variant ran in its own worker process" if procs == 1 else
           f"Every variant ran in {procs} worker processes of its own, the rounds alternating between them")
    return ["### Paired ratios to `standard`", "",
            who + ", all alive together, in interleaved rounds: each "
            "round, every variant timed one block on the same sentences, in a rotated order. A ratio is the "
            "median over rounds of the round's ratio of block percentiles, so the machine's drift cancels; "
            "the interval is a 95 % bootstrap over rounds. Below 1 is faster than `standard`. The interval "
            "covers this run's rounds, not the state of the host, which can favour one runtime's kernels over "
            "another's for minutes and move a ratio between runs by more than its interval; to judge a change, "
            "pair it with `slimbench compare`.", "", table, ""]


def _accuracy_section(report: MachineReport) -> list[str]:
    """Accuracy ratios to `standard` with their uncertainty: the test split is finite."""
    rows, n = [], 0
    for row in report.rows:
        pa = row.accuracy_vs_standard
        if pa is None:
            continue
        n = pa.n
        rows.append([f"`{row.variant}`", f"{pa.ratio:.3f} [{pa.low:.3f}, {pa.high:.3f}]", str(pa.only_standard),
                     str(pa.only_variant), f"{pa.only_variant - pa.only_standard:+d}"])
    if not rows:
        return []
    table = tabulate(rows, headers=["variant", "accuracy ÷ standard [95 % CI]", "only standard right",
                                    "only variant right", "net"],
                     tablefmt="github", colalign=("left",) + ("right",) * 4, disable_numparse=True)
    return ["### Accuracy ratios to `standard`, with their uncertainty", "",
            f"Both were scored on the same {n:,} test sentences, so a ratio rests on the sentences where they "
            "disagree: those only `standard` gets right and those only the variant gets right. The interval is "
            "a 95 % bootstrap over sentences (paired). A ratio whose interval straddles a budget (0.99, 0.98 …) "
            "does not show that the variant is above or below it: another sample of text of this size could "
            "rank it either side. The interval covers the sample of sentences, not the training run: a trained "
            "variant rebuilt with another `train.seed` can land outside it (`slimbench build --seed N` builds a "
            "replicate to see how far).", "", table, ""]


def _comparison_section(report: MachineReport) -> list[str]:
    if report.baseline is None or report.changes is None:
        return []
    base = report.baseline
    how = {"given": "the given baseline", "previous": "the previous run of this machine",
           "other-machine": "the given baseline"}[report.baseline_kind]
    out = ["### Change vs baseline", "",
           f"Against {how}: `{Path(base.source).name}` (commit {_commit(base)}, {fmt_date(base.datetime)}).", ""]
    if report.baseline_kind == "other-machine":
        out += [f"⚠ The baseline was measured on another machine ({machine_label(base)}): timing and memory "
                "changes compare machines, not code.", ""]
    out += ["Δ = (this run − baseline) / baseline, in %; accuracy and macro-F1 in percentage points.", "",
            render_comparison_table(report.changes), "",
            "- **✓ / ✗**: the gate's verdict on the same two files (`slimbench gate`, rules of "
            "`[tool.slimbench.gate]`): timings and peak RSS as ratios to `standard` in each run, beyond the "
            "rule's floor and significant (bootstrap CI and Mann-Whitney U on the raw samples); size, parameters, "
            "accuracy and macro-F1 beyond their tolerance (deterministic).",
            "- **≈**: within the gate's threshold, not significant, or history (timings of two unpaired runs; "
            "`slimbench compare` measures both interleaved for a verdict). **?**: no gate rule for this figure. "
            "**=**: unchanged. ""**–**: not measured in one of the two runs.", ""]
    return out


def _pt(p: Point) -> str:
    return f"{p.accuracy * 100:.1f} %"


def _ship_section(report: MachineReport) -> list[str]:
    advice = ship_advice(report.rows)
    out = ["### Which variant should I ship?", "",
           "From the point estimates of accuracy, p50 latency and size on disk above.", ""]
    ref = advice.reference
    if ref is not None and advice.fastest is not None and advice.smallest is not None:
        f, s = advice.fastest, advice.smallest
        # the table's speed-up: paired (1 / the p50 ratio of the rounds) where the run has one
        cell = next((r.cells.get("speedup") for r in report.rows if r.variant == f.variant), None)
        speedup = cell.value if cell is not None and cell.ok and cell.value is not None else ref.latency_s / f.latency_s
        out.append(f"- **Keeping {ACCURACY_TOLERANCE * 100:.0f} % of `standard`'s accuracy** "
                   f"(≥ {(advice.threshold or 0) * 100:.1f} %): fastest is **`{f.variant}`** "
                   f"({fmt_sig(f.latency_s * 1e3)} ms p50, {fmt_sig(speedup)}× speed-up, "
                   f"{_pt(f)}); smallest is **`{s.variant}`** ({fmt_sig(s.size_bytes / 1e6)} MB, "
                   f"{fmt_sig(s.size_bytes / ref.size_bytes)}× standard's size, {_pt(s)}).")
    elif advice.points:
        out.append("- No comparable `standard` variant, so no accuracy budget applies.")
    if not advice.points:
        out.append("- No variant has accuracy, latency and size all measured: nothing to compare.")
    else:
        out.append("- **Fastest for its accuracy** (Pareto front of accuracy vs p50 latency): "
                   + " → ".join(f"`{p.variant}` ({_pt(p)}, {fmt_sig(p.latency_s * 1e3)} ms)"
                                for p in advice.latency_front))
        out.append("- **Smallest for its accuracy** (Pareto front of accuracy vs size on disk): "
                   + " → ".join(f"`{p.variant}` ({_pt(p)}, {fmt_sig(p.size_bytes / 1e6)} MB)"
                                for p in advice.size_front))
        dominated = "; ".join(f"`{v}` (by {_names(by)})" for v, by in advice.dominated.items()) or "none"
        out.append("- **Dominated** (another variant is at least as accurate, as fast and as small): " + dominated)
    if advice.excluded:
        out.append("- **Left out**: " + ", ".join(f"`{v}` ({why})" for v, why in advice.excluded.items()))
    return [*out, ""]


def _plots_section(report: MachineReport, links: Mapping[str, str]) -> list[str]:
    if not links:
        return []
    out = ["### Plots", ""]
    for kind, rel in links.items():
        out += [f"![{PLOT_TITLES[kind]}]({rel})", ""]
    return out


def _ns(run: Run, metric: str, figure: str) -> str:
    return _fmt_set([m.figures[figure].n for m in run.measurements
                     if m.metric == metric and m.ok and figure in m.figures])


def _accuracy_batching(run: Run) -> str:
    """How the test sentences were batched for accuracy, when the run recorded it."""
    batches = {m.variant: m.context["timing"].get("batch") for m in run.measurements
               if m.metric == "accuracy" and m.ok and isinstance(m.context.get("timing"), dict)}
    alone = sorted(v for v, b in batches.items() if b == 1)
    batched = {b for b in batches.values() if isinstance(b, int) and b > 1}
    if not alone:
        return ""
    return (f" {', '.join(f'`{v}`' for v in alone)} predicted each sentence alone, as at batch 1: INT8 runtimes "
            "quantize activations with one scale over the whole batch, so a sentence's label could depend on "
            "the sentences batched with it"
            + (f"; the others in batches of {', '.join(map(str, sorted(batched)))}, whose labels do not depend on "
               "the batch." if batched else "."))


def _load_stopping(run: Run) -> str:
    """The early-stopping rule of the start-up probes, when the run used one."""
    timing = _timing(run, "load") or {}
    least, most = timing.get("samples_range", (0, 0))
    if not least or least >= most:
        return ""
    spread = f"±{timing.get('spread', 0):.0%}"
    if timing.get("rule") == LOAD_STOP_RULE:
        how = (f" (at 3: while one of the three lay beyond {spread} of their median; at 4: while one of the middle "
               f"two lay beyond {spread} of the median of the four, since an outlier at either end cannot move the "
               "median of five)") if (least, most) == (3, 5) else ""
        return (f" Each variant got {least} probes, and more (up to {most}) only while the probes still allowed "
                f"could move its median start-up time beyond {spread}{how}: sampling stops where more could not "
                "change the figure (as pyperf does), so n differs between variants.")
    return (f" Each variant got {least} probes, and more (up to {most}) only while one of its start-up times lay "
            f"beyond {spread} of their median: sampling stops where the figure is tight "
            "(as pyperf does), so n differs between variants.")


def _worker_starts(run: Run) -> str:
    """Which of the start-up samples were the timing workers' own start-ups, when any were."""
    counts = {int(sum(m.samples.get("worker_start", []))) for m in run.measurements if m.metric == "load" and m.ok}
    counts.discard(0)
    if not counts:
        return ""
    return (f" The first {_fmt_set(sorted(counts))} of a variant's processes were its timing workers, each timing "
            "its own start-up the same way, started one at a time while the workers started before them held their "
            "memory; such a start can be slower than a later fresh probe's (new memory, a page cache not yet warm): "
            "`worker_start` in results.json says which sample is which.")


def _timing(run: Run, metric: str = "latency") -> dict[str, Any] | None:
    """How the run timed `metric` (None: results from before paired timing)."""
    return next((m.context["timing"] for m in run.measurements
                 if m.metric == metric and m.ok and isinstance(m.context.get("timing"), dict)), None)


def _timing_how(run: Run) -> str:
    how = _timing(run)
    if not how:
        return " Timed in the measuring process, variant after variant (results from before paired timing)."
    procs = int(how.get("processes") or 1)
    return (" Timed out of the measuring process: "
            + ("one worker process per variant" if procs == 1 else
               f"{procs} worker processes per variant, the rounds alternating between them (a process's own "
               "lasting offset averages out)")
            + f", all {len(how.get('variants', []))} variants alive together, {how.get('rounds')} interleaved rounds of "
            f"{how.get('block')} calls per variant, order rotated each round"
            + (f", then up to {how['max_rounds']} in all for the variants whose ratio's 95 % CI was still wider "
               f"than ±{how['ci_half_width']:.0%}" + (f" while the phase was within its {how['max_s']:.0f}-s budget"
                                                      if how.get("max_s") else "")
               + _rounds_end(run, how) if how.get("max_rounds", 0) > (how.get("rounds") or 0)
               and how.get("ci_half_width") else "")
            + (f"; a variant whose block would last under {how['min_block_s'] * 1e3:.0f} ms repeated the round's "
               "sentences to about that length (" + ", ".join(f"{k} ×{r}" for k, r in how["repeat"].items()) + ")"
               if how.get("repeat") else "")
            + (", every worker but the one being timed stopped (SIGSTOP), so the previous worker's runtime "
               "threads, which spin on for a while after a call, cannot take a core" if how.get("frozen_idle") else "")
            + (f", a {how['settle_s'] * 1e3:.0f} ms pause before each block (the previous worker's runtime threads "
               "stop spinning)" if how.get("settle_s") else "")
            + (", the first call" if how.get("discard", 1) == 1 else f", the first {how['discard']} calls")
            + f" of each block discarded; throughput likewise in {how.get('throughput_rounds')} rounds"
            + _throughput_warmup_text(how)
            + ". Ratios to `standard` come from the paired rounds, with 95 % bootstrap intervals."
            + steal_text(how.get("steal") or {}))


def _throughput_warmup_text(how: Mapping[str, Any]) -> str:
    """How each throughput block began: results without the key timed two batches, the first dropped."""
    warmup = how.get("throughput_warmup")
    if warmup is None:
        return ""
    return (f" (one timed batch each, after an untimed call on {warmup} sentence{'s' if warmup != 1 else ''})"
            if warmup else " (one timed batch each, no call before it)")


def _rounds_end(run: Run, how: Mapping[str, Any]) -> str:
    """What ended the latency rounds, and which ratios' intervals stayed wider than the target."""
    target, ran = float(how["ci_half_width"]), how.get("rounds_run")
    wide = sorted(m.variant for m in run.measurements if m.metric == "latency" and m.ok
                  and (f := m.figures.get("p50_ratio")) is not None
                  and (width := f.relative_half_width) is not None and width > target)
    names = ", ".join(f"`{v}`" for v in wide)
    still = (f", the intervals of {names} still wider than ±{target:.0%}: this machine was noisy, and the "
             "intervals below show what the time bought" if wide else "")
    stopped = how.get("stopped")
    if stopped == "ci":
        return f" (every ratio reached that after {ran} rounds)"
    if stopped == "max_s":
        return f" (the budget ended them after {ran} rounds{still})"
    if stopped == "max_rounds":
        return f" (they ended at the {ran}-round limit{still})"
    return ""


STEAL_WARN = 0.05  # above this share of CPU time taken by other guests, say the host was contended
# the phases whose steal a run records (pytest bench's, and `slimbench compare`'s re-measurement)
STEAL_PHASES = {"latency": "of this machine's CPU time to other guests during the latency rounds",
                "throughput": "during throughput",
                "confirm latency": "while re-measuring a regression"}


def steal_text(steal: Mapping[str, float]) -> str:
    """What the hypervisor took (steal, from /proc/stat) while the rounds ran: a slowdown of the whole
    VM that pairing cancels in the ratios, but that makes every round noisier. The report's sentence
    and `slimbench compare`'s."""
    if "latency" not in steal:
        return ""
    text = (" The hypervisor gave " + " and ".join(f"{steal[phase]:.1%} {when}" for phase, when in STEAL_PHASES.items()
                                                  if phase in steal) + " (steal, /proc/stat)")
    if max(steal.values()) > STEAL_WARN:
        text += (f": above {STEAL_WARN:.0%}, the host was contended, its noise lands on some rounds and not on "
                 "others, and intervals are wider than on a quiet host")
    return text + "."


def _cached_labels(run: Run) -> str:
    cached = (_timing(run) or {}).get("labels_cached") or []
    if not cached:
        return ""
    return (f" The labels of {_names(sorted(cached))} (and their pass time) were read from the cache: an earlier "
            "pass (the build's own evaluation, or an earlier run) predicted them from the same artifact files with "
            "the same code, libraries, sentences, batch and threads, so predicting again would give the same labels.")


def _measured_how(run: Run) -> list[str]:
    metrics = {m.metric for m in run.measurements if m.ok}
    datasets = sorted({str(m.context["dataset"]) for m in run.measurements if m.context.get("dataset")})
    lines = {
        "size": "**size**: bytes on disk of every file the variant needs to run (weights, config, tokenizer); "
                "gzip = the same files at gzip -6; parameters counted in the artifact.",
        "load": f"**load**: {_ns(run, 'load', 'start_to_first_prediction_s')} fresh processes per variant, each "
                "timing its phases (interpreter start, runtime import, artifact load, first prediction); cold "
                "load = median of their sum; warm reload = re-opening in "
                + ("the variant's timing worker" if _timing(run) else "the measuring process")
                + f" (median of {_ns(run, 'load', 'warm_reload_s')})."
                + (" The probes ran round-robin across variants, not one variant's in a row." if _timing(run) else "")
                + _worker_starts(run) + _load_stopping(run),
        "memory": f"**memory**: peak RSS = the kernel's high-water mark (VmHWM) of {_ns(run, 'memory', 'peak_rss_bytes')} "
                  "fresh processes after load and batch-1 predictions, median; no sampler runs beside them.",
        "latency": f"**latency**: {_ns(run, 'latency', 'p50_s')} batch-1 predictions per variant through the public "
                   "predict path (tokenize + forward + argmax), each on the next test sentence; percentiles of "
                   "the raw samples." + _timing_how(run),
        "throughput": f"**throughput**: {_ns(run, 'throughput', 'sentences_per_s')} batches of "
                      f"{_fmt_set([int(m.figures['batch_size'].value) for m in run.measurements if m.metric == 'throughput' and m.ok and 'batch_size' in m.figures])} "
                      "test sentences; sentences per second from the median batch time.",
        "accuracy": f"**accuracy**: {_ns(run, 'accuracy', 'accuracy')} test sentences"
                    + (f" of {_names(datasets)}" if datasets else "")
                    + " (a fixed split never used for training or selection): accuracy, macro-F1, and agreement "
                      "with `standard`'s predictions."
                    + _cached_labels(run),
    }
    return [f"  - {text}" for metric, text in lines.items() if metric in metrics]


def _metadata_section(report: MachineReport) -> list[str]:
    run = report.run
    sm = run.machine.get("slimbench_machine") or {}
    machine = [str(sm.get("cpu") or run.machine.get("processor") or "unknown CPU")]
    if sm.get("cpu_generation"):
        machine.append(str(sm["cpu_generation"]))
    if sm.get("cpu_flags"):
        machine.append(", ".join(sm["cpu_flags"]))
    if sm.get("cores"):
        machine.append(f"{sm['cores']} cores")
    if sm.get("ram_bytes"):
        machine.append(f"{sm['ram_bytes'] / 2**30:.1f} GiB RAM")
    if sm.get("os") or run.machine.get("system"):
        machine.append(str(sm.get("os") or run.machine.get("system")))
    machine.append(f"id `{run.machine_id}`")
    libraries = sm.get("libraries") or {}
    if not libraries and run.machine.get("python_version"):
        libraries = {"python": run.machine["python_version"]}
    results = f"`{Path(run.source).name}`"
    if report.older:
        results += "; earlier runs of this machine, not reported: " + _names([Path(r.source).name for r in report.older])
    out = [f"### {report.label}", "",
           "- **Machine**: " + " · ".join(machine),
           f"- **Threads**: {_threads(run)} (the same for every runtime)",
           "- **Libraries**: " + (", ".join(f"{k} {v}" for k, v in libraries.items()) or "not recorded"),
           f"- **Commit**: {_commit(run)}",
           f"- **Date**: {fmt_date(run.datetime)}",
           f"- **Results**: {results}"]
    if report.baseline is not None:
        out.append(f"- **Baseline**: `{Path(report.baseline.source).name}` ({machine_label(report.baseline)}, "
                   f"commit {_commit(report.baseline)}, {fmt_date(report.baseline.datetime)})")
    out += ["- **What was measured how**:", *_measured_how(run), ""]
    return out


def incomplete_note(run: Run) -> str | None:
    """One line saying that a results file is marked incomplete, or None."""
    if not run.incomplete:
        return None
    why = f" ({run.incomplete_reason})" if run.incomplete_reason else ""
    return (f"{run.source} is marked incomplete{why}: its run was interrupted or did not finish, so variants "
            "and metrics it did not reach are missing from it")


UNITS = ("MB = 10⁶ bytes; times in ms except cold load (s); × = ratio to `standard` in this run; **bold** = best "
         "in its column.")


def _run_line(report: MachineReport) -> str:
    """Where the numbers come from, in one line: variants, machine, threads, commit, date, file."""
    run = report.run
    n = len(run.variants)
    return (f"{n} variant{'s' if n != 1 else ''} measured on {report.label} · {_threads(run)} threads · commit "
            f"{_commit(run)} · {fmt_date(run.datetime)} · `{Path(run.source).name}` (rendered from these saved "
            "results; nothing was measured to write this report).")


def _change_line(report: MachineReport) -> list[str]:
    """The gate's marks against the baseline in one line, when there is a baseline."""
    if report.changes is None:
        return []
    marks: dict[str, list[str]] = {"worse": [], "better": []}
    for vc in report.changes:
        for key, ch in vc.changes.items():
            if ch.verdict in marks:
                marks[ch.verdict].append(f"`{vc.variant}` {COLUMN[key].short} {change_text(key, ch).strip('*')}")
    if not marks["worse"] and not marks["better"]:
        return ["- **Against the baseline**: no significant change (details below)."]
    parts = [f"{len(v)} {'worse' if k == 'worse' else 'better'}: " + "; ".join(v) for k, v in marks.items() if v]
    return ["- **Against the baseline**: " + " · ".join(parts) + " (details below)."]


def _top(report: MachineReport, columns: Sequence[Column], several: bool) -> list[str]:
    """The first screen of a machine: the verdict, the run in one line, the main table."""
    verdict = ship_verdict(report).lines
    out = [f"## {report.label}", ""] if several else []
    out += [verdict[0], ""]
    rest = verdict[1:] + _change_line(report)
    if rest:
        out += [*rest, ""]
    out += [_run_line(report), "", render_headline_table(report.rows, columns), ""]
    more = [c.header for c in ALL_COLUMNS if c not in columns]
    out += [UNITS + (f" The full table below adds {', '.join(more)}; `slimbench report --columns` chooses the "
                     "columns of this one." if more else ""), ""]
    cut = _truncation_line(report)
    return out + ([cut, ""] if cut else [])


CUT_WORTH_SAYING = 0.01  # a variant that cuts more than this share of the test texts is named on the first screen


def _truncation_line(report: MachineReport) -> str:
    """The variants that do not read whole test texts: their max length and the share they cut."""
    said = []
    for variant in report.run.variants:
        m = report.run.get(variant, "accuracy")
        figs = m.figures if m is not None and m.ok else {}
        if "truncated_share" in figs and "max_length" in figs and figs["truncated_share"].value > CUT_WORTH_SAYING:
            said.append(f"`{variant}` reads {figs['max_length'].value:.0f} tokens and cuts "
                        f"{figs['truncated_share'].value:.1%} of the test texts")
    if not said:
        return ""
    return ("**Texts longer than a variant reads are cut** (the accuracy is of the cut texts): " + "; ".join(said)
            + ". A spec's `max_length` sets it.")


def _machine_section(report: MachineReport, links: Mapping[str, str] | None, first: bool) -> list[str]:
    run = report.run
    has_standard = any(r.variant == STANDARD and not r.failed for r in report.rows)
    units = ("Sizes and memory in MB (1 MB = 10⁶ bytes), times in ms except cold load (s); **bold** = best in "
             "its column; × = ratio to `standard` in this run.")
    if not has_standard:
        units += " This run has no `standard` variant, so the × columns are empty."
    out = [f"## All results: {report.label}", "", units, "", render_headline_table(report.rows), ""]
    if first:
        lines = [line + _accuracy_batching(run) if line.startswith("**accuracy / macro-F1**") else line
                 for line in HOW_TO_READ]
        out += ["How to read this:", "", *[f"- {line}" for line in lines], ""]
    else:
        out += ["The columns are explained under the first full table.", ""]
    out += _failures_section(report)
    out += _paired_section(report)
    out += _accuracy_section(report)
    out += _comparison_section(report)
    out += _ship_section(report)
    out += _plots_section(report, links or {})
    return out


def _sweep_section(sweep: Mapping[str, Any], plot: bool) -> list[str]:
    """The sparsity ladder of `slimbench sweep` (sweep.json): accuracy and size at each sparsity."""
    how = ("one-shot, no retraining" if not sweep.get("recover_epochs")
           else f"each rung recovered by {sweep['recover_epochs']} epoch(s) of distillation from `{sweep['source']}`")
    rows = [[f"`{r['variant']}`", f"{r['target_sparsity']:.0%}", f"{r['encoder_sparsity']:.1%}",
             f"{r['model_sparsity']:.1%}", f"{r['test_accuracy'] * 100:.2f}", f"{r['val_accuracy'] * 100:.2f}",
             f"{r['file_bytes'] / 1e6:.1f}", f"{r['compressed_bytes'] / 1e6:.1f}"] for r in sweep["levels"]]
    out = ["## Accuracy vs sparsity", "",
           f"`slimbench sweep`: `{sweep['source']}` with its encoder's Linear weights pruned by magnitude "
           f"({sweep.get('scope', 'global')} ranking; {how}). Accuracy on the {sweep.get('test_split', 0):,}-"
           "sentence test split and on validation; sizes in MB (10⁶ bytes). Zeros do not shrink a dense "
           "file, only its compressed form; they do not make dense inference faster either.", "",
           tabulate(rows, headers=["rung", "target", "encoder sparsity", "all weights", "test acc %",
                                   "val acc %", "file MB", "gzip MB"], tablefmt="github",
                    colalign=("left",) + ("right",) * 7, disable_numparse=True), ""]
    if plot:
        out += [f"![Accuracy vs sparsity]({PLOT_DIR}/{SWEEP_PLOT}.png)", ""]
    return out


def render_reports(reports: Sequence[MachineReport], plots: Mapping[str, Mapping[str, str]] | None = None,
                   sweep: Mapping[str, Any] | None = None, columns: Sequence[Column] | None = None) -> str:
    """The whole REPORT.md for grouped runs; `plots` maps machine id -> plot kind -> relative path.

    It answers first: each machine's verdict (which variant to ship, from `ship_advice`), the run in one
    line and a table of `columns` (default `MAIN_COLUMNS`); then the full table and everything else."""
    main = tuple(columns) if columns else tuple(COLUMN[k] for k in MAIN_COLUMNS)
    several = len(reports) > 1
    out = ["# slimbench report", ""]
    for r in reports:
        note = incomplete_note(r.run)
        if note:
            out += [f"> **Incomplete run.** {_esc(note)}.", ""]
    for r in reports:
        out += _top(r, main, several)
    if several:
        out += ["## Across machines", "",
                "Each machine's ratios to its own `standard`: absolute times differ between machines, the "
                "ratios should not (much).", "", render_cross_machine_table(reports), ""]
    for i, r in enumerate(reports):
        out += _machine_section(r, (plots or {}).get(r.machine_id), first=i == 0)
    if sweep:
        out += _sweep_section(sweep, plots is not None)
    out += ["## Run metadata", ""]
    for r in reports:
        out += _metadata_section(r)
    while out and out[-1] == "":
        out.pop()
    return "\n".join(out) + "\n"


def render_markdown(runs: Sequence[Run], baseline: Sequence[Run] | None = None, plots: bool = True,
                    sweep: Mapping[str, Any] | None = None, gate_config: Any = None,
                    columns: Sequence[Column] | None = None) -> str:
    """REPORT.md for these runs (newest run per machine), compared with `baseline` if given.

    Without a baseline, a machine with several runs is compared with its previous run. With
    `plots`, the Markdown links the plots `write_report` draws (it does not draw them).
    """
    reports = group_runs(runs, baseline, gate_config)
    return render_reports(reports, plot_files(reports) if plots else None, sweep, columns)


# --- writing --------------------------------------------------------------------------------------

def dumps_summary(doc: Mapping[str, Any]) -> str:
    """summary.json text: one record per line, so diffs between runs read line by line."""
    def dump(x: Any) -> str:
        return json.dumps(x, ensure_ascii=False)

    lines = ["{"]
    for i, (key, value) in enumerate(doc.items()):
        comma = "," if i < len(doc) - 1 else ""
        if isinstance(value, list) and value:
            lines.append(f" {dump(key)}: [")
            lines += [f"  {dump(x)}{',' if j < len(value) - 1 else ''}" for j, x in enumerate(value)]
            lines.append(f" ]{comma}")
        else:
            lines.append(f" {dump(key)}: {dump(value)}{comma}")
    return "\n".join([*lines, "}"]) + "\n"


def write_report(runs: Sequence[Run], out_dir: Path, baseline_runs: Sequence[Run] | None = None,
                 summary_path: Path | None = None, step_summary: Path | None = None, plots: bool = True,
                 sweep: Mapping[str, Any] | None = None, gate_config: Any = None,
                 columns: Sequence[Column] | None = None,
                 manifests: Mapping[str, dict[str, Any]] | None = None) -> Path:
    """Write out_dir/REPORT.md, its plots and summary.json; append the Markdown to `step_summary`.
    `manifests` (variant -> build manifest) add the training-curves and sensitivity plots."""
    out_dir = Path(out_dir)
    reports = group_runs(runs, baseline_runs, gate_config)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        links = plot_files(reports) if plots else None
        if plots:
            draw_plots(reports, out_dir)
            if sweep:
                plot_accuracy_vs_sparsity(dict(sweep), out_dir / PLOT_DIR / f"{SWEEP_PLOT}.png")
        text = render_reports(reports, links, sweep, columns)
        if plots and manifests:
            text += _manifest_section(draw_manifest_plots(dict(manifests), out_dir), manifests)
        path = out_dir / "REPORT.md"
        atomic_write_text(path, text)
        summary = Path(summary_path) if summary_path is not None else out_dir / "summary.json"
        summary.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(summary, dumps_summary(summary_document(reports)))
        if step_summary is not None:
            # GitHub's step summary cannot show the report's relative image links: leave them out.
            with open(step_summary, "a", encoding="utf-8") as f:
                f.write(render_reports(reports, None, sweep, columns) + "\n")
    except OSError as err:
        raise ReportError(f"cannot write the report: {err}") from None
    return path


def _manifest_section(files: Mapping[str, str], manifests: Mapping[str, dict[str, Any]]) -> str:
    """The Markdown of the plots drawn from the build manifests (none: nothing)."""
    if not files:
        return ""
    lines = ["", "## Training and quantization", ""]
    for kind, rel in files.items():
        lines += [f"![{MANIFEST_PLOT_TITLES[kind]}]({rel})", ""]
    for name, m in manifests.items():
        search = (m.get("nbits") or {}).get("search")
        if search:
            counts = m["nbits"].get("layers", {})
            lines += [f"`{name}`: budget {search['budget']}; chosen plan "
                      + ", ".join(f"{counts.get(k, 0)} {k.upper() if k != 'fp32' else k}" for k in ("int4", "int8", "fp32"))
                      + f" Linear layers, {len(search['tried'])} plans tried on the validation split.", ""]
    return "\n".join(lines)


def build_manifests(runs: Sequence[Run], root: Path | None = None) -> dict[str, dict[str, Any]]:
    """variant -> the manifest of the artifact the runs measured (by its spec hash), for each one
    still in the artifact cache."""
    from slimbench.paths import artifacts_dir

    root = root or artifacts_dir()
    out: dict[str, dict[str, Any]] = {}
    for run in runs:
        for m in run.measurements:
            spec_hash = m.context.get("spec_hash")
            path = root / f"{m.variant}-{str(spec_hash)[:12]}" / "manifest.json"
            if spec_hash and m.variant not in out and path.is_file():
                try:
                    out[m.variant] = json.loads(path.read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    continue
    return out


# --- command line ---------------------------------------------------------------------------------

def cmd_report(args: argparse.Namespace) -> int:
    """`slimbench report RESULTS...`: render saved results; never measures."""
    columns = parse_columns(args.columns) if args.columns else None
    runs = load_runs(args.results)
    baseline = load_runs([args.baseline]) if args.baseline is not None else None
    incomplete = [note for run in [*runs, *(baseline or [])] if (note := incomplete_note(run))]
    for note in incomplete:
        print(f"slimbench: warning: {note}", file=sys.stderr)
    step = args.step_summary
    if step is None and os.environ.get("GITHUB_STEP_SUMMARY"):
        step = Path(os.environ["GITHUB_STEP_SUMMARY"])
    summary = args.summary_json if args.summary_json is not None else args.out / "summary.json"
    sweep = None
    sweep_path = args.sweep if args.sweep is not None else args.out / "sweep.json"
    if args.sweep is not None or sweep_path.is_file():
        from slimbench.results import load_sweep

        sweep = load_sweep(sweep_path)
    from slimbench.gate_rules import load_config

    path = write_report(runs, args.out, baseline, summary_path=summary, step_summary=step, plots=not args.no_plots,
                        sweep=sweep, gate_config=load_config(args.config), columns=columns,
                        manifests=build_manifests(runs))
    print(f"wrote {path} and {summary}")
    if step is not None:
        print(f"appended the report to {step}")
    failed = [f"{m.variant} / {m.metric}" for run in runs for m in run.measurements if not m.ok]
    if failed and args.strict:
        print(f"slimbench: {len(failed)} measurement(s) failed ({', '.join(failed[:5])}); "
              "they are marked in the report", file=sys.stderr)
        return 1
    return 1 if incomplete and args.strict else 0


def register_cli(subparsers: Any) -> None:
    """Add the `report` subcommand to slimbench's command line."""
    p = subparsers.add_parser(
        "report", help="render REPORT.md, plots and summary.json from saved results (never measures)",
        description="Render reports/REPORT.md (the verdict: which variant to ship; a main table; the full table, "
                    "plots, run metadata), "
                    "its PNG plots and a machine-readable summary.json from saved pytest-benchmark results. "
                    "With several runs of one machine, the newest is reported and compared with the one before.")
    p.add_argument("results", nargs="+", type=Path, metavar="RESULTS",
                   help="results files (--benchmark-json) or directories of them (e.g. .benchmarks/)")
    p.add_argument("--out", type=Path, default=Path("reports"),
                   help="directory for REPORT.md and plots/ (default: reports)")
    p.add_argument("--baseline", type=Path, default=None, metavar="FILE",
                   help="results file or directory to compare with (default: the previous run of the same "
                        "machine among RESULTS, if there is one)")
    p.add_argument("--summary-json", type=Path, default=None, metavar="PATH",
                   help="where to write the machine-readable summary (default: OUT/summary.json)")
    p.add_argument("--step-summary", type=Path, default=None, metavar="PATH",
                   help="also append the Markdown (without images) to PATH (default: $GITHUB_STEP_SUMMARY if set)")
    p.add_argument("--no-plots", action="store_true", help="do not draw or link the PNG plots")
    p.add_argument("--columns", default=None, metavar="KEYS",
                   help="comma-separated columns of the report's first table, in order (default: "
                        f"{','.join(MAIN_COLUMNS)}; any of {','.join(c.key for c in ALL_COLUMNS)}); the full table "
                        "further down keeps every column")
    p.add_argument("--config", type=Path, default=None,
                   help="pyproject.toml whose [tool.slimbench.gate] judges the comparison with the baseline, as "
                        "`slimbench gate` does (default: ./pyproject.toml if present, else built-in defaults)")
    p.add_argument("--sweep", type=Path, default=None, metavar="FILE",
                   help="a `slimbench sweep` ladder to add as the accuracy-vs-sparsity section "
                        "(default: OUT/sweep.json if it exists)")
    p.add_argument("--strict", action="store_true",
                   help="exit 1 (after writing the report) if any measurement in RESULTS failed or a results "
                        "file is marked incomplete")
    p.set_defaults(func=cmd_report)
