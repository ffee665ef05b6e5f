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
instead come from `[tool.slimbench]` in ./pyproject.toml or ./slimbench.toml (`slimbench.commands.options`).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from slimbench.analysis.results import SCHEMA
from slimbench.measure.settings import add_knobs
from slimbench.plugin.session import CAPTURE, PREFIX, BenchConfig, BenchSession, Variant, VariantFailed, log

SESSION_KEY = pytest.StashKey["BenchSession"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    from slimbench.commands.options import add_inputs

    g = parser.getgroup("slimbench", "slimbench: benchmark compressed transformer classifiers")
    g.addoption(f"--{PREFIX}variants", default=None,
                help="comma-separated variants to benchmark (default: the whole zoo)")
    add_inputs(g.addoption, prefix=PREFIX)
    add_knobs(g.addoption, prefix=PREFIX)
    g.addoption(f"--{PREFIX}no-build", action="store_true",
                help="fail instead of building variants that are not in the cache")
    # for tests of the gate and of the harness: a real, known slowdown of one variant
    g.addoption(f"--{PREFIX}extra-work", action="append", default=[], metavar="NAME=FRACTION", help=argparse.SUPPRESS)




def pytest_unconfigure(config: pytest.Config) -> None:
    if CAPTURE and CAPTURE[0] is config.pluginmanager.getplugin("capturemanager"):
        CAPTURE.clear()


@pytest.hookimpl(trylast=True)  # after pytest-benchmark has made its session
def pytest_configure(config: pytest.Config) -> None:
    """Validate every slimbench option, and the variant selection, once: a bad value is one line
    (`ERROR: ...`, exit 4) before anything runs. Take over where results are written, so that no run
    can leave a half-written or silently partial results file."""
    from slimbench.errors import SlimbenchError

    if not hasattr(config.option, "slimbench_variants"):
        return
    CAPTURE[:] = [config.pluginmanager.getplugin("capturemanager")]
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
    from slimbench.analysis.results import results_text

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
