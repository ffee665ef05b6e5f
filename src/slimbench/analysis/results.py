"""The results schema: what the benchmark suite saves and what reports and gates read.

The store is pytest-benchmark's own JSON (`--benchmark-json`, `--benchmark-autosave`). Each
slimbench benchmark puts its figures in `extra_info`:

    extra_info = {
      "slimbench_schema": 1,
      "variant": "onnx-int8", "metric": "latency",        # size|load|memory|latency|throughput|accuracy
      "status": "ok",                                      # or "failed" (then "error" says why)
      "figures": {"p50_s": {"value": 0.0026, "unit": "s", "n": 300, "min": .., "max": .., "iqr": ..}},
      "samples": {"latency_s": [...]},                     # raw samples, kept for statistics
      "samples_in_stats": "latency_s",                     # optional: that list is stats.data (see below)
      "context": {"threads": 2, "spec_hash": "...", "runtime": "onnxruntime", "precision": "int8",
                  "description": "...", "dataset": "movie-snippets", "artifact": "/path"},
    }

A sample list that pytest-benchmark already holds as the benchmark's `stats.data` (the samples
replayed to it: latency's, throughput's batch times) is written once: `compact_samples` drops it from `samples` and names it
in `samples_in_stats`, and readers restore it from `stats.data` (a run's latency samples were
otherwise half of its file). Files that keep both lists read the same. Likewise a round-index list
(`latency_round`: the round each sample came from) is written as [[round, count], ...] in
`samples_runs`, times are kept to the nanosecond (the clock's resolution) and every list of numbers
sits on one line (`results_text`): a noisy run's 125,000 latency samples took 5.3 MB, now 1.8 MB.

A variant × metric that failed (crash, timeout, corrupt artifact) has no timing stats, so it is
kept in the top-level `"slimbench": {"schema": 1, "failures": [...]}` block with the same keys.
A run that was interrupted or did not finish writes `"incomplete": true` there (and optionally a
`"reason"`); readers say so.

Every file is validated against this schema on read: a wrong shape is a `ResultsError` naming the file
and the entry (`benchmarks[3] (onnx / latency): figures.p50_s.value ...`), never a TypeError later.
The file's `machine_info` gains `slimbench_machine` (CPU, cores, RAM, OS, library versions) and
`commit_info` is pytest-benchmark's (git commit, dirty flag).
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slimbench.errors import SlimbenchError

SCHEMA = 1
METRICS = ("size", "load", "memory", "latency", "throughput", "accuracy")
# The start-up probes' early-stopping rule, as a load result's timing context names it ("rule"):
# more probes only while those still allowed could move the median (`probes.wants_another_probe`).
# Results without it stopped once all start-up times lay within the spread of their median.
LOAD_STOP_RULE = "median-reach"


class ResultsError(SlimbenchError):
    """A results file is missing, unreadable or not slimbench results."""


@dataclass(frozen=True)
class Figure:
    value: float
    unit: str
    n: int
    min: float | None = None
    max: float | None = None
    iqr: float | None = None
    low: float | None = None  # confidence interval of a paired ratio (95 %)
    high: float | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Figure:
        return cls(value=float(d["value"]), unit=str(d["unit"]), n=int(d.get("n", 1)),
                   min=d.get("min"), max=d.get("max"), iqr=d.get("iqr"), low=d.get("low"), high=d.get("high"))

    @property
    def relative_half_width(self) -> float | None:
        """Half the confidence interval's width relative to the value (0.03: +-3 %); None without one."""
        if self.low is None or self.high is None or self.value <= 0:
            return None
        return (self.high - self.low) / 2 / self.value


