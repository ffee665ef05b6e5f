"""`slimbench run` and `slimbench.run()`: build what is missing, measure, write results and a report,
in one step, from any folder.

Both run the benchmark suite that ships in the package (`slimbench.suite`) with pytest in a child
process -- the same plugin, the same measuring session and the same records as `pytest bench` -- so
the results file is the one `slimbench report`, `gate` and pytest-benchmark read; then they render
the report from that file. The child keeps training, imports and memory out of the caller's process
(a notebook stays as it was).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from slimbench.errors import SlimbenchError
from slimbench.measure.settings import KNOBS, MeasureSettings, add_knobs

SUITE = Path(__file__).resolve().parent / "suite"
DEFAULT_OUT = Path("slimbench-out")


class RunError(SlimbenchError):
    """`slimbench run` cannot start: an output path or an input is unusable."""


@dataclass(frozen=True)
class VariantRow:
    """One variant's figures from a run: {figure: value} in the unit `units` names, and its failures."""

    variant: str
    figures: Mapping[str, float]
    units: Mapping[str, str]
    samples: Mapping[str, int]
    failures: Mapping[str, str] = field(default_factory=dict)  # metric -> why it failed


@dataclass(frozen=True)
class RunResult:
    """What `slimbench.run()` returns: where the files are, the rows, the ratios and the verdict."""

    out_dir: Path
    results_path: Path
    report_path: Path
    summary: Mapping[str, Any]
    exit_code: int  # 0: every measurement succeeded

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    @property
    def rows(self) -> list[VariantRow]:
        by: dict[str, dict[str, Any]] = {}
        for r in self.summary.get("records", []):
            row = by.setdefault(r["variant"], {"figures": {}, "units": {}, "samples": {}, "failures": {}})
            if r.get("status") == "ok" and r.get("value") is not None:
                row["figures"][r["figure"]] = float(r["value"])
                row["units"][r["figure"]] = r.get("unit") or ""
                row["samples"][r["figure"]] = int(r.get("n") or 0)
            elif r.get("status") != "ok":
                row["failures"][r.get("metric") or r["figure"]] = r.get("error") or "failed"
        return [VariantRow(name, **parts) for name, parts in by.items()]

    @property
    def ratios(self) -> dict[str, dict[str, Any]]:
        """{variant: {speedup, size_ratio, memory_ratio, accuracy_ratio, ...}}: each variant against
        `standard`, measured in the same run (the report's ratio table)."""
        return {r["variant"]: {k: v for k, v in r.items() if k not in ("machine", "variant")}
                for r in self.summary.get("ratios_vs_standard", []) if isinstance(r, Mapping)}

    @property
    def verdict(self) -> str | None:
        """The report's ship verdict, as sentences (None when the run could not make one)."""
        v = self.summary.get("verdict")
        if isinstance(v, list):
            v = v[0] if v else None
        if isinstance(v, Mapping):
            text = v.get("text") or v.get("lines") or v.get("sentence")
            return "\n".join(text) if isinstance(text, list) else text
        return v if isinstance(v, str) else None

    def to_markdown(self) -> str:
        return self.report_path.read_text(encoding="utf-8")


Printer = Callable[[str], None]


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run(base: str | os.PathLike[str] | None = None, dataset: str | os.PathLike[str] | None = None, *,
        text_column: str | None = None, label_column: str | None = None,
        test_file: str | os.PathLike[str] | None = None, max_length: int | str | None = None,
        variants: str | Sequence[str] | None = None,
        out: str | os.PathLike[str] = DEFAULT_OUT, cache: str | os.PathLike[str] | None = None,
        models: str | os.PathLike[str] | None = None, build: bool = True,
        settings: MeasureSettings | None = None, log: Printer | None = _stderr, **knobs: Any) -> RunResult:
    """Build the variants that are missing, measure them and write OUT/results.json and OUT/REPORT.md.

    Inputs left out come from ./slimbench.toml or ./pyproject.toml's [tool.slimbench], else the
    defaults (the pinned MiniLM and the movie-review dataset). Measuring knobs: a `settings`, or
    keyword arguments named as `MeasureSettings`' fields (e.g. `latency_rounds=20`). `log` receives
    the progress lines (None: silent)."""
    if settings is not None and knobs:
        raise RunError("give either settings=MeasureSettings(...) or knob keyword arguments, not both")
    known = {f.name for f in fields(MeasureSettings)}
    unknown = sorted(set(knobs) - known)
    if unknown:
        raise RunError(f"unknown argument{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; measuring knobs: "
                       f"{', '.join(sorted(known))}")
    settings = settings or MeasureSettings(**knobs)  # validated here, before anything runs
    if isinstance(variants, (list, tuple)):
        variants = ",".join(variants)
    inputs = {"base": base, "dataset": dataset, "text-column": text_column, "label-column": label_column,
              "test-file": test_file, "max-length": max_length, "variants": variants, "cache": cache,
              "models": models}
    return execute(Path(out), {k: str(v) for k, v in inputs.items() if v is not None}, settings, build, log)


def load_predictor(artifact_dir: str | os.PathLike[str], threads: int = 1) -> Any:
    """A built variant as seed 001's predictor: `predict(texts)` -> [{group: value}] (none values
    left out unless include_none=True), `predict_proba(texts)` -> [{group: {value: p}}]. See
    `slimbench.runtimes.predictor.Predictor` and docs/multilabel.md."""
    from slimbench.runtimes.predictor import Predictor

    return Predictor(Path(artifact_dir), threads)


