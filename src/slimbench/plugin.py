"""pytest plugin: the zoo's variants as a parametrized `variant` fixture, and result recording.

Registered through the package's `pytest11` entry point: once slimbench is installed, any project's
tests can use the `variant` and `benchmark` fixtures, with no conftest.py. It stays passive in a
session that does not use them. Importing it is cheap: nothing heavy is imported until a benchmark
actually runs, and no model is ever loaded into the pytest process:

- latency, throughput and accuracy come from timing workers (`slimbench.worker`), two processes per
  variant (rounds alternate between them), all alive together, sampled in interleaved rounds
  (`slimbench.interleave`);
- load time and peak memory come from fresh-process probes (`slimbench.probes`), round-robin, 3 to 5
  a variant (the timing workers' own start-ups, timed one at a time, are the first two): more than 3
  only while its start-up times are not all within +-10 % of their median;
- pytest-benchmark receives those samples through `REPLAY_CLOCK`, so its JSON, compare and
  autosave see exactly what the workers measured;
- a selected variant that is not built yet is built first by a child `slimbench build` (its
  progress passed on), never inside this process; `--no-build` makes it a failure instead.

Options (all in the "slimbench" group of `pytest --help`):
  --variants a,b        which variants (default: all of the zoo)
  --threads N           intra-op threads for every runtime (default 2)
  --latency-rounds N    interleaved rounds (default 40, more up to --latency-max-rounds while a ratio's
                        CI is wider than --latency-ci, and while the phase is within --latency-max-s)
                        of --latency-block calls (default 12)
  --slimbench-cache D   cache root (assets + artifacts); default $SLIMBENCH_CACHE or ~/.cache/slimbench
  ... see `pytest bench --help`.
"""

from __future__ import annotations

import itertools
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from slimbench.probes import PROBE_PREDICTIONS
from slimbench.results import SCHEMA

SESSION_KEY = pytest.StashKey["BenchSession"]()
# The latency phase's default time budget. The 12-variant zoo's phase took 83 s on a quiet host (40
# rounds, every ratio within +-3 %), 118-138 s on a moderately noisy one (120 rounds), and 279 s on
# a noisy one, where +-3 % would need ~150 rounds: 150 s leaves the first two alone and cuts the
# third by half (reports/evidence/first-report/latency-budget.md).
LATENCY_MAX_S = 150.0
# Sentences of the untimed call before each throughput round's timed batch, which wakes a worker that
# was stopped while the others ran. It used to be a whole batch of 32, timed and dropped: half the
# phase. With 4 the timed batch is as fast, relative to the same batch repeated at once, as after 32,
# and the ratios' intervals are as wide, in half the time (reports/evidence/first-report/
# throughput-warmup.md).
THROUGHPUT_WARMUP = 4


@dataclass(frozen=True)
class BenchConfig:
    """Everything the benchmark suite is told on the command line, validated once."""

    variants: str | None
    threads: int
    cache: Path | None
    models: Path | None
    dataset: str
    base: str | None
    text_column: str
    label_column: str
    test_file: Path | None
    load_samples: int
    load_min_samples: int
    load_spread: float
    memory_samples: int
    latency_rounds: int
    latency_block: int
    latency_warmup: int
    latency_settle_s: float
    freeze_idle: bool
    latency_min_block_s: float
    latency_max_rounds: int
    latency_ci: float
    latency_max_s: float | None  # the latency phase's time budget for rounds after the first (None: none)
    worker_processes: int
    throughput_batch: int
    throughput_rounds: int
    throughput_warmup: int
    probe_timeout: float
    build_missing: bool
    extra_work: dict[str, float]

    @classmethod
    def from_pytest_config(cls, config: pytest.Config) -> BenchConfig:
        def positive(name: str, least: int = 1) -> int:
            value = config.getoption(name)
            if value is None or value < least:
                what = "a positive integer" if least == 1 else f"an integer >= {least}"
                raise pytest.UsageError(f"--{name.replace('_', '-')} must be {what}, got {value!r}")
            return int(value)

        extra: dict[str, float] = {}
        for item in config.getoption("slimbench_extra_work") or []:
            name, _, frac = item.partition("=")
            try:
                extra[name] = float(frac)
            except ValueError:
                raise pytest.UsageError(f"--slimbench-extra-work expects NAME=FRACTION, got {item!r}") from None
        cache = config.getoption("slimbench_cache")
        models = config.getoption("slimbench_models")
        return cls(
            variants=config.getoption("variants"), threads=positive("threads"),
            cache=Path(cache).resolve() if cache else None, models=Path(models).resolve() if models else None,
            dataset=config.getoption("slimbench_dataset"), base=config.getoption("slimbench_base"),
            text_column=config.getoption("slimbench_text_column"),
            label_column=config.getoption("slimbench_label_column"),
            test_file=Path(config.getoption("slimbench_test_file")).resolve() if config.getoption("slimbench_test_file") else None,
            load_samples=positive("load_samples"), load_min_samples=positive("load_min_samples"),
            load_spread=_fraction(config, "load_spread"), memory_samples=positive("memory_samples"),
            latency_rounds=positive("latency_rounds"), latency_block=positive("latency_block", 3),
            latency_warmup=positive("latency_warmup", 0),
            latency_settle_s=_settle_s(config),
            freeze_idle=not config.getoption("no_freeze_idle_workers"),
            latency_min_block_s=positive("latency_min_block_ms", 0) / 1000,
            latency_max_rounds=positive("latency_max_rounds", 0), latency_ci=_fraction(config, "latency_ci"),
            latency_max_s=_budget_s(config.getoption("latency_max_s")),
            worker_processes=positive("worker_processes"),
            throughput_batch=positive("throughput_batch"), throughput_rounds=positive("throughput_rounds"),
            throughput_warmup=positive("throughput_warmup", 0),
            probe_timeout=_positive_seconds(config.getoption("probe_timeout")),
            build_missing=not config.getoption("no_build"), extra_work=extra,
        )