@dataclass
class Measurement:
    """One variant × metric of one run."""

    variant: str
    metric: str
    status: str
    figures: dict[str, Figure] = field(default_factory=dict)
    samples: dict[str, list[float]] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    timing: dict[str, float] = field(default_factory=dict)  # pytest-benchmark's stats of the timed call

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass
class Run:
    """One results file: one machine, one commit, one time."""

    source: str
    machine: dict[str, Any]
    commit: dict[str, Any]
    datetime: str
    measurements: list[Measurement]
    incomplete: bool = False  # the run was interrupted or did not finish: measurements may be missing
    incomplete_reason: str | None = None

    @property
    def machine_id(self) -> str:
        m = self.machine.get("slimbench_machine", {})
        return str(m.get("id") or self.machine.get("node", "unknown"))

    def get(self, variant: str, metric: str) -> Measurement | None:
        for m in self.measurements:
            if m.variant == variant and m.metric == metric:
                return m
        return None

    @property
    def variants(self) -> list[str]:
        seen: list[str] = []
        for m in self.measurements:
            if m.variant not in seen:
                seen.append(m.variant)
        return seen


# --- validation on read: name the file and the entry, never a TypeError later --------------------

class _Where:
    """Where in a results file a value sits, for messages: `benchmarks[3] (onnx / latency): figures.p50_s`."""

    def __init__(self, source: str, entry: str):
        self.source, self.entry = source, entry

    def fail(self, path: str, problem: str) -> ResultsError:
        at = f"{self.entry}: {path}" if path else self.entry
        return ResultsError(f"{self.source}: {at} {problem}; the file is not slimbench results of a known "
                            "shape (was it edited or truncated?)")


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _number(where: _Where, path: str, v: Any, optional: bool = False) -> float | None:
    """A finite number (NaN and infinity are no measurement), or None where that is allowed."""
    if v is None and optional:
        return None
    if not _is_number(v) or not math.isfinite(v):
        raise where.fail(path, f"is {_short(v)}, not a finite number")
    return float(v)


def _is_integer(v: Any) -> bool:
    return _is_number(v) and math.isfinite(v) and v == int(v)


def _mapping(where: _Where, path: str, v: Any, optional: bool = True) -> dict[str, Any]:
    if v is None and optional:
        return {}
    if not isinstance(v, dict):
        raise where.fail(path, f"is {type(v).__name__} {_short(v)}, not an object")
    return v


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


def _string(where: _Where, path: str, v: Any, optional: bool = False) -> str | None:
    if v is None and optional:
        return None
    if not isinstance(v, str) or (not optional and not v):
        raise where.fail(path, f"is {_short(v)}, not a non-empty string")
    return v


def _figure(where: _Where, path: str, d: Any) -> Figure:
    d = _mapping(where, path, d, optional=False)
    if "value" not in d:
        raise where.fail(path, "has no 'value'")
    value = _number(where, f"{path}.value", d["value"])
    unit = _string(where, f"{path}.unit", d.get("unit"))
    n = d.get("n", 1)
    if not _is_integer(n) or n < 0:
        raise where.fail(f"{path}.n", f"is {_short(n)}, not a count")
    extra = {k: _number(where, f"{path}.{k}", d.get(k), optional=True) for k in ("min", "max", "iqr", "low", "high")}
    return Figure(value=float(value or 0.0), unit=str(unit), n=int(n), **extra)


def _measurement(info: dict[str, Any], timing: dict[str, float] | None = None,
                 where: _Where | None = None) -> Measurement:
    where = where or _Where("<memory>", "entry")
    variant = _string(where, "variant", info.get("variant"))
    metric = _string(where, "metric", info.get("metric"))
    where.entry = f"{where.entry} ({variant} / {metric})"
    status = info.get("status", "ok")
    if status not in ("ok", "failed"):
        raise where.fail("status", f"is {_short(status)}, not 'ok' or 'failed'")
    figures = {str(k): _figure(where, f"figures.{k}", v)
               for k, v in _mapping(where, "figures", info.get("figures")).items()}
    samples: dict[str, list[float]] = {}
    for k, v in _mapping(where, "samples", info.get("samples")).items():
        if not isinstance(v, list):
            raise where.fail(f"samples.{k}", f"is {_short(v)}, not a list of numbers")
        if all(type(x) is float and math.isfinite(x) for x in v):  # the common case, without a message per value
            samples[str(k)] = list(v)
        else:
            samples[str(k)] = [float(_number(where, f"samples.{k}[{i}]", x) or 0.0) for i, x in enumerate(v)]
    error = info.get("error")
    if error is not None and not isinstance(error, str):
        raise where.fail("error", f"is {_short(error)}, not a string")
    return Measurement(variant=str(variant), metric=str(metric), status=status, figures=figures, samples=samples,
                       context=_context(where, info.get("context")), error=error,
                       timing=timing or {})


