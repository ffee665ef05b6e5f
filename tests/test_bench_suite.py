"""End to end: `pytest bench --benchmark-only` over calibration variants with known costs, in a
subprocess, exactly as a user runs it. A crashing variant becomes a failed result while the others
are measured and saved."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from slimbench.analysis.results import load_run
from slimbench.testing import write_specs

pytestmark = pytest.mark.slow  # subprocess runs and builds: the full suite only (pytest -m "not slow" skips them)

REPO = Path(__file__).resolve().parents[1]
SPECS = [
    {"name": "standard", "runtime": "calibration", "calibration": {"sleep_s": 0.005}},
    {"name": "fast", "runtime": "calibration", "calibration": {"sleep_s": 0.001, "padding_bytes": 1000}},
    {"name": "crashy", "runtime": "calibration", "calibration": {"fault": "segfault"}},
]


def run_bench(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    models = write_specs(tmp_path / "models", SPECS)
    cmd = [sys.executable, "-m", "pytest", str(REPO / "bench"), "--benchmark-only", "-p", "no:cacheprovider",
           "--slimbench-models", str(models), "--slimbench-cache", str(tmp_path / "cache"),
           "--slimbench-dataset", "synthetic", "--slimbench-load-samples", "2", "--slimbench-memory-samples", "1",
           "--slimbench-latency-rounds", "20", "--slimbench-latency-block", "5", "--slimbench-latency-warmup", "5", "--slimbench-throughput-rounds", "3", "--slimbench-threads", "1",
           "--slimbench-latency-min-block-ms", "0", "--slimbench-latency-max-rounds", "0",
           f"--benchmark-json={tmp_path / 'results.json'}", "-q", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=600)


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bench")
    return tmp, run_bench(tmp)


def test_crash_is_a_failed_row_and_the_rest_is_saved(full_run):
    tmp, proc = full_run
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-2000:]
    run = load_run(tmp / "results.json")
    for name in ("standard", "fast"):
        for metric in ("size", "load", "memory", "latency", "throughput", "accuracy"):
            m = run.get(name, metric)
            assert m is not None and m.ok, (name, metric)
    assert run.get("crashy", "size").ok  # reading its files works; running it does not
    crashed = [m for m in run.measurements if m.variant == "crashy" and m.metric != "size"]
    assert {m.metric for m in crashed} == {"load", "memory", "latency", "throughput", "accuracy"}
    assert all(m.status == "failed" and "SIGSEGV" in (m.error or "") for m in crashed), crashed
    # its timing worker crashed first: no fresh probe is started for it, and its load row says why
    assert "crashy / load: " in proc.stdout and "crashed with SIGSEGV" in proc.stdout


def test_progress_reaches_the_terminal_while_pytest_captures(full_run):
    """The measuring runs inside the first test that needs it, for minutes: its progress lines must
    not be swallowed by pytest's capture. Missing variants are built first, by a child build."""
    _, proc = full_run
    err = proc.stderr
    assert "standard, fast, crashy not built; building first (`slimbench.cli build --variants" in err, err[-3000:]
    assert "[3/3] crashy: built in" in err  # the child's own progress, passed on
    assert "slimbench: starting 6 timing workers (2 processes per variant" in err and "slimbench: timing workers done: workers start" in err
    assert "slimbench: fresh-process probes done in" in err


