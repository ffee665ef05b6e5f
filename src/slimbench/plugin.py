"""pytest plugin: the zoo's variants as a parametrized `variant` fixture, and result recording.

Registered through the `pytest11` entry point (and the repository's conftest.py). Importing it
is cheap: nothing heavy is imported until a benchmark actually runs.

Options (all in the "slimbench" group of `pytest --help`):
  --variants a,b        which variants (default: all of the zoo)
  --threads N           intra-op threads for every runtime (default 2)
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

from slimbench.results import SCHEMA

SESSION_KEY = pytest.StashKey["BenchSession"]()


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
    memory_samples: int
    latency_rounds: int
    latency_warmup: int
    throughput_batch: int
    throughput_rounds: int
    probe_timeout: float
    build_missing: bool
    extra_work: dict[str, float]

    @classmethod
    def from_pytest_config(cls, config: pytest.Config) -> BenchConfig:
        def positive(name: str) -> int:
            value = config.getoption(name)
            if value is None or value < 1:
                raise pytest.UsageError(f"--{name.replace('_', '-')} must be a positive integer, got {value!r}")
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
            load_samples=positive("load_samples"), memory_samples=positive("memory_samples"),
            latency_rounds=positive("latency_rounds"), latency_warmup=config.getoption("latency_warmup"),
            throughput_batch=positive("throughput_batch"), throughput_rounds=positive("throughput_rounds"),
            probe_timeout=float(config.getoption("probe_timeout")),
            build_missing=not config.getoption("no_build"), extra_work=extra,
        )


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("slimbench", "slimbench: benchmark compressed transformer classifiers")
    g.addoption("--variants", default=None, help="comma-separated variants to benchmark (default: the whole zoo)")
    g.addoption("--threads", type=int, default=2,
                help="intra-op threads, identical for torch and onnxruntime (default: 2)")
    g.addoption("--slimbench-cache", default=None,
                help="cache root for assets and built artifacts (default: $SLIMBENCH_CACHE or ~/.cache/slimbench)")
    g.addoption("--slimbench-models", default=None, help="directory of variant specs (default: models/)")
    g.addoption("--slimbench-dataset", default="movie-snippets",
                help="movie-snippets (default), synthetic, or a CSV/TSV/JSONL file with text,label columns")
    g.addoption("--slimbench-base", default=None, metavar="DIR|hub:ID",
                help="your checkpoint in place of the pinned MiniLM (see `slimbench build --help`)")
    g.addoption("--slimbench-text-column", default="text", help="text column of a dataset file (default: text)")
    g.addoption("--slimbench-label-column", default="label", help="label column of a dataset file (default: label)")
    g.addoption("--slimbench-test-file", default=None, help="a separate test file for a dataset file")
    g.addoption("--load-samples", type=int, default=5, help="fresh processes per variant for load time (default 5)")
    g.addoption("--memory-samples", type=int, default=3, help="fresh processes per variant for peak RSS (default 3)")
    g.addoption("--latency-rounds", type=int, default=300,
                help="batch-1 predictions timed per variant, each on the next test sentence (default 300)")
    g.addoption("--latency-warmup", type=int, default=20, help="untimed warm-up predictions (default 20)")
    g.addoption("--throughput-batch", type=int, default=32, help="batch size for throughput (default 32)")
    g.addoption("--throughput-rounds", type=int, default=10, help="batches timed for throughput (default 10)")
    g.addoption("--probe-timeout", type=float, default=300.0,
                help="seconds before a fresh-process probe counts as hung (default 300)")
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
                "untrained": bool(m.get("untrained", False))}


@dataclass
class BenchSession:
    config: BenchConfig
    failures: list[dict[str, Any]] = field(default_factory=list)
    health: dict[str, str | None] = field(default_factory=dict)  # name -> error (None = healthy)
    _ctx: Any = None
    _runner: tuple[str, Any] | None = None
    _reference: list[int] | None = None
    _variants: dict[str, Variant] = field(default_factory=dict)

    # --- set-up --------------------------------------------------------------------------------
    @property
    def ctx(self) -> Any:
        if self._ctx is None:
            from slimbench.build.builder import default_context
            from slimbench.zoo import Zoo

            if self.config.cache:
                os.environ["SLIMBENCH_CACHE"] = str(self.config.cache)
            cfg = self.config
            self._ctx = default_context(Zoo.load(cfg.models), dataset=cfg.dataset, base=cfg.base,
                                        text_column=cfg.text_column, label_column=cfg.label_column,
                                        test_file=cfg.test_file,
                                        log=lambda s: print(s, file=sys.__stderr__, flush=True))
        return self._ctx

    def variant_names(self) -> list[str]:
        return [s.name for s in self.ctx.zoo.select(self.config.variants)]

    def variant(self, name: str) -> Variant:
        if name not in self._variants:
            from slimbench.build.builder import build, find_artifact
            from slimbench.runtime import read_manifest

            if not self.ctx.is_built(name):
                if not self.config.build_missing:
                    find_artifact(self.ctx, name)  # raises with the build command to run
                build(self.ctx, [name])
            path = self.ctx.artifact_dir(name)
            manifest = read_manifest(path)
            self._variants[name] = Variant(name, path, manifest, self)
        return self._variants[name]

    @property
    def splits(self) -> Any:
        return self.ctx.splits

    def test_texts(self, n: int | None = None) -> list[str]:
        texts = [e.text for e in self.splits.test]
        return texts if n is None else list(itertools.islice(itertools.cycle(texts), n))

    # --- fresh-process probes --------------------------------------------------------------------
    def probe(self, variant: Variant, n_predict: int) -> Any:
        from slimbench.probes import run_probe

        env = None
        if variant.name in self.config.extra_work:
            env = dict(os.environ, SLIMBENCH_EXTRA_WORK=str(self.config.extra_work[variant.name]))
        result = run_probe(variant.artifact_dir, self.config.threads, self.test_texts(max(1, n_predict)),
                           n_predict=n_predict, timeout_s=self.config.probe_timeout, env=env)
        self.health.setdefault(variant.name, None if result.ok else result.error)
        if not result.ok:
            self.health[variant.name] = result.error
        return result

    def ensure_healthy(self, variant: Variant) -> None:
        """Before loading a variant into *this* process, prove in a child that it does not crash."""
        if variant.name not in self.health:
            self.probe(variant, n_predict=1)
        if self.health[variant.name]:
            raise VariantFailed(f"not measured in-process because its fresh-process probe failed: "
                                f"{self.health[variant.name]}")

    def probe_rounds(self, benchmark: Any, variant: Variant, rounds: int, n_predict: int) -> list[Any]:
        """`rounds` fresh-process probes, each timed by pytest-benchmark (spawn -> exit)."""
        results: list[Any] = []

        def once() -> None:
            r = self.probe(variant, n_predict)
            if not r.ok:
                raise VariantFailed(r.error)
            results.append(r)

        benchmark.pedantic(once, rounds=rounds, iterations=1, warmup_rounds=0)
        return results

    # --- in-process runners ----------------------------------------------------------------------
    def runner(self, variant: Variant) -> Any:
        """The variant's runner in this process; only one is kept, so variants don't share memory."""
        from slimbench.runtime import open_runner

        if self._runner and self._runner[0] == variant.name:
            return self._runner[1]
        self.ensure_healthy(variant)
        self.close_runner()
        runner = open_runner(variant.artifact_dir, threads=self.config.threads)
        if variant.name in self.config.extra_work:
            from slimbench.runtime import ExtraWorkRunner

            runner = ExtraWorkRunner(runner, self.config.extra_work[variant.name])
        self._runner = (variant.name, runner)
        return runner

    def close_runner(self) -> None:
        if self._runner:
            self._runner[1].close()
            self._runner = None

    def set_reference_predictions(self, pred: list[int]) -> None:
        self._reference = list(pred)

    def reference_predictions(self) -> list[int] | None:
        """The standard variant's test predictions (for agreement), or None without a standard."""
        if self._reference is None:
            if "standard" not in self.ctx.zoo.specs or not self.ctx.is_built("standard"):
                return None
            from slimbench.build.builder import predict_in_batches

            standard = self.variant("standard")
            self._reference = predict_in_batches(self.runner(standard), self.test_texts())
        return self._reference

    # --- recording -------------------------------------------------------------------------------
    def record(self, benchmark: Any, variant: Variant, metric: str, figures: dict[str, Any],
               samples: dict[str, Sequence[float]] | None = None) -> None:
        benchmark.extra_info.update({
            "slimbench_schema": SCHEMA, "variant": variant.name, "metric": metric, "status": "ok",
            "figures": figures, "samples": {k: list(map(float, v)) for k, v in (samples or {}).items()},
            "context": variant.context(),
        })

    def fail(self, name: str, metric: str, error: str, variant: Variant | None = None) -> None:
        self.failures.append({"slimbench_schema": SCHEMA, "variant": name, "metric": metric, "status": "failed",
                              "error": error, "figures": {}, "samples": {},
                              "context": variant.context() if variant else {"threads": self.config.threads}})
        pytest.fail(f"{name} / {metric}: {error}", pytrace=False)