# Context keys readers use, and what each must be when present (other keys are free-form).
_CONTEXT_TYPES: dict[str, tuple[type, ...]] = {
    "threads": (int,), "spec_hash": (str,), "runtime": (str,), "precision": (str,), "format": (str,),
    "description": (str,), "dataset": (str,), "artifact": (str,), "build_test_accuracy": (int, float),
    "untrained": (bool,),
}


_MACHINE_TYPES: dict[str, tuple[type, ...]] = {
    "id": (str,), "label": (str,), "cpu": (str,), "cores": (int,), "ram_bytes": (int, float), "os": (str,),
    "hostname": (str,), "libraries": (dict,),
}


def _typed(where: _Where, prefix: str, mapping: dict[str, Any], types: dict[str, tuple[type, ...]]) -> None:
    """Each known key, when present and not null, has its type (a bool is not a number here)."""
    for key, allowed in types.items():
        value = mapping.get(key)
        if value is None:
            continue
        if (not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed)
                or (isinstance(value, float) and not math.isfinite(value))):
            raise where.fail(f"{prefix}.{key}", f"is {_short(value)}, not {' or '.join(t.__name__ for t in allowed)}")


def _context(where: _Where, v: Any) -> dict[str, Any]:
    context = dict(_mapping(where, "context", v))
    _typed(where, "context", context, _CONTEXT_TYPES)
    threads = context.get("threads")
    if threads is not None and threads < 1:
        raise where.fail("context.threads", f"is {threads}, not a positive count")
    return context


def _schema(where: _Where, info: dict[str, Any]) -> None:
    version = info["slimbench_schema"]
    if not _is_integer(version):
        raise where.fail("slimbench_schema", f"is {_short(version)}, not an integer")
    if int(version) > SCHEMA:
        raise ResultsError(f"{where.source} has slimbench schema {version}, newer than this slimbench ({SCHEMA}); "
                           "upgrade slimbench to read it")


def _samples_from_stats(where: _Where, info: dict[str, Any], stats: dict[str, Any]) -> dict[str, Any]:
    """`info` with the sample list that `samples_in_stats` names restored from `stats.data`."""
    key = info.get("samples_in_stats")
    if key is None:
        return info
    if not isinstance(key, str) or not key:
        raise where.fail("extra_info.samples_in_stats", f"is {_short(key)}, not a sample name")
    data = stats.get("data")
    if not isinstance(data, list):
        raise where.fail("stats.data", f"is {_short(data)}, but extra_info.samples_in_stats says it holds "
                                       f"the {key!r} samples")
    samples = _mapping(where, "extra_info.samples", info.get("samples"))
    return {**info, "samples": {**samples, key: data}}


