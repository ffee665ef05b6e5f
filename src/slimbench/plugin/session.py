"""The pytest plugin's session: what `pytest bench` was told (`BenchConfig`), the selected
variants (built first by a child `slimbench build` when missing), one run of the measuring session
(`slimbench.measure.session`) for everything the selected tests need, and the clock that replays
the workers' samples to pytest-benchmark (`REPLAY_CLOCK`). The hooks and fixtures that drive it
are `slimbench.plugin`'s.
"""

from __future__ import annotations

import itertools
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from slimbench.analysis.results import SCHEMA
from slimbench.measure.settings import MeasureSettings, SettingsError

if TYPE_CHECKING:
    from slimbench.measure.session import Observations

CAPTURE: list[Any] = []  # pytest's capture manager, once configured
METRICS = ("latency", "throughput", "accuracy", "load", "memory")
PREFIX = "slimbench-"


@dataclass(frozen=True)
class BenchConfig:
    """Everything the benchmark suite is told on the command line (or in the project's config
    file), validated once."""

    variants: str | None
    cache: Path | None
    models: Path | None
    dataset: str
    base: str | None
    text_column: str
    label_column: str
    test_file: Path | None
    max_length: str | None
    settings: MeasureSettings
    build_missing: bool
    extra_work: dict[str, float]
    config_file: Path | None = None  # the project file the inputs came from, if any

    @property
    def threads(self) -> int:
        return self.settings.threads

    @classmethod
    def from_pytest_config(cls, config: pytest.Config) -> BenchConfig:
        from slimbench.commands.options import resolve_inputs
        from slimbench.errors import SlimbenchError

        values: dict[str, Any] = {}

        def get(name: str) -> Any:
            return values[name] if name in values else config.getoption(f"slimbench_{name}")

        try:
            project = resolve_inputs(get, values.__setitem__)
            settings = MeasureSettings.from_options(get)
        except (SettingsError, SlimbenchError) as err:
            raise pytest.UsageError(str(err).replace("--", f"--{PREFIX}", 1)
                                    if isinstance(err, SettingsError) else str(err)) from None
        extra: dict[str, float] = {}
        for item in config.getoption("slimbench_extra_work") or []:
            name, _, frac = item.partition("=")
            try:
                extra[name] = float(frac)
            except ValueError:
                raise pytest.UsageError(f"--slimbench-extra-work expects NAME=FRACTION, got {item!r}") from None
        def path(p: Any) -> Path | None:
            return Path(p).expanduser().resolve() if p else None

        return cls(variants=get("variants"), cache=path(get("cache")), models=path(get("models")),
                   dataset=get("dataset"), base=get("base"), text_column=get("text_column"),
                   label_column=get("label_column"), test_file=path(get("test_file")),
                   max_length=get("max_length"), settings=settings,
                   build_missing=not config.getoption("slimbench_no_build"), extra_work=extra,
                   config_file=project.path)


class VariantFailed(Exception):
    """A measurement of one variant failed; the message says why."""


@dataclass
class Variant:
    """A built variant, as the bench tests see it."""

    name: str
    artifact_dir: Path
    manifest: dict[str, Any]
    session: BenchSession

    def context(self) -> dict[str, Any]:
        m = self.manifest
        return {"threads": self.session.config.threads, "spec_hash": m.get("spec_hash"),
                "runtime": m.get("runtime"), "precision": m.get("precision"), "format": m.get("format"),
                "description": m.get("description", ""), "dataset": (m.get("dataset") or {}).get("name"),
                "artifact": str(self.artifact_dir), "build_test_accuracy": m.get("test_accuracy"),
                "untrained": bool(m.get("untrained", False)),
                # what the run was measured on: the gate refuses to compare runs that differ here
                "dataset_fingerprint": (m.get("inputs") or {}).get("dataset"),
                "labels": (m.get("dataset") or {}).get("labels"),
                "test_fingerprint": self.session.test_fingerprint()}


class ReplayClock:
    """A pytest-benchmark timer that replays durations measured elsewhere.

    Latency and throughput are timed in worker processes (one per variant, interleaved), and load
    and memory in fresh processes; pytest-benchmark then receives exactly those samples -- so its
    statistics, `--benchmark-json`, `--benchmark-compare` and `--benchmark-autosave` see the real
    numbers, not the time this process spent waiting for them. `play(s)` makes the clock read s
    after the timed call started at 0; the duration pytest-benchmark computes is s, exactly.
    """

    __name__ = "slimbench.ReplayClock"

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def __repr__(self) -> str:
        return "slimbench.ReplayClock (samples timed in worker or fresh processes)"

    def play(self, duration_s: float) -> None:
        self.now = duration_s

    def replay(self, benchmark: Any, samples_s: Sequence[float]) -> None:
        """Feed `samples_s` to the benchmark fixture as its rounds (the test module must use this
        clock: `pytest.mark.benchmark(timer=REPLAY_CLOCK)`)."""
        queue = list(samples_s)
        if not queue:
            raise VariantFailed("no samples to record")

        def setup() -> tuple[tuple[float], dict[str, Any]]:
            self.now = 0.0
            return (queue.pop(0),), {}

        benchmark.pedantic(self.play, setup=setup, rounds=len(queue), iterations=1, warmup_rounds=0)


