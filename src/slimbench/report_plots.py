"""The report's plots: PNG files drawn with matplotlib's Agg canvas (no pyplot, no display).

matplotlib is imported only when a plot is drawn, so rendering Markdown alone never pays for it.
Which plots a machine gets depends only on which data its run holds (`plot_plan`), so the Markdown
can link them without drawing them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from slimbench.report_summary import LOAD_PHASES, MachineReport, ship_advice

PLOT_DIR = "plots"
PLOT_TITLES = {
    "accuracy_vs_latency": "Accuracy vs p50 latency, with the Pareto front",
    "sizes": "Size on disk and gzip-compressed",
    "load_phases": "Cold load: start-up phases in a fresh process",
    "latency_distributions": "Latency distributions (batch 1)",
}


def _has_phases(report: MachineReport, variant: str) -> bool:
    m = report.run.get(variant, "load")
    return m is not None and m.ok and all(f"{p}_s" in m.figures for p in LOAD_PHASES)


def _latency_samples(report: MachineReport, variant: str) -> list[float]:
    m = report.run.get(variant, "latency")
    return list(m.samples.get("latency_s") or []) if m is not None and m.ok else []


def _accuracy_points(report: MachineReport) -> list[tuple[str, float, float]]:
    """(variant, p50 ms, accuracy %) of every trained variant with both measured."""
    out = []
    for row in report.rows:
        acc, p50 = row.value("accuracy"), row.value("p50")
        if acc is not None and p50 is not None and p50 > 0:
            out.append((row.variant, p50 * 1e3, acc * 100))
    return out


def plot_plan(report: MachineReport) -> list[str]:
    """The plots this machine's data supports, in report order."""
    variants = [r.variant for r in report.rows]
    available = {
        "accuracy_vs_latency": bool(_accuracy_points(report)),
        "sizes": any(r.value("size") is not None for r in report.rows),
        "load_phases": any(_has_phases(report, v) for v in variants),
        "latency_distributions": any(len(_latency_samples(report, v)) > 1 for v in variants),
    }
    return [kind for kind in PLOT_TITLES if available[kind]]


def plot_files(reports: Sequence[MachineReport]) -> dict[str, dict[str, str]]:
    """Machine id -> plot kind -> path relative to the report (one folder per machine if several)."""
    out: dict[str, dict[str, str]] = {}
    for r in reports:
        folder = PLOT_DIR if len(reports) == 1 else f"{PLOT_DIR}/{re.sub(r'[^A-Za-z0-9._-]', '_', r.machine_id)}"
        out[r.machine_id] = {kind: f"{folder}/{kind}.png" for kind in plot_plan(r)}
    return out


def draw_plots(reports: Sequence[MachineReport], out_dir: Path) -> list[Path]:
    """Draw every planned plot under out_dir; returns the files written."""
    draw = {"accuracy_vs_latency": plot_accuracy_vs_latency, "sizes": plot_sizes,
            "load_phases": plot_load_phases, "latency_distributions": plot_latency_distributions}
    files = plot_files(reports)
    written: list[Path] = []
    for r in reports:
        for kind, rel in files[r.machine_id].items():
            path = Path(out_dir) / rel
            draw[kind](r, path)
            written.append(path)
    return written


def _figure(n_rows: int, width: float = 7.0) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, 1.4 + 0.45 * max(n_rows, 3)), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _log_x(ax: Any) -> None:
    """Log x axis labelled 0.5, 1, 10 rather than 10⁰."""
    from matplotlib.ticker import FuncFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))


def _save(fig: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, metadata={"Software": None})  # no version stamp: same data, same bytes


