"""`slimbench compare`: the comparison as Markdown and JSON, the re-measurement of a timing
regression before it fails, and the command line. The sides, the measuring and the judging are
`slimbench.commands.ab`'s.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from slimbench.analysis.gate import fmt
from slimbench.analysis.judge import IMPROVEMENT, INCONCLUSIVE, REGRESSION
from slimbench.commands.ab import (
    COMPARE_WORKER_PROCESSES,
    CONFIRM_SHARE,
    CONFIRMED_FIGURES,
    CORE,
    DEFAULT_FLOORS,
    MIN_ROUNDS,
    SCHEMA,
    CompareError,
    Settings,
    Side,
    Verdict,
    confirm_floors,
    confirm_verdicts,
    flagged_for_confirmation,
    judge_all,
    log_line,
    measure,
    observation_errors,
    peak_rss_samples,
    resolve_side,
    start_rounds,
)
from slimbench.fsutil import atomic_write_text
from slimbench.measure.session import Observations
from slimbench.measure.settings import MeasureSettings

# --- rendering ------------------------------------------------------------------------------------

def _in_points(v: Verdict) -> bool:
    """Accuracy (and a label group's, `accuracy:GROUP`) changes by points, not by a ratio."""
    return v.figure == "accuracy" or v.figure.startswith("accuracy:")


def _change(v: Verdict) -> str:
    if v.change is None:
        return "—"
    if _in_points(v):
        text = f"{v.change * 100:+.2f} points"
        if v.low is not None and v.high is not None:
            text += f" [{v.low * 100:+.1f}, {v.high * 100:+.1f}]"
        return text
    text = f"{(v.change - 1) * 100:+.1f} %"
    if v.low is not None and v.high is not None:
        text += f" [{(v.low - 1) * 100:+.1f}, {(v.high - 1) * 100:+.1f}]"
    return text


MARK = {REGRESSION: "✗ regression", IMPROVEMENT: "✓ improvement", INCONCLUSIVE: "? inconclusive", None: "="}


def _confirm_text(v: Verdict) -> str:
    """What the re-measurement of a timing regression found ("" if it was not re-measured)."""
    if v.confirm is None:
        return ""
    again = replace(v, change=v.confirm["change"], low=v.confirm["low"], high=v.confirm["high"])
    where = "a second run" if v.confirm.get("run", 2) == 2 else f"run {v.confirm['run']}"
    seen = f"{_change(again)} in {where}" if v.confirm["change"] is not None else f"no figure in {where}"
    return f"{'confirmed' if v.kind == REGRESSION else 'not confirmed'}: {seen}"


def _verdict_text(v: Verdict) -> str:
    return MARK[v.kind] + (f" ({_confirm_text(v)})" if v.confirm is not None else "")


def render_markdown(verdicts: Sequence[Verdict], errors: Mapping[str, str], header: str) -> str:
    from tabulate import tabulate

    rows = [[v.variant, v.figure, fmt(v.baseline, v.unit), fmt(v.candidate, v.unit), _change(v),
             v.n, f"{v.floor * 100:g} points" if _in_points(v) else f"{v.floor * 100:g} %",
             _verdict_text(v)] for v in verdicts]
    table = tabulate(rows, headers=["variant", "figure", "baseline", "candidate", "change [95 % CI]", "n",
                                    "floor", "verdict"], tablefmt="github", disable_numparse=True)
    lines = [header, "", table]
    if errors:
        lines += ["", "Failed (not compared):", ""] + [f"- `{k}`: {e}" for k, e in errors.items()]
    return "\n".join(lines) + "\n"


def _finding_line(v: Verdict) -> str:
    line = (f"{(v.kind or 'same').upper():<12} {v.variant} {v.figure}: {fmt(v.baseline, v.unit)} → "
            f"{fmt(v.candidate, v.unit)} ({_change(v)}); floor {v.floor * 100:g} %; {v.how}, n={v.n}")
    return line if v.confirm is None else f"{line}; {_confirm_text(v)}"


# --- command line ---------------------------------------------------------------------------------

def _parse_pairs(items: Sequence[str], what: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in items:
        name, _, value = item.partition("=")
        try:
            out[name] = float(value)
        except ValueError:
            raise CompareError(f"{what} expects NAME=NUMBER, got {item!r}") from None
        if not name or not math.isfinite(out[name]) or out[name] < 0:
            raise CompareError(f"{what} expects NAME=NUMBER with a finite, non-negative number, got {item!r}")
    return out


def _settings(args: argparse.Namespace) -> Settings:
    from slimbench.measure.settings import SettingsError

    floors = dict(DEFAULT_FLOORS)
    for name, value in _parse_pairs(args.floor, "--floor").items():
        if name not in floors:
            raise CompareError(f"--floor: unknown figure {name!r}; known: {', '.join(floors)}")
        if not value > 0:
            raise CompareError(f"--floor {name}={value:g} would call any change a regression; give a fraction > 0")
        floors[name] = value
    if args.confirm < 0:
        raise CompareError(f"--confirm must be >= 0, got {args.confirm}")
    try:
        measured = MeasureSettings.from_options(lambda name: getattr(args, name))
    except SettingsError as err:
        raise CompareError(str(err)) from None
    return Settings(measure=measured, confirm=args.confirm, accuracy=not args.no_accuracy, probes=not args.no_probes,
                    floors=floors)


def _header(status: str, variants: Sequence[str], sides: Sequence[Side], st: Settings, elapsed: float,
            steal: Mapping[str, float] | None = None) -> str:
    """The verdict line and how the comparison was measured."""
    from slimbench.render.method import steal_text

    ms = st.measure
    most = max(ms.latency_rounds, ms.latency_max_rounds)
    return (f"## slimbench compare: {status}\n\n{len(variants)} variants, baseline `{sides[0].checkout}` vs "
            f"candidate `{sides[1].checkout}`, measured interleaved in one run ({ms.latency_rounds}–{most} latency "
            f"rounds (more while a change's 95 % CI is wider than ±{ms.latency_ci:.0%}) of "
            f"{ms.latency_block} calls, the first two discarded, "
            + ("the other workers stopped meanwhile" if ms.settle_s == 0 else f"{ms.settle_s * 1e3:.0f} ms apart")
            + f", a variant faster than {ms.latency_min_block_ms:g} ms a block repeating its sentences; "
            f"{ms.worker_processes} worker process{'es' if ms.worker_processes > 1 else ''} per side and variant, the "
            "rounds alternating between them; "
            + (f"{ms.probe_counts()[0]}–{ms.probe_counts()[1]} start-up samples per side, the first the workers' own"
               if st.probes else "start-up samples from the workers' own start-ups only")
            + ", a variant's two sides starting together, one per core; "
            f"{ms.threads} threads; "
            f"{elapsed:.0f} s). Change = candidate / baseline, paired by round, with its 95 % bootstrap CI; "
            "a regression is beyond the floor and significant"
            + (f", and a timing regression (p50, p90, batch) must be found again -- a significant slowdown beyond "
               f"{CONFIRM_SHARE:.0%} of the floor -- when its variant is measured again in "
               f"{'a second run' if st.confirm == 1 else f'{st.confirm} more runs'}" if st.confirm else "")
            + "." + steal_text(steal or {}))


def _rounds_doc(m: Observations | None) -> dict[str, Any] | None:
    if m is None:
        return None
    return {"latency": m.latency.blocks if m.latency else {}, "throughput": m.throughput.blocks if m.throughput else {}}


def _write_json(out: Path, sides: Sequence[Side], variants: Sequence[str], extra: Mapping[str, float], st: Settings,
                measured: Observations, verdicts: Sequence[Verdict], status: str, elapsed: float,
                again: Observations | None = None) -> None:
    """The whole comparison, raw rounds included, written atomically."""
    keys = [s.key(v) for v in variants for s in sides]
    doc = {"slimbench_compare_schema": SCHEMA, "status": status, "elapsed_s": elapsed,
           "baseline": str(sides[0].checkout), "candidate": str(sides[1].checkout),
           "candidate_extra_work": dict(extra), "variants": list(variants), "settings": asdict(st),
           "seconds": measured.seconds, "steal": measured.steal, "errors": observation_errors(measured), "repeat": measured.repeat,
           "verdicts": [asdict(v) for v in verdicts], "rounds": _rounds_doc(measured),
           "start_s": {k: [r[0] if r else None for r in start_rounds(measured, k)] for k in keys},
           "peak_rss_bytes": {k: peak_rss_samples(measured, k) for k in keys},
           "confirm_rounds": _rounds_doc(again)}
    atomic_write_text(out, json.dumps(doc, indent=1))


def _check_outputs(args: argparse.Namespace) -> None:
    """Every output path, before anything is measured: a compare takes minutes, and a path that
    cannot be written would lose them at the end."""
    for flag, path in (("--out", args.out), ("--markdown", args.markdown), ("--step-summary", args.step_summary)):
        if path is None:
            continue
        if path.is_dir():
            raise CompareError(f"{flag} {path} is a directory; give a file path (nothing was measured)")
        parent = path.parent if str(path.parent) else Path(".")
        if not parent.is_dir() or not os.access(parent, os.W_OK):
            raise CompareError(f"{flag} {path}: directory {parent} does not exist or is not writable; create it "
                               "first (nothing was measured)")


def _variant_names(spec: str, candidate: Path) -> list[str]:
    from slimbench.spec.zoo import Zoo, checkout_models_dir

    if spec.strip() in ("core", "all"):
        names = list(Zoo.load(checkout_models_dir(candidate)).names)
        return [v for v in names if spec.strip() == "all" or v in CORE]
    names = [v.strip() for v in spec.split(",") if v.strip()]
    if not names:
        raise CompareError(f"--variants {spec!r} names no variant; name at least one variant, `core` or `all`")
    return names


def cmd_compare(args: argparse.Namespace) -> int:
    from slimbench.commands.options import use_cache_root
    from slimbench.data import load_dataset

    started = time.perf_counter()
    st = _settings(args)
    _check_outputs(args)
    extra = _parse_pairs(args.candidate_extra_work, "--candidate-extra-work")
    sides = (Side("baseline", args.baseline.resolve()), Side("candidate", args.candidate.resolve(), extra))
    variants = _variant_names(args.variants or "core", sides[1].checkout)
    unknown = [v for v in extra if v not in variants]
    if unknown:
        raise CompareError(f"--candidate-extra-work names {', '.join(unknown)}, not among the compared variants")
    # each side resolves its artifacts in its own checkout: paths given relative to here must not
    # be read relative to there
    dataset, base = (str(Path(v).resolve()) if v and Path(v).exists() else v for v in (args.dataset, args.base))
    list_args = ["--dataset", dataset, "--text-column", args.text_column, "--label-column", args.label_column]
    if args.cache:
        list_args += ["--cache", str(args.cache.resolve())]
    if base:
        list_args += ["--base", base]
    if args.test_file:
        list_args += ["--test-file", str(args.test_file.resolve())]
    if args.max_length:
        list_args += ["--max-length", str(args.max_length)]
    use_cache_root(args.cache)
    # The two sides resolve their artifacts in child processes while this one reads the dataset.
    with ThreadPoolExecutor(max_workers=2) as ex:
        resolving = {s.name: ex.submit(resolve_side, s, variants, list_args) for s in sides}
        splits = load_dataset(args.dataset, args.text_column, args.label_column, args.test_file)
        artifacts = {name: f.result() for name, f in resolving.items()}
    texts = [e.text for e in splits.test]
    gold = [e.target for e in splits.test]  # with label groups: a tuple of per-group indices each
    measured = measure(sides, artifacts, variants, texts, st)
    verdicts = judge_all(sides, artifacts, variants, gold, splits.num_labels, measured, st, splits.groups)
    again: Observations | None = None
    if st.confirm and (flagged := flagged_for_confirmation(verdicts)):
        verdicts, again = _confirm(sides, artifacts, flagged, texts, gold, splits.num_labels, st, verdicts, measured)
    elapsed = time.perf_counter() - started
    regressions = [v for v in verdicts if v.failing]
    errors = observation_errors(measured)
    status = "FAIL" if regressions or errors or not verdicts else "PASS"
    header = _header(status, variants, sides, st, elapsed, measured.steal)
    markdown = render_markdown(verdicts, errors, header)
    for v in verdicts:
        if v.kind:
            print(_finding_line(v))
    for key, err in errors.items():
        print(f"FAILED       {key}: {err}")
    print(f"slimbench compare: {status} — {len(regressions)} regression(s), "
          f"{sum(v.kind == INCONCLUSIVE for v in verdicts)} inconclusive, {len(verdicts)} figures compared, "
          f"{len(errors)} failed, in {elapsed:.0f} s")
    if args.markdown:
        atomic_write_text(args.markdown, markdown)
    if args.step_summary:
        with open(args.step_summary, "a") as f:
            f.write(markdown)
    if args.out:
        _write_json(args.out, sides, variants, extra, st, measured, verdicts, status, elapsed, again)
    return 1 if status == "FAIL" else 0


def _confirm(sides: Sequence[Side], artifacts: Mapping[str, Mapping[str, Path]], flagged: Sequence[str],
             texts: Sequence[str], gold: Sequence[Any], num_labels: int, st: Settings, verdicts: Sequence[Verdict],
             measured: Observations) -> tuple[list[Verdict], Observations]:
    """Measure the variants with a timing regression again -- new workers, new interleaved rounds,
    the same settings, no probes or accuracy (deterministic or not re-judged) -- `st.confirm` times;
    a regression stands only if every re-measurement finds it. A variant that fails while re-measured
    is a failed variant, as in the first run."""
    t = time.perf_counter()
    again = Observations()
    for attempt in range(st.confirm):
        log_line(f"compare: timing regression in {', '.join(flagged)}; measuring {'it' if len(flagged) == 1 else 'them'} "
             f"again ({attempt + 1}/{st.confirm}) before failing")
        batch = any(v.failing and v.figure == "batch" for v in verdicts)  # throughput rounds only if needed
        again = measure(sides, artifacts, flagged, texts, st, metrics=["latency"] + (["throughput"] if batch else []))
        measured.errors.update(observation_errors(again))
        # judged by the re-measurement's own bar: a significant slowdown beyond part of the floor
        redone = [v for v in judge_all(sides, artifacts, flagged, gold, num_labels, again,
                                       replace(st, floors=confirm_floors(st.floors)))
                  if v.figure in CONFIRMED_FIGURES]
        verdicts = confirm_verdicts(verdicts, redone, flagged, run=attempt + 2)
        for phase, steal in again.steal.items():
            measured.steal[f"confirm {phase}"] = steal
        if not (flagged := flagged_for_confirmation(verdicts)):
            break
    measured.seconds["confirm"] = time.perf_counter() - t
    return list(verdicts), again


def register_cli(sub: Any) -> None:
    from slimbench.commands.options import add_inputs
    from slimbench.measure.settings import add_knobs

    p = sub.add_parser(
        "compare", help="paired A/B: measure a baseline and a candidate checkout interleaved; exit 1 on a regression",
        description="Measure two builds of the zoo -- BASELINE and CANDIDATE, each a slimbench checkout whose "
                    "variants are built -- interleaved in one run on this machine, and judge every figure: "
                    "latency/throughput/start-up by the paired ratio and its CI against a floor calibrated from "
                    "A/A runs, size/parameters/accuracy exactly. Exit 1 on a regression or a failed variant. "
                    "The measuring options are those of `slimbench run` and `pytest bench` (there spelled "
                    "--slimbench-NAME), with the same defaults except one that its floors were calibrated with: "
                    f"{COMPARE_WORKER_PROCESSES} worker processes per variant and side.")
    p.add_argument("--baseline", type=Path, required=True, help="the baseline checkout (its root, with src/slimbench)")
    p.add_argument("--candidate", type=Path, default=Path("."), help="the candidate checkout (default: .)")
    p.add_argument("--variants", default=None,
                   help=f"comma-separated variants, `core` ({', '.join(CORE)}; the default) or `all`")
    add_knobs(p.add_argument)
    p.add_argument("--no-probes", action="store_true",
                   help="no fresh-process probes beyond the timing workers' own start-ups (start-up and peak RSS "
                        f"from those alone; start-up needs >= {MIN_ROUNDS} samples for a verdict)")
    p.add_argument("--confirm", type=int, default=1,
                   help="measure the variants with a timing regression (p50, p90, batch) again, in this many more "
                        "interleaved runs of only those variants; the regression fails the comparison only if every "
                        f"run finds it again -- a significant slowdown beyond {CONFIRM_SHARE * 100:g} %% of the floor -- else "
                        "it is reported inconclusive (default 1; 0: off)")
    p.add_argument("--no-accuracy", action="store_true",
                   help="skip the test-split predictions (accuracy is deterministic per artifact; timing-only runs)")
    p.add_argument("--floor", action="append", default=[], metavar="FIGURE=FRACTION",
                   help="override a floor, e.g. p50=0.05 (figures: " + ", ".join(
                       f"{k} {v:g}" for k, v in DEFAULT_FLOORS.items()) + ")")
    p.add_argument("--candidate-extra-work", action="append", default=[], metavar="NAME=FRACTION",
                   help="make the candidate's variant NAME do FRACTION more CPU work per call (a real, known "
                        "slowdown: for A/B tests of this gate)")
    add_inputs(p.add_argument, skip=("models",))  # the dataset and checkpoint both sides were built from
    p.add_argument("--out", type=Path, default=None, help="write the full comparison (raw rounds too) as JSON")
    p.add_argument("--markdown", type=Path, default=None, help="write the comparison table as Markdown")
    p.add_argument("--step-summary", type=Path, default=None, metavar="FILE",
                   help="append the Markdown to FILE (e.g. \"$GITHUB_STEP_SUMMARY\")")
    p.set_defaults(func=cmd_compare, worker_processes=COMPARE_WORKER_PROCESSES)  # not pytest bench's 2
