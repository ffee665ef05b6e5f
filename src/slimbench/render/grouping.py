"""Runs grouped by machine, and each variant's changes against a baseline run.

Pure functions over `slimbench.analysis.results.Run`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from slimbench.analysis.results import Measurement, ResultsError, Run
from slimbench.render.rows import COLUMN, COMPARE_COLUMNS, EXACT_COLUMNS, POINT_COLUMNS, Row, build_rows

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
    from slimbench.analysis.gate import GateConfig, gate
    from slimbench.analysis.gate_rules import STAND_INS

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
