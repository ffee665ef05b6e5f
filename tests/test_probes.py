"""The probes are proven against known truth: calibration variants with a known sleep, a known
allocation and known faults. Tolerances were measured on the 2-core reference machine (see the
constants) and hold with the other core busy."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest

from slimbench.build.builder import build
from slimbench.measure import latency_figures, memory_figures, size_figures
from slimbench.runtimes.probes import median_reach, run_probe, wants_another_probe
from slimbench.runtimes.runners import open_runner, read_manifest
from slimbench.spec.schema import spec_from_dict
from slimbench.spec.zoo import Zoo
from slimbench.stats import bootstrap_ratio_ci, mann_whitney_p, percentile, relative_spread, summarize

SLEEP_S = 0.005
# time.sleep(5 ms) + tokenizing one sentence: medians of 5.31-5.34 ms (p90 5.39 ms) over 5 child runs
# here, with the other core busy training; allow 1.5 ms of scheduler noise.
LATENCY_TOLERANCE_S = (0.0, 0.0015)
ALLOC_BYTES = 200 * 1024 * 1024
# RSS grows by the allocation plus the tokenizer and allocator overhead: measured +1.9 MiB over the
# 200 MiB at load and +0.6 MiB over the 100 MiB at inference here (5 runs, spread < 0.2 MiB).
MEMORY_TOLERANCE_BYTES = 8 * 1024 * 1024
PADDING_BYTES = 1_234_567

CALIBRATION = [
    {"name": "sleep-5ms", "runtime": "calibration", "calibration": {"sleep_s": SLEEP_S}},
    {"name": "alloc-200mb", "runtime": "calibration",
     "calibration": {"load_alloc_bytes": ALLOC_BYTES, "predict_alloc_bytes": ALLOC_BYTES // 2}},
    {"name": "padded", "runtime": "calibration", "calibration": {"padding_bytes": PADDING_BYTES}},
    {"name": "segfault", "runtime": "calibration", "calibration": {"fault": "segfault"}},
    {"name": "load-segfault", "runtime": "calibration", "calibration": {"fault": "load-segfault"}},
    {"name": "hang", "runtime": "calibration", "calibration": {"fault": "hang"}},
    {"name": "raise", "runtime": "calibration", "calibration": {"fault": "raise"}},
]


@pytest.fixture(scope="module")
def calibration(tmp_path_factory, context_for):
    zoo = Zoo(spec_from_dict(d) for d in CALIBRATION)
    ctx = context_for(zoo, tmp_path_factory.mktemp("calibration"))
    return build(ctx, zoo.names)


TEXTS = ["the movie was good", "a dull plot", "great cast and fun"]


def test_sleep_variant_measures_its_sleep_in_a_child_and_in_process(calibration):
    probe = run_probe(calibration["sleep-5ms"], threads=1, texts=TEXTS, n_predict=60)
    assert probe.ok, probe.error
    child = float(np.median(probe.warm_latency_s))
    with open_runner(calibration["sleep-5ms"]) as runner:
        samples = []
        for k in range(60):
            t = time.perf_counter()
            runner.predict([TEXTS[k % 3]])
            samples.append(time.perf_counter() - t)
    inproc = latency_figures(samples)["p50_s"]["value"]
    lo, hi = LATENCY_TOLERANCE_S
    assert SLEEP_S + lo <= child <= SLEEP_S + hi
    assert SLEEP_S + lo <= inproc <= SLEEP_S + hi
    assert abs(child - inproc) <= 0.001  # in-process and fresh-process latency agree


def test_alloc_variant_shows_its_allocation_in_peak_rss(calibration):
    results = [run_probe(calibration["alloc-200mb"], threads=1, texts=TEXTS, n_predict=3) for _ in range(2)]
    assert all(r.ok for r in results), [r.error for r in results]
    mem = memory_figures(results)
    assert abs(mem["load_increment_bytes"]["value"] - ALLOC_BYTES) <= MEMORY_TOLERANCE_BYTES
    # predict touches 100 MiB of scratch on top of the 200 MiB held since load
    assert abs(mem["inference_increment_bytes"]["value"] - ALLOC_BYTES // 2) <= MEMORY_TOLERANCE_BYTES
    assert mem["peak_rss_bytes"]["n"] == 2 and mem["baseline_rss_bytes"]["value"] < 200e6
    # the split of the RSS after inference: the 200 MiB held since load are the process's own
    # (anonymous) pages; anonymous + file-backed is the current RSS, never above the peak
    assert ALLOC_BYTES <= mem["anon_rss_bytes"]["value"] <= ALLOC_BYTES + 200e6
    assert 0 < mem["file_rss_bytes"]["value"] < 200e6
    for r in results:
        assert r.rss_bytes["anon"] + r.rss_bytes["file"] + r.rss_bytes["shmem"] <= r.vmhwm_bytes["after_inference"]
        # writing 200 MiB at load is CPU work of the process's own (page faults, the kernel zeroing pages)
        assert set(r.phases_cpu_s) == {"import", "load"} and r.phases_cpu_s["load"] > 0
        assert r.load_rusage["minor_faults"] > 0 and r.load_rusage["user_s"] + r.load_rusage["sys_s"] > 0


def test_load_phases_are_reported_and_sum_to_the_child_wall_time(calibration):
    r = run_probe(calibration["sleep-5ms"], threads=1, texts=TEXTS)
    assert r.ok and set(r.phases_s) == {"interpreter", "import", "load", "first_predict"} and r.source == "probe"
    assert r.phases_s["first_predict"] >= SLEEP_S
    assert r.start_to_first_prediction_s <= r.wall_s  # the phases fit inside spawn -> exit


def test_the_probe_child_skips_the_interpreter_teardown(calibration, tmp_path):
    """After torch and transformers the teardown takes 1-2 s that no figure includes: the child
    exits once its record is out. An atexit hook shows whether the teardown ran."""
    marker = tmp_path / "teardown-ran"
    (tmp_path / "sitecustomize.py").write_text(
        f"import atexit, pathlib\natexit.register(pathlib.Path({str(marker)!r}).touch)\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), *filter(None, [os.environ.get("PYTHONPATH")])]))
    subprocess.run([sys.executable, "-c", "pass"], env=env, check=True)
    assert marker.exists()  # the hook runs at a normal exit
    marker.unlink()
    r = run_probe(calibration["sleep-5ms"], threads=1, texts=TEXTS, n_predict=2, env=env)
    assert r.ok, r.error
    assert len(r.warm_latency_s) == 2 and not marker.exists()


def test_size_of_a_known_artifact(calibration):
    path = calibration["padded"]
    figs = size_figures(path, read_manifest(path))
    tokenizer = (path / "tokenizer.json").stat().st_size
    assert figs["weights_bytes"]["value"] == PADDING_BYTES
    assert figs["total_bytes"]["value"] == PADDING_BYTES + tokenizer  # the manifest is not counted
    assert PADDING_BYTES <= figs["gzip_bytes"]["value"] <= PADDING_BYTES * 1.01 + tokenizer  # random bytes don't compress


@pytest.mark.parametrize("name, message", [
    ("segfault", "probe of segfault-[0-9a-f]+ crashed with SIGSEGV"),
    ("load-segfault", "crashed with SIGSEGV"),
    ("raise", "exited with status 1: RuntimeError: calibration runner asked to fail"),
])
def test_a_crashing_child_becomes_a_failed_result(calibration, name, message):
    r = run_probe(calibration[name], threads=1, texts=TEXTS, n_predict=1)
    assert not r.ok and r.error is not None
    import re

    assert re.search(message, r.error), r.error


@pytest.mark.slow
def test_a_hanging_child_times_out(calibration):
    t = time.perf_counter()
    r = run_probe(calibration["hang"], threads=1, texts=TEXTS, n_predict=1, timeout_s=3)
    assert not r.ok and "timed out after 3 s" in str(r.error)
    assert time.perf_counter() - t < 30


def test_statistics_on_literal_samples():
    s = summarize([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    assert (s.n, s.median, s.min, s.max, s.mean) == (10, 5.5, 1, 10, 5.5)
    assert s.iqr == pytest.approx(4.5) and s.p90 == pytest.approx(9.1)
    assert percentile([0, 10], 50) == 5
    assert relative_spread([10, 10, 10, 10]) == 0
    ratio, lo, hi = bootstrap_ratio_ci([10.0] * 20, [12.0] * 20)
    assert ratio == pytest.approx(1.2) and lo == pytest.approx(1.2) and hi == pytest.approx(1.2)
    rng = np.random.default_rng(0)
    a, b = rng.normal(10, 1, 200), rng.normal(10, 1, 200)
    assert mann_whitney_p(a, b) > 0.05 and mann_whitney_p(a, b * 1.2) < 1e-6


@pytest.mark.parametrize("a, b, p", [
    # scipy 1.17.1's mannwhitneyu(a, b, alternative="two-sided").pvalue, taken before scipy was dropped
    ([1.0, 2.5, 3.1, 4.7], [2.2, 5.0, 6.1, 7.3, 8.0], 0.1111111111111111),  # exact: 7 of 126 orderings, twice
    ([0.5, 0.6], [0.7, 0.8], 0.3333333333333333),  # exact: the most extreme of 6 orderings, twice
    ([0.0, 1, 2, 3, 4, 5, 6, 7], [3.5, 4.5, 5.5, 6.5, 7.5, 8.5, 9.5, 10.5], 0.020668220668220667),  # exact, 8 and 8
    ([1, 2, 2, 3, 5], [2, 3, 4, 4, 6, 7], 0.13862587987892763),  # ties: normal, tie- and continuity-corrected
    ([1.0, 1.0, 1.0], [1.0, 1.0, 1.0], 1.0),  # all tied: no evidence either way
])
def test_mann_whitney_p_matches_scipy_on_literal_samples(a, b, p):
    assert mann_whitney_p(a, b) == pytest.approx(p, rel=1e-12, abs=1e-15)
    assert mann_whitney_p(b, a) == pytest.approx(p, rel=1e-12, abs=1e-15)  # two-sided: symmetric


def test_mann_whitney_p_of_large_samples_matches_scipy():
    rng = np.random.default_rng(0)
    a = np.round(rng.lognormal(0, 0.1, 40), 6)
    b = np.round(rng.lognormal(0.05, 0.1, 35), 6)
    assert mann_whitney_p(a, b) == pytest.approx(0.0005686290671781482, rel=1e-9)  # scipy 1.17.1, normal


@pytest.mark.parametrize("start_s, more", [
    ([7.0], True),                   # fewer than the least
    ([7.0, 7.3], True),
    ([7.0, 7.3, 7.6], False),        # all within +-10 % of 7.3
    ([7.0, 7.3, 8.2], True),         # 8.2 is 12 % above the median
    ([0.3, 0.5, 0.4, 0.9], True),    # a fifth could still move the median from 0.45 to 0.4 or 0.5
    ([5.03, 3.94, 3.62, 4.17], False),  # a fifth can only move it within [3.94, 4.17]: within 10 % of 4.055
    ([0.3, 0.5, 0.4, 0.9, 0.4], False),  # the most
])
def test_start_up_probes_stop_when_more_cannot_move_the_median(start_s, more):
    assert wants_another_probe(start_s, least=3, most=5, spread=0.10) is more


def test_median_reach_is_where_further_samples_can_take_the_median():
    assert median_reach([1.0, 2.0, 3.0], 2) == (1.0, 3.0)
    assert median_reach([1.0, 2.0, 3.0, 10.0], 1) == (2.0, 3.0)
    assert median_reach([1.0, 2.0, 3.0], 0) == (2.0, 2.0)
    assert median_reach([1.0, 2.0], 3) == (float("-inf"), float("inf"))  # three can outvote two
    rng = np.random.default_rng(1)  # the bound holds for any values the further samples take
    for _ in range(200):
        seen, more = list(rng.lognormal(0, 0.3, rng.integers(1, 6))), int(rng.integers(0, 4))
        low, high = median_reach(seen, more)
        final = float(np.median(seen + list(rng.lognormal(0, 1.0, more))))
        assert low <= final <= high