def _settle_s(config: pytest.Config) -> float:
    """--latency-settle-ms; by default none while idle workers are frozen, 60 ms when they are not."""
    from slimbench.workers import idle_pause_s

    value = config.getoption("latency_settle_ms")
    if value is None:
        return idle_pause_s(not config.getoption("no_freeze_idle_workers"))
    if value < 0:
        raise pytest.UsageError(f"--latency-settle-ms must be an integer >= 0, got {value!r}")
    return int(value) / 1000


def _fraction(config: pytest.Config, name: str) -> float:
    value = config.getoption(name)
    if value is None or not 0 <= value < 1:
        raise pytest.UsageError(f"--{name.replace('_', '-')} must be a fraction in [0, 1), got {value!r}")
    return float(value)


def _budget_s(value: Any) -> float | None:
    """--latency-max-s: seconds, or 0 for no time limit."""
    if value is None or not value >= 0:
        raise pytest.UsageError(f"--latency-max-s must be a number of seconds >= 0 (0: no limit), got {value!r}")
    return float(value) or None


def _positive_seconds(value: Any) -> float:
    if value is None or not value > 0:
        raise pytest.UsageError(f"--probe-timeout must be a positive number of seconds, got {value!r}")
    return float(value)


def pytest_addoption(parser: pytest.Parser) -> None:
    from slimbench.options import add_inputs

    g = parser.getgroup("slimbench", "slimbench: benchmark compressed transformer classifiers")
    g.addoption("--variants", default=None, help="comma-separated variants to benchmark (default: the whole zoo)")
    g.addoption("--threads", type=int, default=2,
                help="intra-op threads, identical for torch and onnxruntime (default: 2)")
    add_inputs(g.addoption, prefix="slimbench-")
    g.addoption("--load-samples", type=int, default=5,
                help="the most fresh processes per variant for start-up time, taken round-robin across variants "
                     "(default 5)")
    g.addoption("--load-min-samples", type=int, default=3,
                help="the fewest: after these, a variant gets more (up to --load-samples) only while the probes "
                     "still allowed could move the median start-up time beyond +-(--load-spread) of where it is "
                     "(default 3)")
    g.addoption("--load-spread", type=float, default=0.10,
                help="how far, relative, further probes may still be able to move a variant's median start-up "
                     "time when it gets no more (default 0.10: at 3 of 5 all three within +-10 %% of their "
                     "median, at 4 of 5 the middle two; 0: always --load-samples)")
    g.addoption("--memory-samples", type=int, default=3,
                help="of those fresh processes, how many give peak RSS after 50 predictions (default 3: the first "
                     "three, which make them; the others stop at their first prediction; more than the probes "
                     "taken adds probes)")
    g.addoption("--latency-rounds", type=int, default=40,
                help="interleaved rounds: in each, every variant's worker process runs one block of batch-1 "
                     "predictions on the same test sentences, in a rotated order (default 40)")
    g.addoption("--latency-max-rounds", type=int, default=120,
                help="after --latency-rounds, rounds continue for the variants whose p50 ratio to standard still "
                     "has a 95 %% CI wider than --latency-ci, and standard, up to this many in all (default 120)")
    g.addoption("--latency-ci", type=float, default=0.03,
                help="the CI half-width, relative, at which a variant's p50 ratio needs no more rounds "
                     "(default 0.03: +-3 %%; 0: always --latency-max-rounds)")
    g.addoption("--latency-max-s", type=float, default=LATENCY_MAX_S,
                help="time budget of the latency phase: no round after the first --latency-rounds starts once "
                     "it has lasted this long, so that a noisy machine, where +-3 %% may need hundreds of rounds, "
                     "cannot stretch the run; the report says when the budget ended the rounds and the intervals "
                     "show what that time bought (default %(default)g s; 0: no limit)")
    g.addoption("--worker-processes", type=int, default=2,
                help="timing worker processes per variant; latency and throughput rounds alternate between them, "
                     "so that one process's lasting offset of its own (1-3 %% measured) "
                     "averages out instead of moving the run's ratios (default 2; each is also a start-up sample)")
    g.addoption("--latency-block", type=int, default=12,
                help="batch-1 calls per block; the first two of each block are discarded (default 12: 10 "
                     "samples per round)")
    g.addoption("--no-freeze-idle-workers", action="store_true",
                help="do not stop idle timing workers: by default every worker but the one being asked is "
                     "stopped (SIGSTOP, POSIX only), so that the runtime threads of the worker timed before, "
                     "which spin for ~50 ms after its last call, cannot take a core from the next one")
    g.addoption("--latency-settle-ms", type=int, default=None,
                help="pause before each block, so that the previous worker's spinning runtime threads "
                     "(onnxruntime ~50 ms, OpenMP ~10-20 ms) have gone idle (default: 0 while idle workers are "
                     "frozen, 60 with --no-freeze-idle-workers or where the OS cannot stop a process)")
    g.addoption("--latency-min-block-ms", type=int, default=120,
                help="a variant whose block would be shorter repeats the round's sentences until it lasts about "
                     "this long, so that a burst of machine noise cannot hit a fast variant's whole block "
                     "(default 120; 0: every block is --latency-block calls)")
    g.addoption("--latency-warmup", type=int, default=20,
                help="untimed warm-up predictions per worker before the first round (default 20)")
    g.addoption("--throughput-batch", type=int, default=32, help="batch size for throughput (default 32)")
    g.addoption("--throughput-rounds", type=int, default=10,
                help="interleaved rounds of one timed batch per variant for throughput (default 10)")
    g.addoption("--throughput-warmup", type=int, default=THROUGHPUT_WARMUP,
                help="sentences of the one untimed call each worker makes before its timed batch in a "
                     "throughput round, after having been stopped while the others ran (default %(default)s; "
                     "32: a whole batch, as the rounds did before; 0: none)")
    g.addoption("--probe-timeout", type=float, default=300.0,
                help="seconds before a fresh-process probe or a timing worker's answer counts as hung (default 300)")
    g.addoption("--no-build", action="store_true",
                help="fail instead of building variants that are not in the cache")
    g.addoption("--slimbench-extra-work", action="append", default=[], metavar="NAME=FRACTION",
                help="make variant NAME do FRACTION more CPU work per predict call (a real slowdown, for A/B tests of the gate)")


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
class ProbeSet:
    """Fresh-process probes of every variant, taken round-robin (not five in a row)."""

    results: dict[str, list[Any]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


@dataclass
class TimedSet:
    """What the timing workers measured: rounds of latency and throughput samples, labels of the
    test split, warm reloads; errors per variant; and how it was done."""

    latency: Any = None  # interleave.Rounds
    throughput: Any = None  # interleave.Rounds
    labels: dict[str, list[int]] = field(default_factory=dict)
    accuracy_pass_s: dict[str, float] = field(default_factory=dict)
    labels_cached: list[str] = field(default_factory=list)  # variants whose labels and pass time came from the memo
    reload_s: dict[str, list[float]] = field(default_factory=dict)
    startup: dict[str, list[Any]] = field(default_factory=dict)  # probes.ProbeResult per worker started alone
    errors: dict[str, str] = field(default_factory=dict)
    how: dict[str, Any] = field(default_factory=dict)


@dataclass
class BenchSession:
    config: BenchConfig
    failures: list[dict[str, Any]] = field(default_factory=list)
    _ctx: Any = None
    _variants: dict[str, Variant] = field(default_factory=dict)
    _resolve_errors: dict[str, str] = field(default_factory=dict)
    _build_tried: set[str] = field(default_factory=set)
    _build_failures: dict[str, str] = field(default_factory=dict)  # variant -> why its child build failed
    _probes: ProbeSet | None = None
    _timed: TimedSet | None = None
    wanted: dict[str, set[str]] | None = None  # metric -> variants the selected tests need (None: all)
    results_path: Path | None = None  # the --benchmark-json target, published atomically at the end
    _test_fp: str | None = None

    def needs(self, *metrics: str) -> set[str] | None:
        """The variants that the selected tests of these metrics need (None: no selection known)."""
        if self.wanted is None:
            return None
        return set().union(*(self.wanted.get(m, set()) for m in metrics))

    # --- set-up --------------------------------------------------------------------------------
    @property
    def ctx(self) -> Any:
        if self._ctx is None:
            from slimbench.build.context import default_context
            from slimbench.options import use_cache_root
            from slimbench.zoo import Zoo

            use_cache_root(self.config.cache)
            cfg = self.config
            self._ctx = default_context(Zoo.load(cfg.models), dataset=cfg.dataset, base=cfg.base,
                                        text_column=cfg.text_column, label_column=cfg.label_column,
                                        test_file=cfg.test_file, log=log)
        return self._ctx

    def variant_names(self) -> list[str]:
        return [s.name for s in self.ctx.zoo.select(self.config.variants)]

    def variant(self, name: str) -> Variant:
        if name not in self._variants:
            from slimbench.build.context import find_artifact
            from slimbench.runtime import read_manifest, verify_artifact

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
                            ("--test-file", cfg.test_file)):
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

    def test_fingerprint(self) -> str:
        """sha256 of the test split's (label, text) pairs: two runs on different test sets differ here."""
        if self._test_fp is None:
            import hashlib
            import json

            h = hashlib.sha256()
            for e in self.splits.test:
                h.update(json.dumps([e.label, e.text]).encode())
            self._test_fp = h.hexdigest()
        return self._test_fp

    def test_texts(self, n: int | None = None) -> list[str]:
        texts = [e.text for e in self.splits.test]
        return texts if n is None else list(itertools.islice(itertools.cycle(texts), n))

    # --- fresh-process probes, round-robin across variants ----------------------------------------
    def probes(self) -> ProbeSet:
        """Load and memory probes of every variant: round k probes each variant once, in a rotated
        order, so the machine's drift spreads over all variants instead of landing on one."""
        if self._probes is None:
            from slimbench.interleave import Heartbeat, rotated
            from slimbench.probes import run_probe, wants_another_probe

            cfg, out = self.config, ProbeSet()
            need = self.needs("load", "memory")
            variants = {v.name: v for v in self._resolved() if need is None or v.name in need}
            least, most = self.probe_counts()
            texts = self.test_texts(PROBE_PREDICTIONS)
            # The timing workers start one at a time and time their start-up as a probe does: their
            # processes are the first rounds.
            startup = self.timed().startup if self.needs("latency", "throughput", "accuracy", "load") != set() else {}
            count = f"{least}" if least == most else f"{least}-{most}"
            log(f"slimbench: {count} fresh-process probes of each of {len(variants)} variants, round-robin"
                + (" (the first: the timing workers' own start-ups)" if startup else "")
                + (f"; more than {least} only while the probes still allowed could move a variant's median "
                   f"start-up time beyond +-{cfg.load_spread:.0%}" if least < most else ""))
            t = time.perf_counter()
            beat = Heartbeat()

            def wanted(name: str) -> bool:
                got = [r.start_to_first_prediction_s for r in out.results.get(name, [])]
                return name not in out.errors and wants_another_probe(got, least, most, cfg.load_spread)

            for k in range(most):
                for name in rotated([n for n in variants if wanted(n)], k):
                    if k < len(startup.get(name, [])):
                        out.results.setdefault(name, []).append(startup[name][k])
                        continue
                    v = variants[name]
                    env = None
                    if name in cfg.extra_work:
                        env = dict(os.environ, SLIMBENCH_EXTRA_WORK=str(cfg.extra_work[name]))
                    taken = out.results.get(name, [])  # its last probe: how long this one will take
                    if beat.due(ahead=(taken[-1].wall_s or taken[-1].start_to_first_prediction_s) if taken else 0.0):
                        log(f"slimbench: fresh-process probes, round {k + 1}, "
                            f"{sum(map(len, out.results.values()))} taken, {beat.elapsed:.0f} s elapsed")
                    # only the processes that give peak RSS predict on after their first prediction
                    # (memory after inference); a start-up sample needs nothing past the first
                    n_predict = PROBE_PREDICTIONS if len(taken) < cfg.memory_samples else 0
                    r = run_probe(v.artifact_dir, cfg.threads, texts, n_predict=n_predict,
                                  timeout_s=cfg.probe_timeout, env=env)
                    if r.ok:
                        out.results.setdefault(name, []).append(r)
                    else:
                        out.errors[name] = r.error or "probe failed"
            log(f"slimbench: fresh-process probes done in {time.perf_counter() - t:.0f} s")
            self._probes = out
        return self._probes

    def probe_counts(self) -> tuple[int, int]:
        """The fewest and the most fresh processes a variant gets (peak RSS needs its own count)."""
        cfg = self.config
        most = max(cfg.load_samples, cfg.memory_samples)
        least = max(min(cfg.load_min_samples, cfg.load_samples), cfg.memory_samples)
        return (most if cfg.load_spread == 0 else least), most

    def probe_results(self, variant: Variant, n: int) -> list[Any]:
        probes = self.probes()
        if variant.name in probes.errors:
            raise VariantFailed(probes.errors[variant.name])
        return probes.results[variant.name][:n]

    # --- timing workers: --worker-processes per variant, interleaved rounds ---------------------------
    @property
    def timed_done(self) -> bool:
        return self._timed is not None

    def timed(self) -> TimedSet:
        if self._timed is None:
            self._timed = self._run_workers()
        return self._timed

    def _run_workers(self) -> TimedSet:
        from slimbench.interleave import (
            DISCARD,
            Heartbeat,
            equal_time_repeats,
            progress_log,
            run_rounds,
            wide_ratios,
        )
        from slimbench.machine import StealMeter
        from slimbench.workers import WorkerPool, WorkerSpec

        cfg, out = self.config, TimedSet()
        probe_errors = self._probes.errors if self._probes else {}
        need = self.needs("latency", "throughput", "accuracy", "load")
        if need is not None and "standard" in self.variant_names() and self.needs("latency", "throughput", "accuracy"):
            need.add("standard")  # the reference of every paired ratio and of agreement
        variants = [v for v in self._resolved() if v.name not in probe_errors and (need is None or v.name in need)]
        out.errors.update({n: e for n, e in probe_errors.items()})
        texts = self.test_texts()
        specs = [WorkerSpec(v.name, v.artifact_dir, cfg.threads, cfg.extra_work.get(v.name, 0.0)) for v in variants]
        as_probe = self.needs("load", "memory") != set()
        n_proc = cfg.worker_processes
        log(f"slimbench: starting {len(specs) * n_proc} timing workers ({n_proc} process{'es' if n_proc > 1 else ''} "
            "per variant, all alive together)"
            + (", one at a time, each timing its own start-up as a fresh-process probe" if as_probe else ""))
        phase: dict[str, float] = {}
        beat = Heartbeat()
        previous = [0.0]

        def started_one(done: int, total: int) -> None:
            took, previous[0] = beat.elapsed - previous[0], beat.elapsed  # the next start takes about as long
            if beat.due(ahead=took if done < total else 0.0):
                log(f"slimbench: {done}/{total} timing workers ready, {beat.elapsed:.0f} s elapsed")

        with WorkerPool(specs, texts, timeout_s=cfg.probe_timeout,
                        startup_predictions=PROBE_PREDICTIONS if as_probe else None, started_one=started_one,
                        processes=n_proc, freeze_idle=cfg.freeze_idle) as pool:
            phase["workers_start"] = pool.start_s
            out.startup = dict(pool.startup)
            block, size = cfg.latency_block, cfg.throughput_batch
            t, meter = time.perf_counter(), StealMeter()
            steal: dict[str, float | None] = {}
            warm = pool.warm_up(cfg.latency_warmup)
            repeat = equal_time_repeats(warm, block, cfg.latency_min_block_s)
            if self.needs("latency") != set():
                log(f"slimbench: latency, {cfg.latency_rounds} interleaved rounds of {block} batch-1 calls "
                    f"per variant (first {DISCARD} of each block discarded; variants faster than "
                    f"{cfg.latency_min_block_s * 1000:g} ms a block repeat its sentences)")
                pairs = {k: "standard" for k in pool.alive if k != "standard"} if "standard" in pool.alive else {}
                more = wide_ratios(pairs, cfg.latency_ci) if pairs and cfg.latency_max_rounds > cfg.latency_rounds else None
                out.latency = run_rounds(pool.alive, cfg.latency_rounds, pool.blocks("latency", block, repeat=repeat),
                                         discard=DISCARD,
                                         progress=progress_log(log, "slimbench: latency", max_s=cfg.latency_max_s,
                                                               rounds=cfg.latency_rounds),
                                         settle_s=cfg.latency_settle_s, more=more, max_rounds=cfg.latency_max_rounds,
                                         max_s=cfg.latency_max_s)
            phase["latency"], t, steal["latency"] = time.perf_counter() - t, time.perf_counter(), meter.lap()
            if self.needs("throughput") != set():
                warmup = cfg.throughput_warmup
                log(f"slimbench: throughput, {cfg.throughput_rounds} interleaved rounds of one batch of {size} "
                    f"per variant" + (f", after an untimed call on {warmup} sentence{'s' if warmup > 1 else ''}"
                                      if warmup else ""))
                out.throughput = run_rounds(pool.alive, cfg.throughput_rounds,
                                            pool.blocks("batch", 1, size, warmup=warmup),
                                            discard=0, progress=progress_log(log, "slimbench: throughput"),
                                            settle_s=cfg.latency_settle_s)
            phase["throughput"], steal["throughput"] = time.perf_counter() - t, meter.lap()
            phase.update(self._passes(pool, out))
            out.errors.update(pool.errors)
            idle = ("every worker but the one asked stopped (SIGSTOP)" if pool.freeze_idle else
                    "a pause before each block")
            out.how = {"method": "worker processes per variant (round r in process r mod processes), all alive "
                                 f"together, interleaved rounds in a rotated order, {idle}, "
                                 "first calls of each block discarded",
                       "processes": n_proc, "frozen_idle": pool.freeze_idle,
                       "rounds": cfg.latency_rounds, "block": block, "discard": DISCARD,
                       "settle_s": cfg.latency_settle_s, "min_block_s": cfg.latency_min_block_s,
                       "max_rounds": cfg.latency_max_rounds, "ci_half_width": cfg.latency_ci,
                       "max_s": cfg.latency_max_s,
                       "rounds_run": len(out.latency.orders) if out.latency else 0,
                       "stopped": out.latency.stopped if out.latency else None,
                       "repeat": {k: r for k, r in repeat.items() if r > 1},
                       "throughput_rounds": cfg.throughput_rounds, "throughput_warmup": cfg.throughput_warmup, "variants": [s.key for s in specs],
                       "workers_start_s": round(pool.start_s, 3),
                       "phase_s": {k: round(v, 1) for k, v in phase.items()},
                       "steal": {k: v for k, v in steal.items() if v is not None and self.needs(k) != set()},
                       "labels_cached": out.labels_cached}
        log("slimbench: timing workers done: " + ", ".join(f"{k.replace('_', ' ')} {v:.0f} s" for k, v in phase.items()))
        return out

    def _passes(self, pool: Any, out: TimedSet) -> dict[str, float]:
        """Each worker's pass over the test split (labels for accuracy) and its warm reloads; the
        seconds each took in all."""
        phase, t = {}, time.perf_counter()
        if self.needs("accuracy") != set():
            self._accuracy_pass(pool, out)
        phase["accuracy"], t = time.perf_counter() - t, time.perf_counter()
        if self.needs("load") != set():
            for key in pool.alive:
                reply = pool.request(key, {"op": "reload", "n": WARM_RELOADS})
                if reply is not None:
                    out.reload_s[key] = reply["s"]
        phase["warm_reload"] = time.perf_counter() - t
        return phase

    def _accuracy_pass(self, pool: Any, out: TimedSet) -> None:
        """Every worker's labels for the test split and the seconds its pass took. Both are memoised
        (`slimbench.memo`, keyed by the artifact's files, the code, the libraries, the sentences, batch,
        threads and extra work): a later run of the same files and code reads them instead of
        predicting again, and says so in `how.labels_cached`."""
        from slimbench import memo
        from slimbench.interleave import Heartbeat
        from slimbench.memo import TEST_SPLIT_BATCH

        code, texts, cfg = memo.code_fingerprint(memo.running_code()), self.test_texts(), self.config
        cached = []
        beat = Heartbeat()
        log(f"slimbench: accuracy, each worker's pass over the {len(texts)} test sentences (read from the cache "
            "when an earlier pass predicted them from the same files and code)")
        for done, key in enumerate(pool.alive, 1):
            if done > 1 and beat.due():
                log(f"slimbench: accuracy, {done - 1}/{len(pool.alive)} variants done, {beat.elapsed:.0f} s elapsed")
            artifact = self._variants[key].artifact_dir if key in self._variants else None
            mkey = None
            if artifact is not None and memo.in_cache(artifact):
                extra = {key: cfg.extra_work[key]} if cfg.extra_work.get(key) else {}
                mkey = memo.prediction_key(code, artifact, texts, cfg.threads, extra)
                labels, seconds = memo.labels(mkey, len(texts)), memo.get("prediction-seconds", mkey)
                if labels is not None and isinstance(seconds, float):
                    out.labels[key], out.accuracy_pass_s[key] = labels, seconds
                    cached.append(key)
                    continue
            reply = pool.request(key, {"op": "predict_all", "batch_size": TEST_SPLIT_BATCH})
            if reply is not None:
                out.labels[key], out.accuracy_pass_s[key] = reply["labels"], reply["s"][0]
                if mkey is not None:
                    memo.put("predictions", mkey, reply["labels"])
                    memo.put("prediction-seconds", mkey, float(reply["s"][0]))
        out.labels_cached = cached

    def timed_rounds(self, variant: Variant, metric: str) -> list[list[float] | None]:
        t = self.timed()
        if variant.name in t.errors:
            raise VariantFailed(t.errors[variant.name])
        rounds = t.latency if metric == "latency" else t.throughput
        if rounds is None or variant.name not in rounds.blocks:
            raise VariantFailed(f"no {metric} samples were taken (the variant was not selected for {metric})")
        return rounds.rounds_of(variant.name)

    def labels(self, name: str) -> list[int] | None:
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


