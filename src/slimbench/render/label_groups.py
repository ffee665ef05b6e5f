"""The report's label-groups section: a multi-label run's figures per group.

On a dataset with label groups (`slimbench.labels`), a variant's `accuracy` -- the main table's
column, its ratio to `standard`, the gate's rule, the ship advice -- is its **exact match**, the
share of texts with every group right (`measure.grouped_accuracy_figures` says why). This section
adds what that one figure hides: the micro-F1 over the labels that are not none, and each group's
accuracy, macro-F1 and agreement with `standard`.
"""

from __future__ import annotations

from collections.abc import Sequence

from tabulate import tabulate

from slimbench.analysis.results import Measurement, Run
from slimbench.labels import group_figure, split_group_figure
from slimbench.render.grouping import MachineReport


def _groups(measurements: Sequence[Measurement]) -> list[str]:
    """The label groups the accuracy measurements name, in their order (none for a single-label run)."""
    out: list[str] = []
    for m in measurements:
        for name in m.figures:
            figure, group = split_group_figure(name)
            if figure == "accuracy" and group is not None and group not in out:
                out.append(group)
    return out


def _pct(m: Measurement, name: str) -> str:
    f = m.figures.get(name)
    return f"{f.value * 100:.1f} %" if f is not None else "—"


def _cell(m: Measurement, group: str) -> str:
    """A group's accuracy · macro-F1 · agreement with standard."""
    f1 = m.figures.get(group_figure("macro_f1", group))
    parts = [_pct(m, group_figure("accuracy", group)), f"{f1.value:.3f}" if f1 is not None else "—"]
    if group_figure("agreement_with_standard", group) in m.figures:
        parts.append(_pct(m, group_figure("agreement_with_standard", group)))
    return " · ".join(parts)


def label_groups_note(run: Run) -> str:
    """The accuracy column's meaning on a multi-label run, for the "How to read this" list ("" otherwise)."""
    groups = _groups([m for m in run.measurements if m.metric == "accuracy" and m.ok])
    if not groups:
        return ""
    return (f" On this dataset's {len(groups)} label groups, accuracy is the exact match (every group right) and "
            "macro-F1 the mean of the groups'; each group's own figures are under Label groups below.")


def label_groups_section(report: MachineReport) -> list[str]:
    measured = [m for row in report.rows if (m := report.run.get(row.variant, "accuracy")) is not None and m.ok]
    groups = _groups(measured)
    if not groups:
        return []
    rows = [[f"`{m.variant}`", _pct(m, "exact_match"), _pct(m, "implicit_micro_f1"),
             *(_cell(m, g) for g in groups)] for m in measured]
    table = tabulate(rows, headers=["variant", "exact match", "labels found (micro-F1)", *groups],
                     tablefmt="github", colalign=("left",) + ("right",) * (2 + len(groups)), disable_numparse=True)
    n = measured[0].figures["accuracy"].n if "accuracy" in measured[0].figures else 0
    return ["### Label groups", "",
            f"This dataset gives each text a value in {len(groups)} label groups ({', '.join(groups)}). The "
            "accuracy in the tables above is the **exact match**: the share of the "
            f"{n:,} test texts with every group right, what a caller of `predict` relies on. Here, beside it: "
            "**labels found**, the micro-F1 over the labels that are not none (a wrong value and a missed "
            "label both count against it; a group whose value is none has nothing to find); and per group, "
            "its accuracy · macro-F1 over its values · agreement with `standard`'s value. The gate and "
            "`slimbench compare` judge each group's accuracy by the same rule as the exact match.", "",
            table, ""]