def _runs_from(where: _Where, info: dict[str, Any]) -> dict[str, Any]:
    """`info` with each round-index list that `samples_runs` holds as [[round, count], ...] expanded."""
    runs = info.get("samples_runs")
    if runs is None:
        return info
    runs = _mapping(where, "extra_info.samples_runs", runs)
    samples = dict(_mapping(where, "extra_info.samples", info.get("samples")))
    for key, pairs in runs.items():
        if not isinstance(pairs, list) or not all(
                isinstance(p, list) and len(p) == 2 and _is_integer(p[0]) and _is_integer(p[1]) and p[1] > 0
                for p in pairs):
            raise where.fail(f"extra_info.samples_runs.{key}", f"is {_short(pairs)}, not a list of [round, count] "
                                                               "pairs")
        partner = key.removesuffix("_round") + "_s"  # latency_round: the round of each latency_s sample
        total, values = sum(int(count) for _, count in pairs), samples.get(partner)
        if not isinstance(values, list) or total != len(values):
            raise where.fail(f"extra_info.samples_runs.{key}", f"counts {total} samples, but samples.{partner} "
                             f"has {len(values) if isinstance(values, list) else 'none'}")
        # one float object per round, referenced count times (8 bytes a sample, not 32)
        samples[key] = [x for value, count in pairs for x in itertools.repeat(float(value), int(count))]
    return {**info, "samples": samples}


def _as_runs(values: list[Any]) -> list[list[int]] | None:
    """A list of whole numbers in order as [[value, count], ...]; None for any other list."""
    if not values or not all(_is_integer(v) for v in values) or any(b < a for a, b in itertools.pairwise(values)):
        return None
    return [[int(v), len(list(group))] for v, group in itertools.groupby(values)]


TIME_DECIMALS = 9  # seconds kept to the nanosecond: the resolution of the clock that took them


def compact_samples(doc: dict[str, Any]) -> dict[str, Any]:
    """`doc` (a pytest-benchmark JSON document) made smaller without losing a figure (changed in
    place): each slimbench sample list that equals its benchmark's `stats.data` kept only there,
    named in `samples_in_stats`; each round-index list (`*_round`: which round a sample came from)
    as [[round, count], ...] in `samples_runs`; times in seconds (`stats.data`, samples `*_s`)
    rounded to the nanosecond, the resolution of perf_counter, the clock that took them."""
    for bench in doc.get("benchmarks") or []:
        info, stats = bench.get("extra_info") or {}, bench.get("stats") or {}
        data, samples = stats.get("data"), info.get("samples")
        if "slimbench_schema" not in info or not isinstance(samples, dict):
            continue
        if data and "samples_in_stats" not in info:
            key = next((k for k, v in samples.items() if v == data), None)
            if key is not None:
                del samples[key]
                info["samples_in_stats"] = key
        for key in [k for k in samples if k.endswith("_round")]:
            runs = _as_runs(samples[key])
            if runs is not None:
                info.setdefault("samples_runs", {})[key] = runs
                del samples[key]
        for key, values in [("data", data), *((k, v) for k, v in samples.items() if k.endswith("_s"))]:
            if isinstance(values, list) and all(isinstance(v, float) for v in values):
                rounded = [round(v, TIME_DECIMALS) for v in values]
                if key == "data":
                    stats["data"] = rounded
                else:
                    samples[key] = rounded
    return doc


_NUMBER_LIST = re.compile(r"\[\n\s*(-?\d[\d.eE+-]*(?:,\n\s*-?\d[\d.eE+-]*)*)\n\s*\]")


def results_text(doc: dict[str, Any]) -> str:
    """A results document as written to disk: `compact_samples`, indented by one space (a third of
    the bytes of pytest-benchmark's indent=4), every list of numbers on one line."""
    text = json.dumps(compact_samples(doc), indent=1)
    return _NUMBER_LIST.sub(lambda m: "[" + re.sub(r",\n\s*", ",", m.group(1)) + "]", text) + "\n"


