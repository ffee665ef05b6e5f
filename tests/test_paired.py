"""Paired timing: the round schedule, the paired-ratio statistics (literal numbers), and the timing
workers proven against calibration variants with known costs and known faults."""

from __future__ import annotations

import numpy as np
import pytest

from slimbench.build.builder import build
from slimbench.interleave import paired_order, rotated, run_rounds
from slimbench.measure import flatten_rounds, paired_figures, unflatten_rounds
from slimbench.stats import paired_ratio
from slimbench.workers import WorkerError, WorkerPool, WorkerSpec
from slimbench.zoo import Zoo, spec_from_dict

SLEEP_S = 0.005
CALIBRATION = [
    {"name": "sleep-5ms", "runtime": "calibration", "calibration": {"sleep_s": SLEEP_S}},
    {"name": "sleep-1ms", "runtime": "calibration", "calibration": {"sleep_s": 0.001}},
    {"name": "segfault", "runtime": "calibration", "calibration": {"fault": "segfault"}},
    {"name": "load-segfault", "runtime": "calibration", "calibration": {"fault": "load-segfault"}},
    {"name": "hang", "runtime": "calibration", "calibration": {"fault": "hang"}},
    {"name": "raise", "runtime": "calibration", "calibration": {"fault": "raise"}},
]
TEXTS = ["the movie was good", "a dull plot", "great cast and fun", "not for me"]


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory, context_for):
    zoo = Zoo(spec_from_dict(d) for d in CALIBRATION)
    ctx = context_for(zoo, tmp_path_factory.mktemp("paired"))
    return build(ctx, zoo.names)


# --- the schedule ---------------------------------------------------------------------------------

def test_rotation_gives_every_key_each_position():
    keys = ["a", "b", "c"]
    assert [rotated(keys, r) for r in range(4)] == [["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"], ["a", "b", "c"]]
    assert rotated([], 3) == []


def test_rounds_discard_the_first_call_and_keep_rounds_aligned_when_a_key_fails():
    calls: list[tuple[str, int]] = []

    def block(key: str, r: int) -> list[float] | None:
        calls.append((key, r))
        if key == "b" and r == 1:
            return None  # b's worker died in round 1
        return [100.0, r + 0.1, r + 0.2]

    out = run_rounds(["a", "b", "c"], 3, block, discard=1)
    assert out.rounds_of("a") == [[0.1, 0.2], [1.1, 1.2], [2.1, 2.2]]
    assert out.rounds_of("b") == [[0.1, 0.2], None, None]
    assert out.samples("b") == [0.1, 0.2]
    assert calls == [("a", 0), ("b", 0), ("c", 0), ("b", 1), ("c", 1), ("a", 1), ("a", 2), ("c", 2)]
    assert out.orders[2] == ["a", "c"]  # rotation continues over the survivors


def test_rounds_reject_nonsense():
    with pytest.raises(ValueError, match="rounds must be >= 1"):
        run_rounds(["a"], 0, lambda k, r: [1.0])
    with pytest.raises(ValueError, match="discard must be >= 0"):
        run_rounds(["a"], 1, lambda k, r: [1.0], discard=-1)


def test_flatten_and_unflatten_rounds_are_inverse():
    rounds = [[1.0, 2.0], None, [3.0]]
    samples, index = flatten_rounds(rounds)
    assert samples == [1.0, 2.0, 3.0] and index == [0.0, 0.0, 2.0]
    assert unflatten_rounds(samples, index) == rounds


# --- the statistics -------------------------------------------------------------------------------

def test_paired_ratio_on_literal_rounds():
    num = [[2.0, 2.0, 2.0], [4.0, 4.0, 4.0], [3.0, 3.0, 3.0]]
    den = [[1.0, 1.0, 1.0], [2.0, 2.0, 2.0], [1.0, 1.0, 1.0]]
    r = paired_ratio(num, den)
    assert r.per_round == (2.0, 2.0, 3.0) and r.value == 2.0 and r.rounds == 3
    assert 2.0 <= r.low <= r.value <= r.high <= 3.0


def test_pairing_cancels_drift_that_an_unpaired_ratio_keeps():
    rng = np.random.default_rng(1)
    drift = np.linspace(1.0, 1.6, 40)  # the machine slows by 60 % over the run
    den = [list(d * 0.010 * (1 + 0.02 * rng.standard_normal(9))) for d in drift]
    num = [list(d * 0.004 * (1 + 0.02 * rng.standard_normal(9))) for d in drift]
    r = paired_ratio(num, den)
    assert abs(r.value - 0.4) < 0.01 and r.low < 0.4 < r.high and r.high - r.low < 0.02
    # the same samples unpaired, the variant timed in the first half and standard in the second:
    unpaired = np.median(np.concatenate(num[:20])) / np.median(np.concatenate(den[20:]))
    assert unpaired < 0.33


def test_paired_ratio_skips_rounds_without_both_sides_and_refuses_none():
    r = paired_ratio([[2.0], None, [4.0]], [[1.0], [1.0], None])
    assert r.rounds == 1 and r.value == 2.0
    with pytest.raises(ValueError, match="no round has samples of both sides"):
        paired_ratio([None], [[1.0]])