def test_latency_and_ratios_match_the_known_sleeps(full_run):
    tmp, _ = full_run
    run = load_run(tmp / "results.json")
    std = run.get("standard", "latency")
    fast = run.get("fast", "latency")
    assert std.figures["p50_s"].n == 60 and len(std.samples["latency_s"]) == 60  # 20 rounds x (5 - 2 discarded)
    assert std.samples["latency_round"] == [float(r) for r in range(20) for _ in range(3)]
    assert 0.005 <= std.figures["p50_s"].value <= 0.0065
    assert 0.001 <= fast.figures["p50_s"].value <= 0.0025
    ratio = fast.figures["p50_s"].value / std.figures["p50_s"].value
    assert 0.15 <= ratio <= 0.45  # (1 ms + overhead) / (5 ms + overhead)
    child = run.get("standard", "memory").figures["child_latency_p50_s"].value
    assert abs(child - std.figures["p50_s"].value) <= 0.001  # timing worker and fresh process agree
    paired = fast.figures["p50_ratio"]  # from the paired rounds, with its CI
    assert paired.unit == "x" and paired.n == 20 and 0.15 <= paired.value <= 0.45
    assert run.get("fast", "size").figures["weights_bytes"].value == 1000
    # two worker processes per variant, rounds alternating between them; each timed its own start-up,
    # so those two are the variant's load samples (--load-samples 2: no fresh probe needed)
    assert std.context["timing"]["processes"] == 2
    if sys.platform.startswith("linux"):  # idle workers stopped (SIGSTOP), so no pause before a block
        assert std.context["timing"]["frozen_idle"] is True and std.context["timing"]["settle_s"] == 0.0
    load = run.get("standard", "load")
    assert len(load.samples["load_s"]) == 2, load.samples.keys()
    assert load.samples["worker_start"] == [1.0, 1.0]  # both are the workers' own start-ups, and say so
    stats = json.loads((tmp / "results.json").read_text())["benchmarks"]
    wall = next(b for b in stats if b["name"].startswith("test_load[standard"))["stats"]["data"]
    # spawn -> ready, never a placeholder 0: it holds the phases the worker timed itself
    phases = [sum(load.samples[f"{p}_s"][i] for p in ("interpreter", "import", "load", "first_predict"))
              for i in range(2)]
    assert len(wall) == 2 and all(w >= ph > 0 for w, ph in zip(wall, phases, strict=True)), (wall, phases)


def test_short_blocks_repeat_and_wide_ratios_get_more_rounds(tmp_path):
    """Equal-time blocks: standard (5 ms x 5 calls) repeats its sentences to reach 60 ms (3x), fast
    (1 ms) more; an unreachable CI target runs every variant to --latency-max-rounds."""
    res = run_bench(tmp_path, "-k", "test_latency", "--slimbench-variants", "standard,fast", "--slimbench-latency-rounds", "6",
                    "--slimbench-latency-min-block-ms", "60", "--slimbench-latency-max-rounds", "9", "--slimbench-latency-ci", "0.000001",
                    "--slimbench-no-freeze-idle-workers")
    assert res.returncode == 0, res.stdout + res.stderr
    run = load_run(tmp_path / "results.json")
    std, fast = run.get("standard", "latency"), run.get("fast", "latency")
    assert len(std.samples["latency_s"]) == 9 * (5 * 3 - 2), len(std.samples["latency_s"])
    assert len(fast.samples["latency_s"]) > 9 * (5 * 5 - 2)
    assert fast.figures["p50_ratio"].n == 9
    assert std.context["timing"]["stopped"] == "max_rounds" and std.context["timing"]["rounds_run"] == 9
    assert std.context["timing"]["max_s"] == 150.0  # the default budget: far beyond this run's rounds
    assert 0.15 <= fast.figures["p50_ratio"].value <= 0.45
    assert std.context["timing"]["repeat"]["standard"] == 3
    # the old way, asked for: idle workers not stopped, a 60 ms pause before each block instead
    assert std.context["timing"]["frozen_idle"] is False and std.context["timing"]["settle_s"] == 0.06
    if Path("/proc/stat").exists():  # the hypervisor's share of CPU time while the rounds ran
        assert 0.0 <= std.context["timing"]["steal"]["latency"] < 1.0


def test_results_record_machine_context_and_schema(full_run):
    tmp, _ = full_run
    data = json.loads((tmp / "results.json").read_text())
    machine = data["machine_info"]["slimbench_machine"]
    assert {"id", "cpu", "cores", "ram_bytes", "os", "libraries"} <= set(machine)
    assert data["slimbench"]["schema"] == 1
    latency = next(b for b in data["benchmarks"] if b["extra_info"]["metric"] == "latency")
    # the latency samples are written once, as pytest-benchmark's stats.data (readers restore them)
    assert latency["extra_info"]["samples_in_stats"] == "latency_s"
    assert "latency_s" not in latency["extra_info"]["samples"] and len(latency["stats"]["data"]) == 60
    memory = next(b for b in data["benchmarks"] if b["extra_info"]["metric"] == "memory")["extra_info"]
    assert {"rss_anon", "rss_file"} <= set(memory["samples"]) and "anon_rss_bytes" in memory["figures"]
    assert data["commit_info"]["dirty_excludes"] == "reports/"  # the bench's own outputs are not "uncommitted code"
    info = next(b["extra_info"] for b in data["benchmarks"] if b["extra_info"]["metric"] == "latency")
    assert info["context"]["threads"] == 1 and len(info["context"]["spec_hash"]) == 64
    for fig in info["figures"].values():
        assert set(fig) >= {"value", "unit", "n"}


