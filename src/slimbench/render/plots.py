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

from slimbench.render.grouping import MachineReport
from slimbench.render.rows import LOAD_PHASES
from slimbench.render.verdict import ship_advice

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


def nice_ticks(lo: float, hi: float) -> list[float]:
    """1-2-5 ticks covering [lo, hi] (0.2, 0.5, 1, 2, 5, 10 …): plain numbers a reader can read off a log axis."""
    import math

    if not (lo > 0 and hi > 0):
        return []
    ticks = [m * 10.0 ** e for e in range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1)
             for m in (1, 2, 5)]
    inside = [t for t in ticks if lo <= t <= hi]
    if len(inside) > 8:  # a wide range: decades only
        inside = [t for t in inside if f"{t:g}".lstrip("0.").startswith("1")]
    return [float(f"{t:.6g}") for t in inside]


def _log_x(ax: Any, lo: float, hi: float) -> None:
    """Log x axis over [lo, hi] with plain 1-2-5 tick labels (0.5, 1, 2, 5 rather than 10⁰), no minor labels."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    ax.set_xscale("log")
    ax.set_xlim(lo, hi)
    ax.xaxis.set_major_locator(FixedLocator(nice_ticks(lo, hi)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _padded(values: Sequence[float], factor: float = 1.5) -> tuple[float, float]:
    """A log axis' limits: the data's range widened by `factor` on both sides."""
    pos = [v for v in values if v > 0]
    return (min(pos) / factor, max(pos) * factor) if pos else (0.1, 10.0)


# Offsets (points) tried for a point's label, in order: right, left, above, below, then further out.
LABEL_OFFSETS = ((6, -3, "left"), (-6, -3, "right"), (0, 7, "center"), (0, -13, "center"), (6, 8, "left"),
                 (6, -14, "left"), (-6, 8, "right"), (-6, -14, "right"), (6, 18, "left"), (6, -24, "left"),
                 (-6, 18, "right"), (-6, -24, "right"))


def place_labels(ax: Any, points: Sequence[tuple[str, float, float]],
                 lines: Sequence[Sequence[tuple[float, float]]] = (), avoid: Sequence[Any] = ()) -> list[Any]:
    """Label each (name, x, y) point where its text overlaps no other label, no marker, none of `lines`
    (polylines in data coordinates), none of the `avoid` artists (e.g. the legend) and stays inside the
    axes: the first free offset of LABEL_OFFSETS (else the least-overlapping one)."""
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    axes_box = ax.get_window_extent(renderer)
    markers = []
    for _, x, y in points:
        cx, cy = ax.transData.transform((x, y))
        markers.append((cx - 4, cy - 4, cx + 4, cy + 4))
    obstacles = []  # the lines, as small boxes every few pixels along them, and the artists to avoid
    for artist in avoid:
        bb = artist.get_window_extent(renderer)
        obstacles.append((bb.x0, bb.y0, bb.x1, bb.y1))
    for line in lines:
        pix = [tuple(ax.transData.transform(p)) for p in line]
        for (x0, y0), (x1, y1) in zip(pix, pix[1:], strict=False):
            steps = max(1, int(max(abs(x1 - x0), abs(y1 - y0)) / 3))
            for k in range(steps + 1):
                px, py = x0 + (x1 - x0) * k / steps, y0 + (y1 - y0) * k / steps
                obstacles.append((px - 1.5, py - 1.5, px + 1.5, py + 1.5))
    placed: list[tuple[float, float, float, float]] = []
    texts = []

    def overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
        w = min(a[2], b[2]) - max(a[0], b[0])
        h = min(a[3], b[3]) - max(a[1], b[1])
        return w * h if w > 0 and h > 0 else 0.0

    for i, (name, x, y) in enumerate(points):
        best: tuple[float, Any, tuple[float, float, float, float]] | None = None
        for dx, dy, ha in LABEL_OFFSETS:
            text = ax.annotate(name, (x, y), textcoords="offset points", xytext=(dx, dy), fontsize=8, ha=ha,
                               bbox={"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.8})
            bb = text.get_window_extent(renderer)
            box = (bb.x0 - 1, bb.y0 - 1, bb.x1 + 1, bb.y1 + 1)
            cost = (sum(overlap(box, p) for p in placed) + sum(overlap(box, m) for j, m in enumerate(markers) if j != i)
                    + sum(overlap(box, o) for o in obstacles))
            outside = (box[0] < axes_box.x0 or box[2] > axes_box.x1 or box[1] < axes_box.y0 or box[3] > axes_box.y1)
            cost += 1e6 if outside else 0.0
            if best is None or cost < best[0]:
                if best is not None:
                    best[1].remove()
                best = (cost, text, box)
            else:
                text.remove()
            if cost == 0:
                break
        assert best is not None  # LABEL_OFFSETS is not empty
        placed.append(best[2])
        texts.append(best[1])
    return texts


def _save(fig: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, metadata={"Software": None})  # no version stamp: same data, same bytes


def plot_accuracy_vs_latency(report: MachineReport, path: Path) -> None:
    """Accuracy (%) against p50 latency (ms, log x); the Pareto front as a staircase; labels placed
    where they overlap nothing."""
    points = sorted(_accuracy_points(report), key=lambda p: p[1])
    front = ship_advice(report.rows).latency_front
    on_front = {p.variant for p in front}
    fig = _figure(len(points))
    ax = fig.add_subplot()
    for name, x, y in points:
        ax.scatter([x], [y], color="C0" if name in on_front else "0.55", zorder=3)
    stairs = []
    for a, b in zip(front, front[1:], strict=False):
        stairs += [(a.latency_s * 1e3, a.accuracy * 100), (b.latency_s * 1e3, a.accuracy * 100)]
    legend = None
    if front:
        stairs.append((front[-1].latency_s * 1e3, front[-1].accuracy * 100))
        ax.step([p.latency_s * 1e3 for p in front], [p.accuracy * 100 for p in front], where="post",
                linestyle="--", color="C0", label="Pareto front: nothing else is faster and more accurate")
        legend = ax.legend(loc="best", fontsize=8)
    _log_x(ax, *_padded([x for _, x, _ in points], 1.6))
    ys = [y for _, _, y in points]
    if ys:
        pad = max(0.5, (max(ys) - min(ys)) * 0.08)
        ax.set_ylim(min(ys) - pad, max(ys) + 2 * pad)  # room above the top row for labels and the legend
    ax.set_xlabel("p50 latency per sentence, batch 1 (ms, log scale)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title("Accuracy vs latency", fontsize=11)
    ax.grid(True, which="major", alpha=0.3)
    fig.canvas.draw()  # settle the layout, then place the labels in its final coordinates
    fig.set_layout_engine("none")
    place_labels(ax, points, [stairs] if stairs else [], [legend] if legend is not None else [])
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
        lo, hi = _padded([*total, *(gz[gz > 0])], 1.3)
        _log_x(ax, lo, hi * 1.6)  # room for the bar labels
        ax.set_xlabel("MB (1 MB = 10⁶ bytes, log scale)")
    else:
        ax.set_xlabel("MB (1 MB = 10⁶ bytes)")
    ax.set_title("Size on disk and gzip-compressed", fontsize=11)
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
    ax.set_title("Cold load: process start to first prediction", fontsize=11)
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
    _log_x(ax, *_padded([x for _, s in data for x in s], 1.2))
    ax.set_xlabel("latency per sentence (ms, log scale); box = IQR, whiskers = 5–95 %")
    ax.set_title("Latency per sentence, batch 1", fontsize=11)
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
    # each rung's gzip size on a second axis along the top, rather than as labels among the lines
    top = ax.secondary_xaxis("top")
    top.set_xticks(x, [f"{r['compressed_bytes'] / 1e6:.0f}" for r in rows], fontsize=8, color="0.35")
    top.set_xlabel("gzip size (MB)", fontsize=8, color="0.35")
    how = "one-shot" if not sweep.get("recover_epochs") else f"{sweep['recover_epochs']} recovery epoch(s)"
    ax.set_xlabel(f"encoder weights pruned (%, {sweep.get('scope', 'global')} magnitude, {how})")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"Accuracy vs sparsity: {sweep['source']}", fontsize=11)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    _save(fig, path)


# --- from the build manifests: training curves and quantization sensitivity -------------------------

TRAINING_PLOT = "training_curves"
SENSITIVITY_PLOT = "quantization_sensitivity"
MANIFEST_PLOT_TITLES = {TRAINING_PLOT: "Training curves: loss and validation accuracy per epoch",
                        SENSITIVITY_PLOT: "Per-layer sensitivity to INT4 weights (validation split)"}


def _histories(manifests: dict[str, dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """variant -> its training history (epochs with train_loss and val_accuracy), trained variants only."""
    out = {}
    for name, m in manifests.items():
        history = (m.get("training") or {}).get("history") or []
        rows = [h for h in history if isinstance(h, dict) and {"epoch", "train_loss", "val_accuracy"} <= set(h)]
        if rows:
            out[name] = rows
    return out


def _sensitivities(manifests: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {name: m["nbits"]["sensitivity"] for name, m in manifests.items()
            if isinstance((m.get("nbits") or {}).get("sensitivity"), dict)}


def manifest_plot_plan(manifests: dict[str, dict[str, Any]]) -> list[str]:
    """The manifest plots these builds support, in report order."""
    return [kind for kind, ok in ((TRAINING_PLOT, bool(_histories(manifests))),
                                  (SENSITIVITY_PLOT, bool(_sensitivities(manifests)))) if ok]


def plot_training_curves(manifests: dict[str, dict[str, Any]], path: Path) -> None:
    """Training loss and validation accuracy per epoch of every trained variant (the best epoch kept
    is marked)."""
    histories = _histories(manifests)
    fig = _figure(7, width=9.0)
    loss_ax, acc_ax = fig.subplots(1, 2)
    for name, rows in histories.items():
        epochs = [h["epoch"] for h in rows]
        line, = loss_ax.plot(epochs, [h["train_loss"] for h in rows], marker="o", label=name)
        acc_ax.plot(epochs, [100 * h["val_accuracy"] for h in rows], marker="o", color=line.get_color(), label=name)
        best = (manifests[name].get("training") or {}).get("best_epoch")
        kept = [h for h in rows if h["epoch"] == best]
        if kept:
            acc_ax.plot([best], [100 * kept[0]["val_accuracy"]], marker="*", markersize=12, color=line.get_color())
    loss_ax.set_xlabel("epoch")
    loss_ax.set_ylabel("training loss (mean over the epoch)")
    acc_ax.set_xlabel("epoch")
    acc_ax.set_ylabel("validation accuracy (%); * the epoch kept")
    for ax in (loss_ax, acc_ax):
        ax.grid(True, alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    acc_ax.legend(fontsize=7, loc="lower right")
    fig.suptitle(MANIFEST_PLOT_TITLES[TRAINING_PLOT], fontsize=11)
    _save(fig, path)


def plot_sensitivity(manifests: dict[str, dict[str, Any]], path: Path) -> None:
    """For each variant with a sensitivity table: per layer (most sensitive first), the validation
    loss increase and accuracy drop with that layer alone at INT4."""
    tables = _sensitivities(manifests)
    n = max(len(t["layers"]) for t in tables.values())
    fig = _figure(n // 2 + 2, width=9.0)
    axes = fig.subplots(len(tables), 2, squeeze=False)
    for (name, table), (loss_ax, acc_ax) in zip(tables.items(), axes, strict=True):
        rows = table["layers"]
        labels = [r["unit"].removeprefix("bert.").replace("encoder.layer.", "L").replace("attention.", "attn.")
                  for r in rows]
        y = list(range(len(rows)))
        loss_ax.barh(y, [r["loss_increase"] for r in rows], color="C0")
        acc_ax.barh(y, [r["accuracy_drop"] for r in rows], color="C3")
        for ax in (loss_ax, acc_ax):
            ax.set_yticks(y, labels, fontsize=6)
            ax.invert_yaxis()
            ax.grid(True, axis="x", alpha=0.3)
            ax.axvline(0, color="0.3", linewidth=0.8)
            ax.xaxis.get_major_locator().set_params(nbins=5)
        acc_ax.set_yticklabels([])
        loss_ax.set_xlabel(f"{name}: validation loss increase")
        acc_ax.set_xlabel(f"accuracy drop (points; {table.get('texts', '?')} texts, 1 text = "
                          f"{100 / max(1, table.get('texts', 1)):.2f})")
    fig.suptitle(MANIFEST_PLOT_TITLES[SENSITIVITY_PLOT], fontsize=11)
    _save(fig, path)


def draw_manifest_plots(manifests: dict[str, dict[str, Any]], out_dir: Path) -> dict[str, str]:
    """Draw the manifest plots under out_dir/plots; kind -> path relative to the report."""
    draw = {TRAINING_PLOT: plot_training_curves, SENSITIVITY_PLOT: plot_sensitivity}
    out = {}
    for kind in manifest_plot_plan(manifests):
        rel = f"{PLOT_DIR}/{kind}.png"
        draw[kind](manifests, Path(out_dir) / rel)
        out[kind] = rel
    return out