def execute(out: Path, inputs: Mapping[str, str], settings: MeasureSettings, build: bool,
            log: Printer | None) -> RunResult:
    """The run itself: the suite in a child pytest, then the report."""
    results, report = _prepare_out(out)
    cmd = [sys.executable, "-m", "pytest", str(SUITE), "-c", str(SUITE / "pytest.ini"), "--rootdir", str(SUITE),
           "--benchmark-only", f"--benchmark-json={results}", "--benchmark-quiet", "-q", "--no-header", "-p",
           "no:randomly"]
    for key, value in inputs.items():
        if key in ("base", "dataset", "test-file", "cache", "models") and Path(value).expanduser().exists():
            value = str(Path(value).expanduser().resolve())  # the child runs elsewhere
        cmd += [f"--slimbench-{key}", value]
    for knob in KNOBS:
        value = getattr(settings, knob.name)
        if value != knob.default:
            cmd += [knob.flag("slimbench-")] if knob.kind == "flag" else [knob.flag("slimbench-"), str(value)]
    if not build:
        cmd.append("--slimbench-no-build")
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    code = _stream(cmd, env, log)
    if not results.is_file():
        raise RunError(f"the benchmark run wrote no results (pytest exit {code}); the lines above say why")
    import contextlib
    import io

    from slimbench.render.command import register_cli

    parser = argparse.ArgumentParser(prog="slimbench")
    register_cli(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["report", str(results), "--out", str(out)])
    said = io.StringIO()
    with contextlib.redirect_stdout(said):
        args.func(args)
    if log is not None:
        for line in said.getvalue().splitlines():
            log(line)
    summary_path = out / "summary.json"
    summary = json.loads(summary_path.read_text(encoding="utf-8")) if summary_path.is_file() else {}
    return RunResult(out, results, report, summary, 0 if code == 0 else 1)


def _prepare_out(out: Path) -> tuple[Path, Path]:
    """Check (and make) the output folder before anything is built or measured."""
    if out.exists() and not out.is_dir():
        raise RunError(f"--out {out} is a file; give a folder (nothing was built or measured)")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise RunError(f"--out {out}: cannot create it: {err.strerror or err} (nothing was built or measured)") from None
    if not os.access(out, os.W_OK):
        raise RunError(f"--out {out} is not writable (nothing was built or measured)")
    return (out / "results.json").resolve(), (out / "REPORT.md").resolve()


def _stream(cmd: Sequence[str], env: Mapping[str, str], log: Printer | None) -> int:
    """Run `cmd`, passing its output on; stop it too on Ctrl-C or SIGTERM. Progress bars (lines the
    child redraws with a carriage return) reach the command line's stderr as they are, so they redraw
    in place; a `log` of the caller's gets whole lines only, without the redraws."""
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=dict(env)) as proc:
        assert proc.stdout is not None
        try:
            _pass_on(proc.stdout, log)
        except BaseException:
            proc.terminate()  # the child publishes what it measured, marked incomplete
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
            raise
    return proc.returncode


def _pass_on(stream: Any, log: Printer | None) -> None:
    raw = log is _stderr  # the command line's own printer: the terminal draws the bars
    pending = b""
    while chunk := stream.read1(65536):
        if raw:
            sys.stderr.buffer.write(chunk)
            sys.stderr.flush()
            continue
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            text = line.decode("utf-8", "replace").rsplit("\r", 1)[-1]  # a redrawn line: its last state
            if log is not None and text.strip():
                log(text)
    if not raw and log is not None and pending.strip():
        log(pending.decode("utf-8", "replace").rsplit("\r", 1)[-1])


# --- command line ---------------------------------------------------------------------------------

def cmd_run(args: argparse.Namespace) -> int:
    from slimbench.measure.settings import SettingsError

    try:
        settings = MeasureSettings.from_options(lambda name: getattr(args, name))
    except SettingsError as err:
        raise RunError(str(err)) from None
    inputs = {flag: getattr(args, flag.replace("-", "_")) for flag in
              ("base", "dataset", "text-column", "label-column", "test-file", "max-length", "variants", "cache",
               "models")}
    result = execute(args.out, {k: str(v) for k, v in inputs.items() if v is not None}, settings,
                     not args.no_build, _stderr)
    verdict = result.verdict
    if verdict:
        print(verdict)
    print(f"slimbench run: {'done' if result.ok else 'some measurements failed (see the report)'}; "
          f"report {result.report_path}, results {result.results_path}")
    return result.exit_code


def register_cli(sub: Any) -> None:
    from slimbench.commands.options import add_inputs

    p = sub.add_parser(
        "run", help="build what is missing, benchmark it and write results.json and REPORT.md, in one step",
        description="Build the variants that are not built yet (from your checkpoint with --base, else the pinned "
                    "MiniLM), measure them -- size, start-up, latency, throughput, peak memory, accuracy, each "
                    "variant in its own worker processes, interleaved -- and write OUT/results.json and "
                    "OUT/REPORT.md. Inputs not given here come from ./slimbench.toml or ./pyproject.toml's "
                    "[tool.slimbench]. Exit 1 when a measurement failed (the report says which).")
    add_inputs(p.add_argument)
    p.add_argument("--variants", default=None, help="comma-separated variants (default: the whole zoo)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT,
                   help=f"folder for results.json, REPORT.md, summary.json and plots (default: {DEFAULT_OUT})")
    p.add_argument("--no-build", action="store_true", help="fail a variant that is not built instead of building it")
    add_knobs(p.add_argument)
    p.set_defaults(func=cmd_run)
