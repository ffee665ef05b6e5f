"""`slimbench gate` and `slimbench baseline`: the gate's verdict as Markdown, a run promoted to the
committed baseline, and their command lines.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from slimbench.analysis.gate import Finding, GateResult, check_comparable, fmt, gate, machine_label_of
from slimbench.analysis.gate_rules import (
    load_config,
)
from slimbench.analysis.results import ResultsError, Run, load_run, load_runs, results_text
from slimbench.fsutil import atomic_write_text

# --- rendering ------------------------------------------------------------------------------------

def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(result: GateResult) -> str:
    """The findings as a Markdown table, under a one-line verdict."""
    from tabulate import tabulate

    head = f"### slimbench gate: {'PASS' if result.passed else 'FAIL'}\n\n{_cell(result.summary())}\n"
    if not result.findings:
        return head
    rows = []
    for f in result.findings:
        kind = f"**{f.kind}**" if f.failing else f.kind
        metric = f"{f.metric}.{f.figure}" if f.figure else f.metric
        cells = [kind, f.variant, metric, fmt(f.baseline, f.unit) if f.baseline is not None else "",
                 fmt(f.current, f.unit) if f.current is not None else "", f.change, f.threshold, f.confidence,
                 f.message]
        rows.append([_cell(c) for c in cells])
    table = tabulate(rows, headers=["finding", "variant", "metric", "baseline", "current", "change", "threshold",
                                    "confidence", "note"], tablefmt="github", disable_numparse=True)
    return head + "\n" + table + "\n"


# --- baseline promotion ---------------------------------------------------------------------------

def promote_baseline(results: Path, out: Path, allow_failures: bool = False) -> Run:
    """Validate a results file and write it, re-serialised, to `out` atomically; returns the run."""
    results = Path(results)
    if results.is_dir():
        raise ResultsError(f"{results} is a directory; a baseline is one results file (one run)")
    run = load_run(results)
    failed = [f"{m.variant}/{m.metric}" for m in run.measurements if not m.ok]
    if failed and not allow_failures:
        raise ResultsError(f"{results} has failed measurements ({', '.join(failed)}); a baseline with holes "
                           "gates nothing there: fix them or pass --allow-failures")
    data = json.loads(results.read_text())
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, results_text(data))
    return run


# --- command line ---------------------------------------------------------------------------------

def check_appendable(path: Path, option: str) -> None:
    """Refuse, before any work, a file that cannot be appended to: a directory, or in a missing one."""
    path = Path(path)
    if path.is_dir():
        raise ResultsError(f"{option} {path} is a directory; give a file to append the table to")
    if not path.parent.is_dir():
        raise ResultsError(f"{option} {path}: its directory {path.parent} does not exist")


def cmd_gate(args: argparse.Namespace) -> int:
    if args.step_summary:
        check_appendable(args.step_summary, "--step-summary")
    baseline_path = Path(args.baseline)
    if not baseline_path.is_file():
        raise ResultsError(f"baseline {baseline_path} does not exist; promote a results file with "
                           f"`slimbench baseline RESULTS --out {baseline_path}`")
    config = load_config(args.config)
    baseline = load_run(baseline_path)
    runs = load_runs(args.results)
    notes = {run.source: check_comparable(baseline, run, args.allow_mismatch) for run in runs}
    code = 0
    for run in runs:
        result = gate(baseline, run, config)
        if notes[run.source]:
            result.findings.insert(0, Finding("note", "", "inputs", message=str(notes[run.source])))
        for finding in result.findings:
            print(finding)
        markdown = render_markdown(result)
        print()
        print(markdown)
        if args.step_summary:
            with open(args.step_summary, "a") as fh:
                fh.write(markdown + "\n")
        code = max(code, result.exit_code)
    return code


def cmd_baseline(args: argparse.Namespace) -> int:
    run = promote_baseline(args.results, args.out, allow_failures=args.allow_failures)
    print(f"baseline {args.out} <- {args.results}: {len(run.measurements)} measurements of "
          f"{len(run.variants)} variants, machine {machine_label_of(run)}, commit {str(run.commit.get('id', '?'))[:12]}")
    return 0


def register_cli(sub: Any) -> None:
    """Add `gate` and `baseline` to the `slimbench` command line."""
    p = sub.add_parser("gate", help="compare results with a committed baseline; exit 1 on a regression")
    p.add_argument("results", nargs="+", type=Path, metavar="RESULTS",
                   help="pytest-benchmark JSON files (or directories of them) to gate, each on its own")
    p.add_argument("--baseline", type=Path, required=True, help="the committed baseline results file")
    p.add_argument("--config", type=Path, default=None,
                   help="pyproject.toml holding [tool.slimbench.gate] (default: ./pyproject.toml if present, "
                        "else built-in defaults)")
    p.add_argument("--step-summary", type=Path, default=None, metavar="FILE",
                   help="also append the Markdown table to FILE (e.g. \"$GITHUB_STEP_SUMMARY\")")
    p.add_argument("--allow-mismatch", action="store_true",
                   help="compare even runs measured on another dataset, test set or base model (refused by "
                        "default: the verdict would be meaningless)")
    p.set_defaults(func=cmd_gate)
    p = sub.add_parser("baseline", help="promote a results file to the gate's baseline")
    p.add_argument("results", type=Path, metavar="RESULTS", help="a pytest-benchmark JSON results file")
    p.add_argument("--out", type=Path, default=Path("reports/baseline.json"),
                   help="where the baseline goes (default: reports/baseline.json)")
    p.add_argument("--allow-failures", action="store_true",
                   help="promote even if some measurements failed (they will not be gated)")
    p.set_defaults(func=cmd_baseline)