def _session(config: pytest.Config) -> BenchSession:
    if SESSION_KEY not in config.stash:
        config.stash[SESSION_KEY] = BenchSession(BenchConfig.from_pytest_config(config))
    return config.stash[SESSION_KEY]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "variant" not in metafunc.fixturenames:
        return
    from slimbench.errors import SlimbenchError

    try:
        names = _session(metafunc.config).variant_names()
    except SlimbenchError as err:
        raise pytest.UsageError(str(err)) from None
    metafunc.parametrize("variant", names, ids=names, indirect=True)


METRIC_ORDER = ("size", "load", "memory", "latency", "throughput", "accuracy")


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the benchmarks variant by variant (standard first), fresh-process probes before the
    in-process ones: a probe proves the variant does not crash before it is loaded into this
    process, each variant is loaded here once, and standard's predictions are ready as the reference."""
    bench = [i for i in items if "variant" in getattr(getattr(i, "callspec", None), "params", {})]
    if not bench:
        return
    names = _session(config).variant_names()
    rank = {n: k for k, n in enumerate(names)}

    def key(item: pytest.Item) -> tuple[int, int]:
        metric = getattr(item, "originalname", item.name).removeprefix("test_")
        order = METRIC_ORDER.index(metric) if metric in METRIC_ORDER else len(METRIC_ORDER)
        return rank.get(item.callspec.params["variant"], len(rank)), order  # type: ignore[attr-defined]

    others = [i for i in items if i not in bench]
    items[:] = others + sorted(bench, key=key)


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


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict[str, Any]) -> None:
    from slimbench.machine import machine_facts

    machine_info["slimbench_machine"] = machine_facts()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    bs = session.config.stash.get(SESSION_KEY, None)
    if bs is not None:
        bs.close_runner()


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    bs = config.stash.get(SESSION_KEY, None)
    if bs is None or not bs.failures:
        return
    terminalreporter.section("slimbench: failed measurements")
    for f in bs.failures:
        terminalreporter.line(f"{f['variant']} / {f['metric']}: {f['error']}")


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t