WARM_RELOADS = 3


_CAPTURE: list[Any] = []  # pytest's capture manager, once configured


def log(message: str) -> None:
    """A progress line on the terminal now, even while pytest captures the running test's output
    (the measuring happens inside the first test that needs it and lasts minutes)."""
    capman = _CAPTURE[0] if _CAPTURE else None
    if capman is not None:
        with capman.global_and_fixture_disabled():
            print(message, file=sys.stderr, flush=True)
    else:
        print(message, file=sys.__stderr__, flush=True)


def pytest_unconfigure(config: pytest.Config) -> None:
    if _CAPTURE and _CAPTURE[0] is config.pluginmanager.getplugin("capturemanager"):
        _CAPTURE.clear()


@pytest.hookimpl(trylast=True)  # after pytest-benchmark has made its session
def pytest_configure(config: pytest.Config) -> None:
    """Validate every slimbench option, and the variant selection, once: a bad value is one line
    (`ERROR: ...`, exit 4) before anything runs. Take over where results are written, so that no run
    can leave a half-written or silently partial results file."""
    from slimbench.errors import SlimbenchError

    if not hasattr(config.option, "variants"):
        return
    _CAPTURE[:] = [config.pluginmanager.getplugin("capturemanager")]
    variants = config.getoption("variants")
    if variants is not None and not variants.strip(" ,"):
        raise pytest.UsageError("--variants is empty; name at least one variant (or leave it out for the whole zoo)")
    session = _session(config)
    from slimbench.zoo import default_models_dir

    # Installed, the plugin loads in every pytest session: check the zoo now when this is visibly a
    # slimbench session (variants or a zoo named, or a models/ directory to read); else on first use.
    if variants is not None or config.getoption("slimbench_models") or default_models_dir().is_dir():
        try:
            session.variant_names()
        except SlimbenchError as err:
            raise pytest.UsageError(str(err)) from None
    bs = getattr(config, "_benchmarksession", None)
    target = getattr(bs, "json", None)
    if bs is not None and target:
        target = Path(target)
        if not target.parent.is_dir() or not os.access(target.parent, os.W_OK):
            raise pytest.UsageError(f"--benchmark-json={target}: directory {target.parent} does not exist or is "
                                    "not writable; create it first (nothing was measured)")
        session.results_path = target
        bs.json = target.with_name(f".{target.name}.partial")  # pytest-benchmark writes here; we publish


