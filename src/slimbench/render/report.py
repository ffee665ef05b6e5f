"""REPORT.md's Markdown, section by section, from saved results only.

Rendering never measures and never imports a model or a runtime: it reads pytest-benchmark JSON
(`--benchmark-json` or `--benchmark-autosave` files) through `slimbench.analysis.results`, so it can be re-run
from any saved file. The numbers behind the Markdown live in `rows`, `grouping` and `verdict`, the
tables in `tables`, the measuring method in words in `method`, the plots in `plots`; `command` writes
the files. The Markdown is deterministic: the same results give the same bytes (no clock).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tabulate import tabulate

from slimbench.analysis.results import Figure, Run
from slimbench.render.grouping import MachineReport, group_runs, machine_label
from slimbench.render.label_groups import label_groups_note, label_groups_section
from slimbench.render.method import (
    HOW_TO_READ,
    accuracy_batching,
    commit_text,
    metadata_section,
    threads_text,
    timing_record,
)
from slimbench.render.plots import PLOT_DIR, PLOT_TITLES, SWEEP_PLOT, plot_files
from slimbench.render.rows import (
    ACCURACY_TOLERANCE,
    ALL_COLUMNS,
    COLUMN,
    STANDARD,
    Column,
    fmt_sig,
    paired_ratios,
)
from slimbench.render.tables import (
    MAIN_COLUMNS,
    change_text,
    code_names,
    escape_cell,
    fmt_date,
    render_comparison_table,
    render_cross_machine_table,
    render_headline_table,
    short_error,
)
from slimbench.render.verdict import Point, ship_advice, ship_verdict


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
    procs = int((timing_record(report.run) or {}).get("processes") or 1)
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
           f"Against {how}: `{Path(base.source).name}` (commit {commit_text(base)}, {fmt_date(base.datetime)}).", ""]
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
        dominated = "; ".join(f"`{v}` (by {code_names(by)})" for v, by in advice.dominated.items()) or "none"
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
    return (f"{n} variant{'s' if n != 1 else ''} measured on {report.label} · {threads_text(run)} threads · commit "
            f"{commit_text(run)} · {fmt_date(run.datetime)} · `{Path(run.source).name}` (rendered from these saved "
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
    cuts: dict[tuple[str, str], list[str]] = {}  # (tokens, share) -> the variants that read and cut alike
    for variant in report.run.variants:
        m = report.run.get(variant, "accuracy")
        figs = m.figures if m is not None and m.ok else {}
        if "truncated_share" in figs and "max_length" in figs and figs["truncated_share"].value > CUT_WORTH_SAYING:
            key = (f"{figs['max_length'].value:.0f}", f"{figs['truncated_share'].value * 100:.1f} %")
            cuts.setdefault(key, []).append(f"`{variant}`")
    if not cuts:
        return ""
    said = [f"{names[0]} reads {tokens} tokens and cuts {share} of the test texts" if len(names) == 1 else
            f"{', '.join(names[:-1])} and {names[-1]} read {tokens} tokens and cut {share} of the test texts"
            for (tokens, share), names in cuts.items()]
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
        lines = [line + accuracy_batching(run) + label_groups_note(run) if line.startswith("**accuracy / macro-F1**")
                 else line for line in HOW_TO_READ]
        out += ["How to read this:", "", *[f"- {line}" for line in lines], ""]
    else:
        out += ["The columns are explained under the first full table.", ""]
    out += _failures_section(report)
    out += _paired_section(report)
    out += _accuracy_section(report)
    out += label_groups_section(report)
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
            out += [f"> **Incomplete run.** {escape_cell(note)}.", ""]
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
        out += metadata_section(r)
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
