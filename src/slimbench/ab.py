"""Paired A/B: `slimbench compare` measures two builds of the zoo, interleaved, in one run.

A baseline and a candidate -- each a code checkout with its own `src/` and `models/`, each with
its artifacts already built (`slimbench build` in that checkout; a shared cache makes unchanged
specs free) -- are measured side by side on the same machine in the same minutes:

- every (side, variant) gets its own timing worker, importing slimbench from *its* checkout, all
  alive together; latency and throughput are sampled in rounds in which the two sides of a
  variant run back to back (which goes first alternates), so the machine's drift hits both;
- each figure's change is the paired ratio candidate / baseline over rounds, with a bootstrap CI,
  judged by `slimbench.compare.judge` against a floor calibrated from A/A runs on this machine;
- fresh-process start-up and peak-RSS probes alternate between the sides the same way;
- deterministic figures (bytes on disk, parameters, test accuracy from the workers' predictions on
  the same sentences) are compared exactly, with the gate's tolerances;
- a timing regression (p50, p90, batch) is measured again, in a second interleaved run of only the
  flagged variants, before it fails the comparison: a burst of the host's other load (steal) that
  moved one run's rounds is not a regression, a real change is found twice (`--confirm`).

Measurement loops and statistics are this checkout's; the runtime and the artifacts are each
side's. Both checkouts must speak worker protocol 1 (slimbench with `slimbench.worker`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from slimbench.compare import IMPROVEMENT, INCONCLUSIVE, REGRESSION, judge, judge_drop, judge_growth
from slimbench.errors import SlimbenchError
from slimbench.fsutil import atomic_write_text
from slimbench.gate import fmt
from slimbench.measure.session import Observations
from slimbench.measure.settings import MeasureSettings

SIDES = ("baseline", "candidate")
CORE = ("standard", "light", "ultra-light", "quantized", "onnx", "onnx-int8", "ultra-light-onnx-int8")
SCHEMA = 1

# Floors on a paired ratio, calibrated from A/A runs on a 2-core VM (experiments/gate-calibration/):
# the largest |change| of 20 A/A compares, rounded up. p50: the largest A/A change of 17 compares
# at two worker processes per variant and side was 3.4 % (experiments/paired-timing/aa-ab-5pct.md).
# Override with --floor FIGURE=F.
DEFAULT_FLOORS: dict[str, float] = {"p50": 0.04, "p90": 0.10, "batch": 0.25, "start": 0.15, "peak_rss": 0.10}
MIN_ROUNDS = 6  # fewer paired rounds than this cannot make a timing verdict, only "inconclusive"
CONFIRMED_FIGURES = ("p50", "p90", "batch")  # timing figures from rounds: a regression is re-measured
# Deterministic tolerances: the gate's defaults (gate_rules.CATALOGUE).
SIZE_TOLERANCE, PARAM_TOLERANCE, ACCURACY_TOLERANCE = 0.01, 0.0, 0.005


class CompareError(SlimbenchError):
    """A side cannot be compared: not a checkout, or its variants are not built."""


@dataclass(frozen=True)
class Side:
    name: str  # baseline | candidate
    checkout: Path
    extra_work: Mapping[str, float] = field(default_factory=dict)

    @property
    def src(self) -> Path:
        return self.checkout / "src"

    def key(self, variant: str) -> str:
        return f"{self.name}:{variant}"


@dataclass(frozen=True)
class Verdict:
    """One compared figure of one variant."""

    variant: str
    figure: str
    unit: str
    baseline: float | None
    candidate: float | None
    change: float | None  # candidate / baseline (1 = same); for accuracy: candidate - baseline
    low: float | None
    high: float | None
    n: int
    floor: float
    how: str
    kind: str | None  # regression | improvement | inconclusive | None
    # a re-measurement of a timing regression: change, low, high, n, kind and run (2: the second) of it
    confirm: dict[str, Any] | None = None

    @property
    def failing(self) -> bool:
        return self.kind == REGRESSION


# --- resolving each side's artifacts ------------------------------------------------------------------

def resolve_side(side: Side, variants: Sequence[str], list_args: Sequence[str]) -> dict[str, Path]:
    """Each variant's artifact directory, as the side's own code computes it (`slimbench list --json`)."""
    if not (side.src / "slimbench" / "__init__.py").is_file():
        raise CompareError(f"{side.name} checkout {side.checkout} has no src/slimbench; give the root of a "
                           "slimbench checkout")
    env = dict(os.environ, PYTHONPATH=str(side.src), HF_HUB_OFFLINE="1")
    env.pop("SLIMBENCH_MODELS", None)  # each side's own models/
    proc = subprocess.run([sys.executable, "-m", "slimbench.cli", "list", "--json", *list_args],
                          capture_output=True, text=True, env=env, cwd=side.checkout, timeout=600)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise CompareError(f"{side.name} checkout {side.checkout}: `slimbench list --json` failed: {last}")
    listed = {v["name"]: v for v in json.loads(proc.stdout)["variants"]}
    out: dict[str, Path] = {}
    for name in variants:
        if name not in listed:
            raise CompareError(f"{side.name} checkout {side.checkout} has no variant {name!r}; "
                               f"it has: {', '.join(listed)}")
        if not listed[name]["built"]:
            inputs = " ".join(a if a.startswith("--") else shlex.quote(a) for a in list_args)
            raise CompareError(f"{side.name} variant {name!r} is not built (expected {listed[name]['artifact']}); "
                               f"run `slimbench build --variants {name} {inputs}` in {side.checkout}")
        out[name] = Path(listed[name]["artifact"])
    return out


# --- measuring: the one session, both sides ----------------------------------------------------------

@dataclass(frozen=True)
class Settings:
    """How a comparison measures (the shared knobs) and judges."""

    measure: MeasureSettings = field(default_factory=MeasureSettings)
    confirm: int = 1
    accuracy: bool = True
    probes: bool = True  # fresh-process start-up and peak-RSS probes beyond the workers' own start-ups
    floors: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_FLOORS))


def code_fingerprint(side: Side) -> str:
    """sha256 over the side's slimbench sources: equal fingerprints run the same code."""
    from slimbench.memo import code_fingerprint as fingerprint

    return fingerprint(side.src)


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def measure(sides: Sequence[Side], artifacts: Mapping[str, Mapping[str, Path]], variants: Sequence[str],
            texts: Sequence[str], st: Settings, log: Callable[[str], None] = _log,
            metrics: Sequence[str] | None = None) -> Observations:
    """Every (side, variant) measured by the one measuring session, paired: a variant's two sides
    start together (one per core), run back to back in every round and probe round (which goes first
    alternating), and more latency rounds go to the variants whose change is still uncertain."""
    from slimbench.measure.session import Request, Subject, measure_session

    if metrics is None:
        metrics = ["latency", "throughput"] + (["accuracy"] if st.accuracy else []) + (
            ["load", "memory"] if st.probes else [])
    subjects = [Subject(s.key(v), v, artifacts[s.name][v], s.extra_work.get(v, 0.0), s.src)
                for v in variants for s in sides]
    keys = [s.key for s in subjects]
    code = {s.key(v): fp for s in sides for fp in [code_fingerprint(s)] for v in variants}
    req = Request(subjects, texts, st.measure, wanted={m: keys for m in metrics},
                  pairs={sides[1].key(v): sides[0].key(v) for v in variants}, paired=True, code=code,
                  label="compare")
    return measure_session(req, log)


