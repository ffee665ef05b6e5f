"""The results schema: what the benchmark suite saves and what reports and gates read.

The store is pytest-benchmark's own JSON (`--benchmark-json`, `--benchmark-autosave`). Each
slimbench benchmark puts its figures in `extra_info`:

    extra_info = {
      "slimbench_schema": 1,
      "variant": "onnx-int8", "metric": "latency",        # size|load|memory|latency|throughput|accuracy
      "status": "ok",                                      # or "failed" (then "error" says why)
      "figures": {"p50_s": {"value": 0.0026, "unit": "s", "n": 300, "min": .., "max": .., "iqr": ..}},
      "samples": {"latency_s": [...]},                     # raw samples, kept for statistics
      "context": {"threads": 2, "spec_hash": "...", "runtime": "onnxruntime", "precision": "int8",
                  "description": "...", "dataset": "movie-snippets", "artifact": "/path"},
    }

A variant × metric that failed (crash, timeout, corrupt artifact) has no timing stats, so it is
kept in the top-level `"slimbench": {"schema": 1, "failures": [...]}` block with the same keys.
The file's `machine_info` gains `slimbench_machine` (CPU, cores, RAM, OS, library versions) and
`commit_info` is pytest-benchmark's (git commit, dirty flag).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slimbench.errors import SlimbenchError

SCHEMA = 1
METRICS = ("size", "load", "memory", "latency", "throughput", "accuracy")


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


def _measurement(info: dict[str, Any], timing: dict[str, float] | None = None) -> Measurement:
    return Measurement(
        variant=str(info["variant"]), metric=str(info["metric"]), status=str(info.get("status", "ok")),
        figures={k: Figure.from_dict(v) for k, v in (info.get("figures") or {}).items()},
        samples={k: list(map(float, v)) for k, v in (info.get("samples") or {}).items()},
        context=dict(info.get("context") or {}), error=info.get("error"), timing=timing or {},
    )


def parse_run(data: dict[str, Any], source: str = "<memory>") -> Run:
    """A Run from a pytest-benchmark JSON document (non-slimbench benchmarks are ignored)."""
    if not isinstance(data, dict) or "benchmarks" not in data:
        raise ResultsError(f"{source} is not a pytest-benchmark results file (no 'benchmarks' key)")
    measurements: list[Measurement] = []
    for bench in data["benchmarks"]:
        info = bench.get("extra_info") or {}
        if "slimbench_schema" not in info:
            continue
        if int(info["slimbench_schema"]) > SCHEMA:
            raise ResultsError(f"{source} has slimbench schema {info['slimbench_schema']}, newer than this "
                               f"slimbench ({SCHEMA}); upgrade slimbench to read it")
        stats = bench.get("stats") or {}
        timing = {k: float(stats[k]) for k in ("min", "max", "mean", "median", "stddev", "rounds") if k in stats}
        measurements.append(_measurement(info, timing))
    for failure in (data.get("slimbench") or {}).get("failures", []):
        measurements.append(_measurement(failure))
    return Run(source=source, machine=data.get("machine_info") or {}, commit=data.get("commit_info") or {},
               datetime=str(data.get("datetime", "")), measurements=measurements)


def load_run(path: Path) -> Run:
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ResultsError(f"results file {path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ResultsError(f"results file {path} is not valid JSON ({err})") from None
    run = parse_run(data, str(path))
    if not run.measurements:
        raise ResultsError(f"{path} holds no slimbench measurements (was it written by `pytest bench`?)")
    return run


def load_runs(paths: Iterable[Path]) -> list[Run]:
    """Runs from files or directories (a directory: every *.json below it, e.g. .benchmarks/)."""
    runs: list[Run] = []
    for path in paths:
        path = Path(path)
        files: Sequence[Path] = sorted(path.rglob("*.json")) if path.is_dir() else [path]
        for f in files:
            runs.append(load_run(f))
    if not runs:
        raise ResultsError("no results files given")
    return runs