REPLAY_CLOCK = ReplayClock()


@dataclass
class BenchSession:
    config: BenchConfig
    failures: list[dict[str, Any]] = field(default_factory=list)
    _ctx: Any = None
    _variants: dict[str, Variant] = field(default_factory=dict)
    _resolve_errors: dict[str, str] = field(default_factory=dict)
    _build_tried: set[str] = field(default_factory=set)
    _build_failures: dict[str, str] = field(default_factory=dict)  # variant -> why its child build failed
    _obs: Observations | None = None
    wanted: dict[str, set[str]] | None = None  # metric -> variants the selected tests need (None: all)
    results_path: Path | None = None  # the --benchmark-json target, published atomically at the end
    lock: Any = None  # the open lock file on results_path, held for the run
    _test_fp: str | None = None

    # --- set-up --------------------------------------------------------------------------------
    @property
    def ctx(self) -> Any:
        if self._ctx is None:
            from slimbench.build.context import default_context
            from slimbench.commands.options import use_cache_root
            from slimbench.spec.zoo import Zoo

            use_cache_root(self.config.cache)
            cfg = self.config
            self._ctx = default_context(Zoo.load(cfg.models), dataset=cfg.dataset, base=cfg.base,
                                        text_column=cfg.text_column, label_column=cfg.label_column,
                                        test_file=cfg.test_file, max_length=cfg.max_length, log=log)
        return self._ctx

    def variant_names(self) -> list[str]:
        return [s.name for s in self.ctx.zoo.select(self.config.variants)]

    def variant(self, name: str) -> Variant:
        if name not in self._variants:
            from slimbench.build.context import find_artifact
            from slimbench.runtimes.runners import read_manifest, verify_artifact

            if not self.ctx.is_built(name) and self.config.build_missing and name not in self._build_tried:
                # every selected variant that is missing, in one child build (shared sources built once)
                missing = [n for n in self.variant_names() if not self.ctx.is_built(n) and n not in self._build_tried]
                self.build_in_child(missing if name in missing else [name, *missing])
            if name in self._build_failures and not self.ctx.is_built(name):
                from slimbench.errors import ArtifactError

                raise ArtifactError(f"variant {name!r}: {self._build_failures[name]}")
            path = find_artifact(self.ctx, name)  # raises with the build command to run
            verify_artifact(path)  # before anything measures it; also hashes once, ahead of the probes
            manifest = read_manifest(path)
            self._variants[name] = Variant(name, path, manifest, self)
        return self._variants[name]

    def _resolved(self) -> list[Variant]:
        """Every selected variant that resolves to a built artifact; the others' errors are kept."""
        from slimbench.errors import SlimbenchError

        out = []
        missing = [n for n in self.variant_names() if not self.ctx.is_built(n) and n not in self._build_tried]
        if missing and self.config.build_missing:
            self.build_in_child(missing)
        for name in self.variant_names():
            if name in self._resolve_errors:
                continue
            try:
                out.append(self.variant(name))
            except SlimbenchError as err:
                self._resolve_errors[name] = str(err)
        return out

    def build_in_child(self, names: Sequence[str]) -> None:
        """Build missing variants in a child `slimbench build` with this session's inputs: training
        never runs in (nor leaves its imports and memory in) the process that measures. Its output
        is passed on line by line; a failed build leaves the variants it could not build unbuilt,
        and each of them then fails alone with the command to run."""
        import subprocess

        cfg = self.config
        self._build_tried.update(names)
        cmd = [sys.executable, "-m", "slimbench.cli", "build", "--variants", ",".join(names), "--dataset", cfg.dataset,
               "--text-column", cfg.text_column, "--label-column", cfg.label_column]
        for flag, value in (("--models", cfg.models), ("--cache", cfg.cache), ("--base", cfg.base),
                            # the length this session resolved: the child need not tokenize the texts again
                            ("--test-file", cfg.test_file), ("--max-length", self.ctx.max_length)):
            if value:
                cmd += [flag, str(value)]
        log(f"slimbench: {', '.join(names)} not built; building first (`{' '.join(cmd[2:])}`)")
        with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env=dict(os.environ, HF_HUB_OFFLINE="1")) as proc:
            assert proc.stdout is not None
            last = ""
            try:
                for line in proc.stdout:
                    log(line.rstrip("\n"))
                    last = line.strip() or last
            except BaseException:  # Ctrl-C or SIGTERM sent to this process alone: stop the build too
                proc.terminate()  # its SIGTERM handler discards the half-written build
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                raise
        if proc.returncode != 0:
            log(f"slimbench: the build failed (exit {proc.returncode}): {last}")
            for name in names:
                if not self.ctx.is_built(name):
                    self._build_failures[name] = f"building it failed (`slimbench build --variants {name}`): {last}"

    @property
    def splits(self) -> Any:
        return self.ctx.splits

    def gold(self) -> list[Any]:
        """The test split's labels: a class index each, or with label groups a tuple of per-group indices."""
        return [e.target for e in self.splits.test]

    def test_fingerprint(self) -> str:
        """sha256 of the test split's (label, text) pairs: two runs on different test sets differ here.
        A multi-label split's label is its list of per-group indices."""
        if self._test_fp is None:
            import hashlib
            import json

            h = hashlib.sha256()
            for e in self.splits.test:
                h.update(json.dumps([e.target, e.text]).encode())
            self._test_fp = h.hexdigest()
        return self._test_fp

    def test_texts(self, n: int | None = None) -> list[str]:
        texts = [e.text for e in self.splits.test]
        return texts if n is None else list(itertools.islice(itertools.cycle(texts), n))

    # --- the one measuring session ------------------------------------------------------------------
    def observations(self) -> Observations:
        """Everything the timing workers and the fresh-process probes measured, taken once, at the
        first test that needs it."""
        if self._obs is None:
            from slimbench.measure.session import Request, Subject, measure_session

            cfg = self.config
            variants = self._resolved()
            names = [v.name for v in variants]
            wanted = None
            if self.wanted is not None:
                wanted = {m: set(self.wanted.get(m, ())) & set(names) for m in METRICS}
                if "standard" in names:  # the reference of every paired ratio and of agreement
                    for m in ("latency", "throughput", "accuracy"):
                        if wanted[m]:
                            wanted[m].add("standard")
            pairs = {n: "standard" for n in names if n != "standard"} if "standard" in names else {}
            subjects = [Subject(v.name, v.name, v.artifact_dir, cfg.extra_work.get(v.name, 0.0)) for v in variants]
            self._obs = measure_session(Request(subjects, self.test_texts(), cfg.settings, wanted=wanted,
                                                pairs=pairs), log)
        return self._obs

    # the bench suite's names for the session's observations
    timed = probes = observations

    def probe_counts(self) -> tuple[int, int]:
        return self.config.settings.probe_counts()

    def probe_results(self, variant: Variant, n: int) -> list[Any]:
        obs = self.observations()
        error = obs.failed(variant.name)
        if error:
            raise VariantFailed(error)
        if variant.name not in obs.probes:
            raise VariantFailed("no fresh-process probes were taken (the variant was not selected for load or memory)")
        return obs.probes[variant.name][:n]

    def timed_rounds(self, variant: Variant, metric: str) -> list[list[float] | None]:
        t = self.timed()
        if variant.name in t.errors:
            raise VariantFailed(t.errors[variant.name])
        rounds = t.latency if metric == "latency" else t.throughput
        if rounds is None or variant.name not in rounds.blocks:
            raise VariantFailed(f"no {metric} samples were taken (the variant was not selected for {metric})")
        return rounds.rounds_of(variant.name)

    def labels(self, name: str) -> list[Any] | None:
        t = self.timed()
        return t.labels.get(name)

    # --- recording -------------------------------------------------------------------------------
    def record(self, benchmark: Any, variant: Variant, metric: str, figures: dict[str, Any],
               samples: dict[str, Sequence[float]] | None = None, timing: dict[str, Any] | None = None) -> None:
        context = variant.context()
        if timing:
            context["timing"] = timing
        benchmark.extra_info.update({
            "slimbench_schema": SCHEMA, "variant": variant.name, "metric": metric, "status": "ok",
            "figures": figures, "samples": {k: list(map(float, v)) for k, v in (samples or {}).items()},
            "context": context,
        })

    def fail(self, name: str, metric: str, error: str, variant: Variant | None = None) -> None:
        self.failures.append({"slimbench_schema": SCHEMA, "variant": name, "metric": metric, "status": "failed",
                              "error": error, "figures": {}, "samples": {},
                              "context": variant.context() if variant else {"threads": self.config.threads}})
        pytest.fail(f"{name} / {metric}: {error}", pytrace=False)


def log(message: str) -> None:
    """A progress line on the terminal now, even while pytest captures the running test's output
    (the measuring happens inside the first test that needs it and lasts minutes)."""
    capman = CAPTURE[0] if CAPTURE else None
    if capman is not None:
        with capman.global_and_fixture_disabled():
            print(message, file=sys.stderr, flush=True)
    else:
        print(message, file=sys.__stderr__, flush=True)