def _publish_results(config: pytest.Config, exitstatus: int) -> None:
    """Move the results file into place atomically; an interrupted run's file is marked incomplete;
    a run whose every measurement failed still gets a file holding its failures."""
    import json

    session = config.stash.get(SESSION_KEY, None)
    if session is None or session.results_path is None:
        return
    target = session.results_path
    partial = target.with_name(f".{target.name}.partial")
    interrupted = exitstatus == pytest.ExitCode.INTERRUPTED
    if partial.is_file():
        try:
            doc = json.loads(partial.read_text())
        except (OSError, ValueError):  # cut short while writing: keep whatever was there before
            partial.unlink(missing_ok=True)
            return
    elif session.failures:
        from slimbench.machine import machine_facts

        doc = {"machine_info": {"slimbench_machine": machine_facts()}, "commit_info": {}, "benchmarks": [],
               "datetime": time.strftime("%Y-%m-%dT%H:%M:%S"), "version": "slimbench"}
    else:
        return
    block = doc.setdefault("slimbench", {"schema": SCHEMA, "failures": session.failures})
    if interrupted:
        block["incomplete"] = True
        block["reason"] = "the run was interrupted (Ctrl-C or SIGTERM) before every test ran"
    from slimbench.results import results_text

    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(results_text(doc))  # as the baseline is written: compact, every sample kept
    os.replace(tmp, target)
    partial.unlink(missing_ok=True)
    if interrupted:
        log(f"slimbench: the run was interrupted; {target} holds what was measured, marked incomplete")


