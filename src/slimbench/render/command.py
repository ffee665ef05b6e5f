"""`slimbench report`: REPORT.md, its plots and summary.json written to a folder from saved
results files; the command line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from slimbench.analysis.results import Run, load_runs
from slimbench.fsutil import atomic_write_text
from slimbench.render.grouping import group_runs
from slimbench.render.plots import (
    MANIFEST_PLOT_TITLES,
    PLOT_DIR,
    SWEEP_PLOT,
    draw_manifest_plots,
    draw_plots,
    plot_accuracy_vs_sparsity,
    plot_files,
)
from slimbench.render.report import incomplete_note, render_reports
from slimbench.render.rows import ALL_COLUMNS, Column
from slimbench.render.summary import summary_document
from slimbench.render.tables import MAIN_COLUMNS, ReportError, parse_columns

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
    from slimbench.cache.paths import artifacts_dir

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
        from slimbench.analysis.results import load_sweep

        sweep = load_sweep(sweep_path)
    from slimbench.analysis.gate_rules import load_config

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