def plot_accuracy_vs_latency(report: MachineReport, path: Path) -> None:
    """Accuracy (%) against p50 latency (ms, log x); the Pareto front as a staircase."""
    points = _accuracy_points(report)
    front = ship_advice(report.rows).latency_front
    on_front = {p.variant for p in front}
    fig = _figure(len(points))
    ax = fig.add_subplot()
    placed: list[tuple[float, float, int]] = []
    for name, x, y in sorted(points, key=lambda p: p[1]):
        ax.scatter([x], [y], color="C0" if name in on_front else "0.55", zorder=3)
        # labels of points at about the same accuracy and within ~2x latency would overlap: give each
        # a text line (above, below, further below) its near neighbours do not use
        taken = {slot for px, py, slot in placed if abs(py - y) < 0.15 and 0.5 < px / x < 2.0}
        slot = next((k for k in range(4) if k not in taken), 0)
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(5, 4 - 11 * slot), fontsize=8)
        placed.append((x, y, slot))
    if front:
        ax.step([p.latency_s * 1e3 for p in front], [p.accuracy * 100 for p in front], where="post",
                linestyle="--", color="C0", label="Pareto front (nothing is faster and more accurate)")
        ax.legend(loc="upper left", fontsize=8)
    _log_x(ax)
    ax.set_xlabel("p50 latency per sentence, batch 1 (ms, log scale)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"Accuracy vs latency — {report.label}", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    _save(fig, path)


def plot_sizes(report: MachineReport, path: Path) -> None:
    """Horizontal bars: size on disk and gzip size per variant (MB = 10⁶ B)."""
    import numpy as np

    rows = [r for r in report.rows if r.value("size") is not None]
    total = np.array([r.value("size") or 0.0 for r in rows]) / 1e6
    gz = np.array([r.value("gzip") or 0.0 for r in rows]) / 1e6
    fig = _figure(len(rows))
    ax = fig.add_subplot()
    y = np.arange(len(rows))
    bars = ax.barh(y - 0.2, total, 0.4, label="on disk")
    ax.bar_label(bars, fmt="%.3g", fontsize=7, padding=2)
    if gz.any():
        bars = ax.barh(y + 0.2, gz, 0.4, label="gzip -6")
        ax.bar_label(bars, fmt="%.3g", fontsize=7, padding=2)
    ax.set_yticks(y, [r.variant for r in rows])
    ax.invert_yaxis()
    if total.min() > 0 and total.max() / total.min() > 50:
        ax.set_xscale("log")
    ax.set_xlabel("MB (1 MB = 10⁶ bytes)")
    ax.set_title(f"Size — {report.label}", fontsize=10)
    ax.legend(fontsize=8)
    _save(fig, path)


def plot_load_phases(report: MachineReport, path: Path) -> None:
    """Stacked bars: interpreter, runtime import, artifact load, first prediction (medians, s)."""
    import numpy as np

    variants = [r.variant for r in report.rows if _has_phases(report, r.variant)]
    fig = _figure(len(variants))
    ax = fig.add_subplot()
    left = np.zeros(len(variants))
    for phase in LOAD_PHASES:
        values = []
        for v in variants:
            m = report.run.get(v, "load")
            values.append(m.figures[f"{phase}_s"].value if m is not None else 0.0)
        ax.barh(variants, values, left=left, label=phase.replace("_", " "))
        left += np.array(values)
    ax.invert_yaxis()
    ax.set_xlabel("seconds from process start (median of fresh processes, per phase)")
    ax.set_title(f"Cold load phases — {report.label}", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    _save(fig, path)


def plot_latency_distributions(report: MachineReport, path: Path) -> None:
    """Box plots of the raw batch-1 latency samples per variant (ms, log x; whiskers 5–95 %)."""
    data = [(r.variant, [s * 1e3 for s in _latency_samples(report, r.variant)]) for r in report.rows]
    data = [(v, s) for v, s in data if len(s) > 1]
    fig = _figure(len(data))
    ax = fig.add_subplot()
    ax.boxplot([s for _, s in data], orientation="horizontal", tick_labels=[v for v, _ in data], whis=(5, 95),
               flierprops={"markersize": 2})
    ax.invert_yaxis()
    _log_x(ax)
    ax.set_xlabel("latency per sentence (ms, log scale); box = IQR, whiskers = 5–95 %")
    ax.set_title(f"Latency distributions — {report.label}", fontsize=10)
    ax.grid(True, axis="x", which="both", alpha=0.3)
    _save(fig, path)


SWEEP_PLOT = "accuracy_vs_sparsity"


def plot_accuracy_vs_sparsity(sweep: dict[str, Any], path: Path) -> None:
    """Test and validation accuracy (%) against encoder sparsity (%), from a sweep.json ladder."""
    rows = sweep["levels"]
    x = [r["encoder_sparsity"] * 100 for r in rows]
    fig = _figure(6)
    ax = fig.add_subplot()
    ax.plot(x, [r["test_accuracy"] * 100 for r in rows], marker="o", label="test accuracy")
    ax.plot(x, [r["val_accuracy"] * 100 for r in rows], marker=".", linestyle=":", color="0.5",
            label="validation accuracy")
    for r, xi in zip(rows, x, strict=True):
        ax.annotate(f"{r['compressed_bytes'] / 1e6:.0f} MB", (xi, r["test_accuracy"] * 100),
                    textcoords="offset points", xytext=(0, -13), fontsize=7, ha="center", color="0.35")
    how = "one-shot" if not sweep.get("recover_epochs") else f"{sweep['recover_epochs']} recovery epoch(s)"
    ax.set_xlabel(f"encoder weights pruned (%, {sweep.get('scope', 'global')} magnitude, {how}); "
                  "labels: gzip size")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"Accuracy vs sparsity — {sweep['source']}", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    _save(fig, path)