def test_paired_figures_carry_unit_n_and_interval():
    figs = paired_figures([[2.0, 2.2]] * 5, [[1.0, 1.1]] * 5, {"p50_ratio": 50})
    f = figs["p50_ratio"]
    assert f["unit"] == "x" and f["n"] == 5 and f["low"] <= f["value"] <= f["high"]
    assert f["value"] == pytest.approx(2.0)


# --- the workers, against known truth -------------------------------------------------------------

def test_worker_times_a_known_sleep_and_predicts(artifacts):
    specs = [WorkerSpec("slow", artifacts["sleep-5ms"], 1), WorkerSpec("fast", artifacts["sleep-1ms"], 1)]
    with WorkerPool(specs, TEXTS, timeout_s=60) as pool:
        rounds = run_rounds(pool.alive, 6, lambda k, r: (pool.request(k, {"op": "latency", "start": r, "n": 5})
                                                         or {}).get("s"))
        labels = pool.request("slow", {"op": "predict_all"})
        batch = pool.request("fast", {"op": "batch", "start": 0, "size": 3, "n": 2})
        reload = pool.request("fast", {"op": "reload", "n": 2})
    slow = np.median(rounds.samples("slow"))
    assert SLEEP_S <= slow <= SLEEP_S + 0.002, slow  # the sleep, plus tokenizing; never less
    assert len(rounds.samples("slow")) == 6 * 4
    ratio = paired_ratio(rounds.rounds_of("fast"), rounds.rounds_of("slow"))
    assert 0.15 <= ratio.value <= 0.45  # (1 ms + overhead) / (5 ms + overhead)
    assert labels is not None and len(labels["labels"]) == len(TEXTS) and set(labels["labels"]) <= {0, 1}
    assert batch is not None and len(batch["s"]) == 2 and all(s >= 0.001 for s in batch["s"])
    assert reload is not None and len(reload["s"]) == 2


def test_extra_work_slows_a_worker_by_the_fraction(artifacts):
    specs = [WorkerSpec("plain", artifacts["sleep-5ms"], 1),
             WorkerSpec("slower", artifacts["sleep-5ms"], 1, extra_work=0.5)]
    with WorkerPool(specs, TEXTS, timeout_s=60) as pool:
        rounds = run_rounds(pool.alive, 5, lambda k, r: (pool.request(k, {"op": "latency", "start": r, "n": 5})
                                                         or {}).get("s"))
    ratio = paired_ratio(rounds.rounds_of("slower"), rounds.rounds_of("plain"))
    # at least the fraction (a busy spin of half the call's time); a loaded machine delays the spinning
    # worker's wake-ups from its sleep more than the idle one's, so only the lower bound is tight
    assert 1.35 <= ratio.value <= 3.0, ratio


@pytest.mark.parametrize("name, message", [
    ("segfault", "crashed with SIGSEGV"),
    ("load-segfault", "crashed with SIGSEGV"),
    ("raise", "calibration runner asked to fail"),
])
def test_a_failing_worker_is_dropped_and_the_others_go_on(artifacts, name, message):
    specs = [WorkerSpec(name, artifacts[name], 1), WorkerSpec("ok", artifacts["sleep-1ms"], 1)]
    with WorkerPool(specs, TEXTS, timeout_s=60) as pool:
        rounds = run_rounds(pool.alive, 3, lambda k, r: (pool.request(k, {"op": "latency", "start": r, "n": 3})
                                                         or {}).get("s"))
        assert pool.alive == ["ok"]
        assert message in pool.errors[name] and name in pool.errors[name]
    assert len(rounds.samples("ok")) == 3 * 2


def test_a_hanging_worker_times_out(artifacts):
    with WorkerPool([WorkerSpec("hang", artifacts["hang"], 1)], TEXTS, timeout_s=3) as pool:
        assert pool.request("hang", {"op": "latency", "start": 0, "n": 2}) is None
        assert "no answer within 3 s" in pool.errors["hang"]


def test_a_missing_artifact_is_a_clear_worker_error(tmp_path):
    with WorkerPool([WorkerSpec("gone", tmp_path / "nope", 1)], TEXTS, timeout_s=60) as pool:
        assert pool.alive == []
        assert "is not a directory" in pool.errors["gone"]
    assert issubclass(WorkerError, Exception)


def test_paired_order_keeps_the_two_sides_of_a_variant_together_and_alternates_them():
    keys = ["base:a", "cand:a", "base:b", "cand:b"]
    assert paired_order(keys, 0) == ["base:a", "cand:a", "base:b", "cand:b"]
    assert paired_order(keys, 1) == ["cand:b", "base:b", "cand:a", "base:a"]
    assert paired_order(keys, 2) == ["base:a", "cand:a", "base:b", "cand:b"]
    assert paired_order(["base:a", "base:b", "cand:b"], 1) == ["cand:b", "base:b", "base:a"]