def _errors(m: Observations) -> dict[str, str]:
    return {**m.probe_errors, **m.errors}


def _start_rounds(m: Observations, key: str) -> list[list[float] | None]:
    return [[r.start_to_first_prediction_s] for r in m.probes.get(key, [])]


def _peak_rss(m: Observations, key: str) -> list[float]:
    return [float(r.vmhwm_bytes["after_inference"]) for r in m.probes.get(key, []) if "after_inference" in r.vmhwm_bytes]


# --- judging --------------------------------------------------------------------------------------

def _paired(variant: str, figure: str, num: Sequence[Sequence[float] | None], den: Sequence[Sequence[float] | None],
            q: float, floor: float, how: str) -> Verdict | None:
    from slimbench.stats import paired_ratio

    try:
        r = paired_ratio(num, den, q)
    except ValueError:
        return None
    base = float(np.median([np.percentile(b, q) for b in den if b]))
    cand = float(np.median([np.percentile(a, q) for a in num if a]))
    kind = judge(r.value, r.low, r.high, floor)
    if r.rounds < MIN_ROUNDS and kind is not None:
        kind = INCONCLUSIVE if r.value - 1 > floor else None  # a bootstrap over a handful of rounds is no proof
    return Verdict(variant, figure, "s", base, cand, r.value, r.low, r.high, r.rounds, floor, how, kind)