@pytest.hookimpl(hookwrapper=True, tryfirst=True)  # outermost: runs after pytest-benchmark has written
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> Any:
    yield
    _publish_results(session.config, int(exitstatus))


def _session(config: pytest.Config) -> BenchSession:
    if SESSION_KEY not in config.stash:
        config.stash[SESSION_KEY] = BenchSession(BenchConfig.from_pytest_config(config))
    return config.stash[SESSION_KEY]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "variant" not in metafunc.fixturenames:
        return
    names = _session(metafunc.config).variant_names()  # validated once, in pytest_configure
    metafunc.parametrize("variant", names, ids=names, indirect=True)


METRIC_ORDER = ("size", "latency", "throughput", "accuracy", "load", "memory")


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the benchmarks metric by metric: sizes, then the timing workers of every variant
    (interleaved; their predictions also give accuracy), then the fresh-process probes of every
    variant (round-robin). No model is loaded into this process."""
    bench = [i for i in items if "variant" in getattr(getattr(i, "callspec", None), "params", {})]
    if not bench:
        return
    names = _session(config).variant_names()
    rank = {n: k for k, n in enumerate(names)}

    def key(item: pytest.Item) -> tuple[int, int]:
        metric = getattr(item, "originalname", item.name).removeprefix("test_")
        order = METRIC_ORDER.index(metric) if metric in METRIC_ORDER else len(METRIC_ORDER)
        return order, rank.get(item.callspec.params["variant"], len(rank))  # type: ignore[attr-defined]

    others = [i for i in items if i not in bench]
    items[:] = others + sorted(bench, key=key)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Remember which metrics and variants the selected tests (after -k/-m) need, so that the
    workers and probes do only that work."""
    wanted: dict[str, set[str]] = {}
    for item in session.items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if "variant" in params:
            metric = getattr(item, "originalname", item.name).removeprefix("test_")
            wanted.setdefault(metric, set()).add(params["variant"])
    if wanted and SESSION_KEY in session.config.stash:
        session.config.stash[SESSION_KEY].wanted = wanted