def test_selected_variants_only_and_unknown_names(tmp_path):
    proc = run_bench(tmp_path, "--slimbench-variants", "fast", "-k", "size or accuracy")
    assert proc.returncode == 0, proc.stdout[-2000:]
    run = load_run(tmp_path / "results.json")
    assert run.variants == ["fast"]
    bad = run_bench(tmp_path, "--slimbench-variants", "fats")
    assert bad.returncode != 0
    assert "unknown variant 'fats'; known variants: standard, fast, crashy" in bad.stdout + bad.stderr


def _one_line_usage_error(proc: subprocess.CompletedProcess[str], message: str) -> None:
    assert proc.returncode == 4, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Traceback" not in proc.stdout + proc.stderr and message in proc.stdout + proc.stderr


@pytest.mark.parametrize("args, message", [
    (["--slimbench-variants", ""], "--slimbench-variants is empty"),
    (["--slimbench-variants", "fats"], "unknown variant 'fats'"),
    (["--slimbench-latency-warmup", "-1"], "--slimbench-latency-warmup must be an integer >= 0, got -1"),
    (["--slimbench-probe-timeout", "0"], "--slimbench-probe-timeout must be a number >= 1, got 0.0"),
    (["--slimbench-latency-block", "2"], "--slimbench-latency-block must be an integer >= 3"),
    (["--slimbench-latency-settle-ms", "-1"], "--slimbench-latency-settle-ms must be an integer >= 0, got -1"),
    (["--slimbench-latency-max-s", "-5"], "--slimbench-latency-max-s must be a number >= 0, got -5.0"),
    (["--slimbench-latency-ci", "nan"], "--slimbench-latency-ci must be a number in [0, 1), got nan"),
    (["--slimbench-load-spread", "inf"], "--slimbench-load-spread must be a number in [0, 1), got inf"),
])
def test_usage_errors_are_one_line_before_anything_runs(tmp_path, args, message):
    _one_line_usage_error(run_bench(tmp_path, *args), message)


def test_results_into_a_missing_directory_are_refused_before_measuring(tmp_path):
    proc = run_bench(tmp_path, f"--benchmark-json={tmp_path / 'nope' / 'out.json'}")
    _one_line_usage_error(proc, "does not exist or is not writable")


def test_a_stale_partial_is_never_published(tmp_path):
    """A partial file left by a run that was killed between writing and publishing is not this run's."""
    stale = tmp_path / ".results.json.99999.partial"
    stale.write_text(json.dumps({"benchmarks": [], "slimbench": {"schema": 1, "failures": []}, "stale": True}))
    proc = run_bench(tmp_path, "--slimbench-variants", "crashy", "-k", "latency")
    assert proc.returncode == 1
    data = json.loads((tmp_path / "results.json").read_text())
    assert "stale" not in data and [f["variant"] for f in data["slimbench"]["failures"]] == ["crashy", "crashy"]
    assert not stale.exists()


def test_a_second_run_writing_the_same_results_refuses_at_start(tmp_path):
    import fcntl

    with open(tmp_path / ".results.json.lock", "a+") as held:  # a run in progress holds it
        held.write("pid 4242")
        held.flush()
        fcntl.flock(held, fcntl.LOCK_EX)
        proc = run_bench(tmp_path)
    _one_line_usage_error(proc, "another slimbench run (pid 4242) is writing it")
    assert not (tmp_path / "results.json").exists()


def test_results_naming_a_directory_are_refused_before_measuring(tmp_path):
    (tmp_path / "out.json").mkdir()
    _one_line_usage_error(run_bench(tmp_path, f"--benchmark-json={tmp_path / 'out.json'}"), "is a directory")


def test_a_run_whose_every_measurement_fails_still_writes_its_failures(tmp_path):
    proc = run_bench(tmp_path, "--slimbench-variants", "crashy", "-k", "latency or accuracy")
    assert proc.returncode == 1
    run = load_run(tmp_path / "results.json")
    assert {m.metric for m in run.measurements} == {"latency", "throughput", "accuracy"} and not any(
        m.ok for m in run.measurements)