def parse_run(data: dict[str, Any], source: str = "<memory>") -> Run:
    """A Run from a pytest-benchmark JSON document (non-slimbench benchmarks are ignored), validated:
    a wrong shape raises ResultsError naming the file and the entry."""
    if not isinstance(data, dict) or "benchmarks" not in data:
        raise ResultsError(f"{source} is not a pytest-benchmark results file (no 'benchmarks' key)")
    top = _Where(source, "the file")
    if not isinstance(data["benchmarks"], list):
        raise top.fail("'benchmarks'", f"is {_short(data['benchmarks'])}, not a list")
    measurements: list[Measurement] = []
    for k, bench in enumerate(data["benchmarks"]):
        where = _Where(source, f"benchmarks[{k}]")
        bench = _mapping(where, "", bench, optional=False)
        info = _mapping(where, "extra_info", bench.get("extra_info"))
        if "slimbench_schema" not in info:
            continue
        _schema(where, info)
        stats = _mapping(where, "stats", bench.get("stats"))
        info = _runs_from(where, _samples_from_stats(_Where(source, f"benchmarks[{k}]"), info, stats))
        timing = {key: float(_number(where, f"stats.{key}", stats[key]) or 0.0)
                  for key in ("min", "max", "mean", "median", "stddev", "rounds") if stats.get(key) is not None}
        measurements.append(_measurement(info, timing, _Where(source, f"benchmarks[{k}].extra_info")))
    block = _mapping(top, "'slimbench'", data.get("slimbench"))
    failures = block.get("failures") or []
    if not isinstance(failures, list):
        raise top.fail("slimbench.failures", f"is {_short(failures)}, not a list")
    for k, failure in enumerate(failures):
        where = _Where(source, f"slimbench.failures[{k}]")
        measurements.append(_measurement(_mapping(where, "", failure, optional=False), None, where))
    incomplete = block.get("incomplete", False)
    if not isinstance(incomplete, bool):
        raise top.fail("slimbench.incomplete", f"is {_short(incomplete)}, not true or false")
    reason = block.get("reason")
    machine = _mapping(top, "machine_info", data.get("machine_info"))
    facts = _mapping(top, "machine_info.slimbench_machine", machine.get("slimbench_machine"))
    _typed(top, "machine_info.slimbench_machine", facts, _MACHINE_TYPES)
    commit = _mapping(top, "commit_info", data.get("commit_info"))
    return Run(source=source, machine=machine, commit=commit, datetime=str(data.get("datetime") or ""),
               measurements=measurements, incomplete=incomplete,
               incomplete_reason=reason if isinstance(reason, str) and reason else None)


def load_run(path: Path) -> Run:
    """One results file, validated (see `parse_run`)."""
    path = Path(path)
    if path.is_dir():
        raise ResultsError(f"results file {path} is a directory; give a --benchmark-json file")
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise ResultsError(f"results file {path} does not exist") from None
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as err:
        raise ResultsError(f"results file {path} is not valid JSON ({err})") from None
    run = parse_run(data, str(path))
    if not run.measurements:
        if run.incomplete:
            raise ResultsError(f"{path} is marked incomplete and holds no measurements: its run was interrupted "
                               "before anything was measured")
        raise ResultsError(f"{path} holds no slimbench measurements (was it written by `pytest bench`?)")
    return run


def load_runs(paths: Iterable[Path]) -> list[Run]:
    """Runs from files or directories (a directory: every *.json below it, e.g. .benchmarks/)."""
    runs: list[Run] = []
    for path in paths:
        path = Path(path)
        files: Sequence[Path] = sorted(path.rglob("*.json")) if path.is_dir() else [path]
        if path.is_dir() and not files:
            raise ResultsError(f"{path} holds no *.json results files")
        for f in files:
            runs.append(load_run(f))
    if not runs:
        raise ResultsError("no results files given")
    return runs


# --- the sweep file (`slimbench sweep`) ----------------------------------------------------------

SWEEP_SCHEMA = 1


def load_sweep(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise SlimbenchError(f"cannot read sweep results {path}: {err}; rerun `slimbench sweep`") from None
    if not isinstance(doc, dict) or doc.get("schema") != SWEEP_SCHEMA or not isinstance(doc.get("levels"), list):
        raise SlimbenchError(f"{path} is not a slimbench sweep file (schema {SWEEP_SCHEMA}); rerun `slimbench sweep`")
    return doc
