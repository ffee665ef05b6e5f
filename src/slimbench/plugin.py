"""pytest plugin: the zoo's variants as a parametrized `variant` fixture, and result recording.

Registered through the package's `pytest11` entry point: once slimbench is installed, any project's
tests can use the `variant` and `benchmark` fixtures, with no conftest.py. It stays passive in a
session that does not use them. Importing it is cheap: nothing heavy is imported until a benchmark
actually runs, and no model is ever loaded into the pytest process.

Everything is measured by the one measuring session (`slimbench.measure.session`) that
`slimbench run`, the Python API and `slimbench compare` use too: timing workers (latency,
throughput, the test split's labels, warm reloads) and fresh-process probes (start-up time, peak
RSS). This plugin only decides what to measure (the selected tests), runs the session once, at the
first test that needs it, and maps its observations to pytest-benchmark records: pytest-benchmark
receives the samples through `REPLAY_CLOCK`, so its JSON, compare and autosave see exactly what the
workers measured. A selected variant that is not built yet is built first by a child `slimbench
build` (its progress passed on), never inside this process; `--slimbench-no-build` makes it a
failure instead.

Every option starts with `--slimbench-` (see `pytest --help`, group "slimbench"); the inputs may
instead come from `[tool.slimbench]` in ./pyproject.toml or ./slimbench.toml (`slimbench.options`).
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from slimbench.measure.settings import MeasureSettings, SettingsError, add_knobs
from slimbench.results import SCHEMA

if TYPE_CHECKING:
    from slimbench.measure.session import Observations

METRICS = ("latency", "throughput", "accuracy", "load", "memory")
SESSION_KEY = pytest.StashKey["BenchSession"]()
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
        from slimbench.errors import SlimbenchError
        from slimbench.options import resolve_inputs

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


def pytest_addoption(parser: pytest.Parser) -> None:
    from slimbench.options import add_inputs

    g = parser.getgroup("slimbench", "slimbench: benchmark compressed transformer classifiers")
    g.addoption(f"--{PREFIX}variants", default=None,
                help="comma-separated variants to benchmark (default: the whole zoo)")
    add_inputs(g.addoption, prefix=PREFIX)
    add_knobs(g.addoption, prefix=PREFIX)
    g.addoption(f"--{PREFIX}no-build", action="store_true",
                help="fail instead of building variants that are not in the cache")
    # for tests of the gate and of the harness: a real, known slowdown of one variant
    g.addoption(f"--{PREFIX}extra-work", action="append", default=[], metavar="NAME=FRACTION", help=argparse.SUPPRESS)


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
            from slimbench.options import use_cache_root
            from slimbench.zoo import Zoo

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
        from slimbench.data import single_label_only

        return single_label_only(self.ctx.splits, "the benchmark run")

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

    if not hasattr(config.option, "slimbench_variants"):
        return
    _CAPTURE[:] = [config.pluginmanager.getplugin("capturemanager")]
    variants = config.getoption("slimbench_variants")
    if variants is not None and not variants.strip(" ,"):
        raise pytest.UsageError("--slimbench-variants is empty; name at least one variant (or leave it out for the "
                                "whole zoo)")
    session = _session(config)
    cfg = session.config
    # Installed, the plugin loads in every pytest session: check the zoo now when this is visibly a
    # slimbench session (variants, a zoo or a project config named); else on first use.
    if cfg.variants is not None or cfg.models is not None or cfg.config_file is not None:
        try:
            session.variant_names()
        except SlimbenchError as err:
            raise pytest.UsageError(str(err)) from None
    bs = getattr(config, "_benchmarksession", None)
    target = getattr(bs, "json", None)
    if bs is not None and target:
        target = Path(target)
        if target.is_dir():
            raise pytest.UsageError(f"--benchmark-json={target} is a directory; give a file path (nothing was measured)")
        if not target.parent.is_dir() or not os.access(target.parent, os.W_OK):
            raise pytest.UsageError(f"--benchmark-json={target}: directory {target.parent} does not exist or is "
                                    "not writable; create it first (nothing was measured)")
        session.lock = _lock_results(target)
        session.results_path = target
        bs.json = _partial_path(target)  # pytest-benchmark writes here; we publish
    if session.results_path is not None or cfg.variants is not None:
        _on_sigterm_interrupt()


def _partial_path(target: Path, pid: int | None = None) -> Path:
    """This run's own partial file: no other run's (a stale one, or a concurrent one's) is ever published."""
    return target.with_name(f".{target.name}.{pid or os.getpid()}.partial")


def _lock_results(target: Path) -> Any:
    """Hold an exclusive lock on `target` for this run: a second run writing the same file refuses at
    start instead of one of them being lost. Partials of runs that died are removed."""
    import fcntl

    lock = open(target.with_name(f".{target.name}.lock"), "a+")  # noqa: SIM115 -- held until the process ends
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock.seek(0)
        other = lock.read().strip() or "another process"
        lock.close()
        raise pytest.UsageError(f"--benchmark-json={target}: another slimbench run ({other}) is writing it; wait for "
                                "it to finish or give another path (nothing was measured)") from None
    lock.seek(0)
    lock.truncate()
    lock.write(f"pid {os.getpid()}")
    lock.flush()
    for stale in target.parent.glob(f".{target.name}.*.partial"):
        stale.unlink(missing_ok=True)  # the lock is ours: no live run owns these
    return lock


def _on_sigterm_interrupt() -> None:
    """SIGTERM (what `timeout` and a CI cancel send) interrupts the run as Ctrl-C does, so that what
    was measured is still published, marked incomplete; pytest installs no handler of its own."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def _publish_results(config: pytest.Config, exitstatus: int) -> None:
    """Move the results file into place atomically; an interrupted run's file is marked incomplete;
    a run whose every measurement failed still gets a file holding its failures."""
    import json

    session = config.stash.get(SESSION_KEY, None)
    if session is None or session.results_path is None:
        return
    target = session.results_path
    partial = _partial_path(target)
    interrupted = exitstatus == pytest.ExitCode.INTERRUPTED
    if partial.is_file():
        try:
            doc = json.loads(partial.read_text())
        except (OSError, ValueError):  # cut short while writing: keep whatever was there before
            partial.unlink(missing_ok=True)
            return
    elif session.failures or interrupted:
        from slimbench.machine import machine_facts

        doc = {"machine_info": {"slimbench_machine": machine_facts()}, "commit_info": {}, "benchmarks": [],
               "datetime": time.strftime("%Y-%m-%dT%H:%M:%S"), "version": "slimbench"}
    else:
        return
    block = doc.setdefault("slimbench", {"schema": SCHEMA, "failures": session.failures})
    block["failures"] = session.failures
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