def judge_all(sides: Sequence[Side], artifacts: Mapping[str, Mapping[str, Path]], variants: Sequence[str],
              gold: Sequence[int], num_labels: int, m: Observations, st: Settings) -> list[Verdict]:
    from slimbench.measure import accuracy_figures
    from slimbench.stats import paired_accuracy_difference_ci

    base, cand = sides
    out: list[Verdict] = []
    for v in variants:
        kb, kc = base.key(v), cand.key(v)
        if kb in _errors(m) or kc in _errors(m):
            continue
        how = "paired rounds (worker processes, interleaved)"
        if m.latency is not None:
            lat_b, lat_c = m.latency.rounds_of(kb), m.latency.rounds_of(kc)
            for figure, q in (("p50", 50.0), ("p90", 90.0)):
                verdict = _paired(v, figure, lat_c, lat_b, q, st.floors[figure], how)
                if verdict:
                    out.append(verdict)
        if m.throughput is not None:
            verdict = _paired(v, "batch", m.throughput.rounds_of(kc), m.throughput.rounds_of(kb), 50.0,
                              st.floors["batch"], how)
            if verdict:
                out.append(verdict)
        rounds_b, rounds_c = _start_rounds(m, kb), _start_rounds(m, kc)
        if rounds_b and rounds_c:
            n = min(len(rounds_b), len(rounds_c))  # paired probe rounds; a side may have one more
            rounds_b, rounds_c = rounds_b[:n], rounds_c[:n]
            verdict = _paired(v, "start", rounds_c, rounds_b, 50.0, st.floors["start"],
                              "paired fresh-process probes (start to first prediction)")
            if verdict:
                out.append(verdict)
        rss_b, rss_c = _peak_rss(m, kb), _peak_rss(m, kc)
        if rss_b and rss_c:
            b, c = float(np.median(rss_b)), float(np.median(rss_c))
            out.append(Verdict(v, "peak_rss", "B", b, c, c / b, None, None, len(rss_c),
                               st.floors["peak_rss"], "median VmHWM of the probes",
                               judge_growth(b, c, st.floors["peak_rss"])))
        out.extend(_deterministic(v, artifacts[base.name][v], artifacts[cand.name][v]))
        if kb in m.labels and kc in m.labels:
            figs = accuracy_figures(m.labels[kc], gold, num_labels, reference_pred=m.labels[kb])
            ab = accuracy_figures(m.labels[kb], gold, num_labels)["accuracy"]["value"]
            ac = figs["accuracy"]["value"]
            # the verdict is exact (same recipe, same labels); the interval says how far another text
            # sample of this size could move the difference (paired bootstrap over sentences)
            _, lo, hi = paired_accuracy_difference_ci(len(gold), int(figs["only_standard_right"]["value"]),
                                                      int(figs["only_variant_right"]["value"]))
            how = "; ".join(dict.fromkeys(m.label_source[k] for k in (kb, kc) if k in m.label_source)) \
                or "test split, same sentences (deterministic)"
            out.append(Verdict(v, "accuracy", "ratio", ab, ac, ac - ab, lo, hi, len(gold), ACCURACY_TOLERANCE,
                               how + "; interval: paired bootstrap over sentences", judge_drop(ab, ac, ACCURACY_TOLERANCE)))
    return out


def flagged_for_confirmation(verdicts: Sequence[Verdict]) -> list[str]:
    """The variants with a timing regression that a second run must find again, in verdict order."""
    return list(dict.fromkeys(v.variant for v in verdicts if v.failing and v.figure in CONFIRMED_FIGURES))


def confirm_verdicts(first: Sequence[Verdict], again: Sequence[Verdict], measured_again: Sequence[str],
                     run: int = 2) -> list[Verdict]:
    """A timing regression stands only if the re-measurement (the compare's `run`-th run of those
    variants) finds it too; otherwise it becomes "inconclusive" (a change seen once, not reproduced:
    not a failure). The first run's figures stay; the re-measurement's are in `confirm`."""
    by_key = {(v.variant, v.figure): v for v in again}
    out = []
    for v in first:
        if v.failing and v.figure in CONFIRMED_FIGURES and v.variant in measured_again:
            r = by_key.get((v.variant, v.figure))
            record = ({"change": r.change, "low": r.low, "high": r.high, "n": r.n, "kind": r.kind, "run": run} if r
                      else {"change": None, "low": None, "high": None, "n": 0, "kind": None, "run": run})
            kind = v.kind if r is not None and r.kind == REGRESSION else INCONCLUSIVE
            v = replace(v, kind=kind, confirm=record)
        out.append(v)
    return out


def _deterministic(variant: str, base_dir: Path, cand_dir: Path) -> list[Verdict]:
    from slimbench.measure import file_figures
    from slimbench.runtime import read_manifest

    fb, fc = file_figures(base_dir, read_manifest(base_dir)), file_figures(cand_dir, read_manifest(cand_dir))
    out = []
    for figure, tol in (("total_bytes", SIZE_TOLERANCE), ("gzip_bytes", SIZE_TOLERANCE), ("parameters", PARAM_TOLERANCE)):
        b, c = float(fb[figure]["value"]), float(fc[figure]["value"])
        out.append(Verdict(variant, figure, fb[figure]["unit"], b, c, c / b if b else None, None, None, 1, tol,
                           "deterministic", judge_growth(b, c, tol)))
    return out


# --- rendering ------------------------------------------------------------------------------------