@pytest.fixture(scope="session")
def slimbench_session(request: pytest.FixtureRequest) -> BenchSession:
    """The benchmark session: config, build context, probes, recording."""
    return _session(request.config)


@pytest.fixture
def variant(request: pytest.FixtureRequest, slimbench_session: BenchSession) -> Variant:
    """A built variant of the zoo (built on first use unless --no-build)."""
    from slimbench.errors import SlimbenchError

    try:
        return slimbench_session.variant(request.param)
    except SlimbenchError as err:
        slimbench_session.fail(request.param, request.node.originalname.removeprefix("test_"), str(err))
        raise  # unreachable: fail() raises


@pytest.fixture
def measure(slimbench_session: BenchSession, variant: Variant, request: pytest.FixtureRequest) -> Callable[..., Any]:
    """Run a measurement; a VariantFailed or SlimbenchError becomes a recorded failed result."""
    from slimbench.errors import SlimbenchError

    metric = request.node.originalname.removeprefix("test_")

    def run(fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except (VariantFailed, SlimbenchError) as err:
            slimbench_session.fail(variant.name, metric, str(err), variant)

    return run


def pytest_benchmark_update_json(config: pytest.Config, benchmarks: Any, output_json: dict[str, Any]) -> None:
    session = config.stash.get(SESSION_KEY, None)
    output_json["slimbench"] = {"schema": SCHEMA, "failures": session.failures if session else []}


def code_changed_since_commit(root: Path) -> bool | None:
    """Whether the checkout's files differ from its commit, leaving out `reports/` (the bench and
    the sweep write their outputs there, so pytest-benchmark's flag was always set in `make report`).
    None when git cannot tell."""
    import subprocess

    try:
        out = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)reports"],
                             cwd=root, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return bool(out.stdout.strip()) if out.returncode == 0 else None


def pytest_benchmark_update_commit_info(config: pytest.Config, commit_info: dict[str, Any]) -> None:
    changed = code_changed_since_commit(Path(str(config.rootpath)))
    if changed is not None:
        commit_info["dirty"] = changed
        commit_info["dirty_excludes"] = "reports/"


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict[str, Any]) -> None:
    from slimbench.machine import machine_facts

    machine_info["slimbench_machine"] = machine_facts()


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    bs = config.stash.get(SESSION_KEY, None)
    if bs is None or not bs.failures:
        return
    terminalreporter.section("slimbench: failed measurements")
    for f in bs.failures:
        terminalreporter.line(f"{f['variant']} / {f['metric']}: {f['error']}")
