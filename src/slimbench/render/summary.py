"""summary.json: the run's figures, ratios, changes and verdict as records for other tools.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from slimbench.analysis.results import Measurement, Run
from slimbench.render.grouping import MachineReport, VariantChanges
from slimbench.render.rows import COLUMN, POINT_COLUMNS, RATIO_COLUMNS, Row
from slimbench.render.verdict import ship_verdict, verdict_record

SUMMARY_SCHEMA = 1


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