def _change(v: Verdict) -> str:
    if v.change is None:
        return "—"
    if v.figure == "accuracy":
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
             v.n, f"{v.floor * 100:g} %" if v.figure != "accuracy" else f"{v.floor * 100:g} points",
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
    from slimbench.report import steal_text

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
            + (f", and a timing regression (p50, p90, batch) must be found again when its variant is measured "
               f"again in {'a second run' if st.confirm == 1 else f'{st.confirm} more runs'}" if st.confirm else "")
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
           "seconds": measured.seconds, "steal": measured.steal, "errors": _errors(measured), "repeat": measured.repeat,
           "verdicts": [asdict(v) for v in verdicts], "rounds": _rounds_doc(measured),
           "start_s": {k: [r[0] if r else None for r in _start_rounds(measured, k)] for k in keys},
           "peak_rss_bytes": {k: _peak_rss(measured, k) for k in keys},
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
    from slimbench.zoo import Zoo, checkout_models_dir

    if spec.strip() in ("core", "all"):
        names = list(Zoo.load(checkout_models_dir(candidate)).names)
        return [v for v in names if spec.strip() == "all" or v in CORE]
    names = [v.strip() for v in spec.split(",") if v.strip()]
    if not names:
        raise CompareError(f"--variants {spec!r} names no variant; name at least one variant, `core` or `all`")
    return names


def cmd_compare(args: argparse.Namespace) -> int:
    from slimbench.data import load_dataset, single_label_only
    from slimbench.options import use_cache_root

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
        splits = single_label_only(load_dataset(args.dataset, args.text_column, args.label_column, args.test_file),
                                   "slimbench compare")
        artifacts = {name: f.result() for name, f in resolving.items()}
    texts = [e.text for e in splits.test]
    gold = [e.label for e in splits.test]
    measured = measure(sides, artifacts, variants, texts, st)
    verdicts = judge_all(sides, artifacts, variants, gold, splits.num_labels, measured, st)
    again: Observations | None = None
    if st.confirm and (flagged := flagged_for_confirmation(verdicts)):
        verdicts, again = _confirm(sides, artifacts, flagged, texts, gold, splits.num_labels, st, verdicts, measured)
    elapsed = time.perf_counter() - started
    regressions = [v for v in verdicts if v.failing]
    errors = _errors(measured)
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
             texts: Sequence[str], gold: Sequence[int], num_labels: int, st: Settings, verdicts: Sequence[Verdict],
             measured: Observations) -> tuple[list[Verdict], Observations]:
    """Measure the variants with a timing regression again -- new workers, new interleaved rounds,
    the same settings, no probes or accuracy (deterministic or not re-judged) -- `st.confirm` times;
    a regression stands only if every re-measurement finds it. A variant that fails while re-measured
    is a failed variant, as in the first run."""
    t = time.perf_counter()
    again = Observations()
    for attempt in range(st.confirm):
        _log(f"compare: timing regression in {', '.join(flagged)}; measuring {'it' if len(flagged) == 1 else 'them'} "
             f"again ({attempt + 1}/{st.confirm}) before failing")
        batch = any(v.failing and v.figure == "batch" for v in verdicts)  # throughput rounds only if needed
        again = measure(sides, artifacts, flagged, texts, st, metrics=["latency"] + (["throughput"] if batch else []))
        measured.errors.update(_errors(again))
        redone = [v for v in judge_all(sides, artifacts, flagged, gold, num_labels, again, st)
                  if v.figure in CONFIRMED_FIGURES]
        verdicts = confirm_verdicts(verdicts, redone, flagged, run=attempt + 2)
        for phase, steal in again.steal.items():
            measured.steal[f"confirm {phase}"] = steal
        if not (flagged := flagged_for_confirmation(verdicts)):
            break
    measured.seconds["confirm"] = time.perf_counter() - t
    return list(verdicts), again


def register_cli(sub: Any) -> None:
    from slimbench.measure.settings import add_knobs
    from slimbench.options import add_inputs

    p = sub.add_parser(
        "compare", help="paired A/B: measure a baseline and a candidate checkout interleaved; exit 1 on a regression",
        description="Measure two builds of the zoo -- BASELINE and CANDIDATE, each a slimbench checkout whose "
                    "variants are built -- interleaved in one run on this machine, and judge every figure: "
                    "latency/throughput/start-up by the paired ratio and its CI against a floor calibrated from "
                    "A/A runs, size/parameters/accuracy exactly. Exit 1 on a regression or a failed variant. "
                    "The measuring options are those of `slimbench run` and `pytest bench` (there spelled "
                    "--slimbench-NAME), with the same defaults.")
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
                        "run finds it, else it is reported inconclusive (default 1; 0: off)")
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
    p.set_defaults(func=cmd_compare)