def start_bench_to_interrupt(tmp_path: Path, models: Path, *extra: str) -> subprocess.Popen[str]:
    """`pytest bench` on `models`, in the background, with SIGINT at its default: a job started in
    the background (nohup, `&`) inherits SIGINT ignored, and Python then installs no
    KeyboardInterrupt handler."""
    import signal

    return subprocess.Popen([sys.executable, "-m", "pytest", str(REPO / "bench"), "--benchmark-only", "-q",
                             "-p", "no:cacheprovider", "--slimbench-models", str(models), "--slimbench-cache",
                             str(tmp_path / "cache"), "--slimbench-dataset", "synthetic", "--slimbench-threads", "1", *extra],
                            cwd=REPO, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


@pytest.mark.parametrize("signum", ["SIGINT", "SIGTERM"])  # Ctrl-C; `timeout` and a CI cancel
def test_an_interrupted_run_publishes_a_file_marked_incomplete(tmp_path, signum):
    import signal
    import time

    specs = [*SPECS, {"name": "hang", "runtime": "calibration", "calibration": {"fault": "hang"}}]
    models = write_specs(tmp_path / "models", specs)
    (tmp_path / "results.json").write_text('{"old": "complete"}')
    proc = start_bench_to_interrupt(tmp_path, models, f"--benchmark-json={tmp_path / 'results.json'}")
    deadline = time.time() + 120
    while time.time() < deadline and not list((tmp_path / "cache" / "artifacts").glob("hang-*/manifest.json")):
        time.sleep(0.5)
    time.sleep(8)  # sizes measured; the workers are starting, the hanging one never answers
    children = psutil.Process(proc.pid).children(recursive=True)
    proc.send_signal(getattr(signal, signum))
    out, _ = proc.communicate(timeout=120)
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["slimbench"]["incomplete"] is True, out[-2000:]
    assert any(b["extra_info"]["metric"] == "size" for b in data["benchmarks"])
    assert not list(tmp_path.glob(".results.json.*partial"))  # no partial file left behind
    _, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, f"left running after the interrupt: {[c.cmdline() for c in alive]}"


def test_an_interrupted_run_stops_the_build_it_started(tmp_path):
    """SIGINT to the pytest process alone (as a CI runner's SIGTERM is): the child `slimbench build`
    it started for an unbuilt variant stops too, and leaves no half-written artifact."""
    import signal
    import time

    specs = [SPECS[0], {"name": "slowbuild", "runtime": "calibration", "calibration": {"sleep_s": 0.001, "build_s": 120}}]
    models = write_specs(tmp_path / "models", specs)
    proc = start_bench_to_interrupt(tmp_path, models)
    deadline = time.time() + 120
    while time.time() < deadline and not list((tmp_path / "cache" / "artifacts").glob("standard-*/manifest.json")):
        time.sleep(0.5)
    time.sleep(3)  # standard built; the child build now sleeps in slowbuild's build
    builds = [c for c in psutil.Process(proc.pid).children(recursive=True) if "build" in c.cmdline()]
    assert builds, "no child build was running"
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    _, alive = psutil.wait_procs(builds, timeout=10)
    assert not alive, out[-2000:]
    assert not list((tmp_path / "cache" / "artifacts").glob("slowbuild-*/manifest.json"))


def test_a_second_run_reads_the_test_split_labels_from_the_memo(tmp_path):
    """Labels are a pure function of the artifact's files, code, libraries, sentences, batch and threads:
    the second run of the same zoo reads them (and their pass time) instead of predicting again."""
    runs = []
    for k in range(2):
        proc = run_bench(tmp_path, "-k", "(accuracy or latency) and not crashy", f"--benchmark-json={tmp_path / f'r{k}.json'}")
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
        runs.append(load_run(tmp_path / f"r{k}.json"))
    timing = [r.get("standard", "latency").context["timing"] for r in runs]
    assert timing[0]["labels_cached"] == [] and sorted(timing[1]["labels_cached"]) == ["fast", "standard"]
    for name in ("standard", "fast"):
        first, second = (r.get(name, "accuracy") for r in runs)
        assert first.figures["accuracy"].value == second.figures["accuracy"].value
    from slimbench.render.report import render_markdown

    text = render_markdown([runs[1]], plots=False)
    assert "The labels of `fast`, `standard` (and their pass time) were read from the cache" in text
