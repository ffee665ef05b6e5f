"""Paired timing: the round schedule, the paired-ratio statistics (literal numbers), and the timing
workers proven against calibration variants with known costs and known faults."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from slimbench.build.builder import build
from slimbench.measure import flatten_rounds, paired_figures, unflatten_rounds
from slimbench.measure.interleave import (
    MAX_REPEAT,
    equal_time_repeats,
    paired_order,
    rotated,
    run_rounds,
    wide_ratios,
)
from slimbench.measure.workers import WorkerError, WorkerPool, WorkerSpec
from slimbench.spec.schema import spec_from_dict
from slimbench.spec.zoo import Zoo
from slimbench.stats import paired_ratio

SLEEP_S = 0.005
CALIBRATION = [
    {"name": "sleep-5ms", "runtime": "calibration", "calibration": {"sleep_s": SLEEP_S}},
    {"name": "sleep-1ms", "runtime": "calibration", "calibration": {"sleep_s": 0.001}},
    {"name": "segfault", "runtime": "calibration", "calibration": {"fault": "segfault"}},
    {"name": "load-segfault", "runtime": "calibration", "calibration": {"fault": "load-segfault"}},
    {"name": "hang", "runtime": "calibration", "calibration": {"fault": "hang"}},
    {"name": "raise", "runtime": "calibration", "calibration": {"fault": "raise"}},
    {"name": "spin-after", "runtime": "calibration", "calibration": {"sleep_s": 0.001, "spin_after_s": 1.0}},
    {"name": "hold-200mb", "runtime": "calibration",
     "calibration": {"sleep_s": SLEEP_S, "load_alloc_bytes": 200 * 2**20}},
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


def test_more_rounds_only_for_the_keys_that_need_them_up_to_the_limit():
    ran: list[tuple[str, int]] = []

    def block(key: str, r: int) -> list[float]:
        ran.append((key, r))
        return [1.0, 2.0, 3.0]

    out = run_rounds(["std", "a", "b"], 3, block, more=lambda rounds: ["a", "std"], max_rounds=5)
    assert len(out.orders) == 5 and all(len(v) == 5 for v in out.blocks.values())
    assert out.blocks["b"][3:] == [None, None] and out.blocks["a"][4] == [2.0, 3.0]
    assert sorted(k for k, r in ran if r >= 3) == ["a", "a", "std", "std"]
    stops = run_rounds(["std", "a"], 3, block, more=lambda rounds: [], max_rounds=50)
    assert len(stops.orders) == 3
    no_more = run_rounds(["std", "a"], 3, block, max_rounds=50)  # without a criterion, max_rounds is unused
    assert len(no_more.orders) == 3


def test_rounds_say_why_they_stopped():
    block = lambda key, r: [1.0, 2.0]  # noqa: E731
    assert run_rounds(["a"], 3, block).stopped == "rounds"  # no criterion: exactly `rounds`
    assert run_rounds(["a"], 3, block, more=lambda rounds: [], max_rounds=9).stopped == "ci"
    assert run_rounds(["a"], 3, block, more=lambda rounds: ["a"], max_rounds=5).stopped == "max_rounds"


def test_a_time_budget_ends_the_extra_rounds_but_never_the_first_ones():
    """`max_s` is checked before each extra round (on the injected clock: no wall time in the test);
    the first `rounds` always run, however long they take."""
    now = [0.0]

    def block(key: str, r: int) -> list[float]:
        now[0] += 1.0  # each block "takes" one second
        return [1.0, 2.0]

    out = run_rounds(["std", "a"], 3, block, more=lambda rounds: ["std", "a"], max_rounds=100, max_s=10.0,
                     clock=lambda: now[0])
    # 3 first rounds = 6 s; extra rounds start at 6 and 8 s; at 10 s the budget is spent
    assert len(out.orders) == 5 and out.stopped == "max_s"
    now[0] = 0.0
    slow = run_rounds(["std", "a"], 3, block, more=lambda rounds: ["std", "a"], max_rounds=100, max_s=1.0,
                      clock=lambda: now[0])
    assert len(slow.orders) == 3 and slow.stopped == "max_s"
    now[0] = 0.0
    unbounded = run_rounds(["std", "a"], 3, block, more=lambda rounds: ["std", "a"], max_rounds=7, max_s=None,
                           clock=lambda: now[0])
    assert len(unbounded.orders) == 7 and unbounded.stopped == "max_rounds"
    with pytest.raises(ValueError, match="max_s must be > 0"):
        run_rounds(["a"], 1, block, max_s=0)


def test_wide_ratios_asks_for_rounds_while_the_interval_is_wide():
    rng = np.random.default_rng(1)
    noisy = run_rounds(["std", "v"], 10, lambda k, r: list(rng.lognormal(0, 0.3, 6)))
    assert sorted(wide_ratios({"v": "std"}, 0.03)(noisy)) == ["std", "v"]
    steady = run_rounds(["std", "v"], 10, lambda k, r: [2.0] * 6 if k == "v" else [1.0] * 6)
    assert wide_ratios({"v": "std"}, 0.03)(steady) == []


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

def test_equal_time_repeats_lengthen_only_short_blocks_and_keep_a_pair_together():
    lat = {"std": 0.020, "tiny": 0.001, "mid": 0.009, "instant": 1e-7, "broken": 0.0}
    assert equal_time_repeats(lat, 12, 0.12) == {"std": 1, "tiny": 10, "mid": 2, "instant": MAX_REPEAT, "broken": 1}
    assert equal_time_repeats(lat, 12, 0.0) == dict.fromkeys(lat, 1)
    # the two sides of a variant repeat alike, from their mean latency (1 ms and 3 ms -> 2 ms)
    pair = equal_time_repeats({"a:v": 0.001, "b:v": 0.003}, 10, 0.1, group=lambda k: k.split(":")[1])
    assert pair == {"a:v": 5, "b:v": 5}


def test_a_repeated_block_times_the_same_texts_again(artifacts):
    with WorkerPool([WorkerSpec("fast", artifacts["sleep-1ms"], 1)], TEXTS, timeout_s=60) as pool:
        warm = pool.warm_up(4)
        run = pool.blocks("latency", 3, repeat={"fast": 4})
        block = run("fast", 0)
    assert set(warm) == {"fast"} and warm["fast"] >= 0.001
    assert block is not None and len(block) == 12 and all(s >= 0.001 for s in block)


class _Recorder:
    """A runner that records what it is asked to predict."""

    def __init__(self):
        self.calls = []

    def predict(self, texts):
        self.calls.append(list(texts))
        return [0] * len(texts)


def _server(texts):
    from slimbench.runtimes.worker import Server

    server = Server.__new__(Server)
    server.texts, server.runner = list(texts), _Recorder()
    return server


def test_a_throughput_warm_up_is_untimed_and_the_timed_batch_keeps_its_texts():
    """The untimed warm-up call takes the W texts before the timed batch, and round r's timed batch is
    the batch the old block (two batches, the first timed and dropped) timed in round r, whatever W."""
    texts = [f"sentence {i}" for i in range(50)]

    class Pool:
        def __init__(self):
            self.server = _server(texts)

        def request(self, key, msg, process=0):
            return self.server.handle(msg)

    for r in range(3):
        old, new = Pool(), Pool()
        timed_old = WorkerPool.blocks(old, "batch", 2, 8)("v", r)
        for warmup in (8, 2, 0):
            new = Pool()
            timed_new = WorkerPool.blocks(new, "batch", 1, 8, warmup=warmup)("v", r)
            assert len(timed_old) == 2 and len(timed_new) == 1
            assert new.server.runner.calls[-1] == old.server.runner.calls[-1]  # the same timed texts
            assert len(new.server.runner.calls) == (2 if warmup else 1)
            if warmup:
                assert new.server.runner.calls[0] == old.server.runner.calls[0][8 - warmup:]


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


def test_a_worker_started_alone_is_a_fresh_process_probe(artifacts):
    """Started one at a time, each worker times its own start-up exactly as `slimbench.runtimes.probes` does:
    the same phases, the same VmHWM readings, the same warm predictions (known truths: a 200 MB
    allocation at load, a 5 ms sleep per call)."""
    from slimbench.runtimes.probes import run_probe

    specs = [WorkerSpec("held", artifacts["hold-200mb"], 1), WorkerSpec("small", artifacts["sleep-1ms"], 1),
             WorkerSpec("broken", artifacts["load-segfault"], 1)]
    with WorkerPool(specs, TEXTS, timeout_s=60, startup_predictions=8) as pool:
        startup = pool.startup
        assert pool.alive == ["held", "small"] and "SIGSEGV" in pool.errors["broken"]
        still_serves = pool.request("held", {"op": "latency", "start": 0, "n": 3})
    assert still_serves is not None and len(still_serves["s"]) == 3
    probe = run_probe(artifacts["hold-200mb"], 1, TEXTS, n_predict=8)
    assert [len(startup[k]) for k in ("held", "small")] == [1, 1]
    held = startup["held"][0]
    assert held.ok and set(held.phases_s) == set(probe.phases_s) == {"interpreter", "import", "load", "first_predict"}
    assert (held.source, probe.source) == ("worker", "probe")
    assert set(held.vmhwm_bytes) == set(probe.vmhwm_bytes)
    assert len(held.warm_latency_s) == 8 and all(s >= SLEEP_S for s in held.warm_latency_s)
    grew = held.vmhwm_bytes["after_load"] - held.vmhwm_bytes["after_import"]
    assert 195 * 2**20 <= grew <= 215 * 2**20, grew
    # the worker and the probe hold the same memory once loaded (the texts it keeps are a few KB)
    assert abs(held.vmhwm_bytes["after_inference"] - probe.vmhwm_bytes["after_inference"]) < 8 * 2**20
    small = startup["small"][0].vmhwm_bytes["after_inference"]
    assert 190 * 2**20 <= held.vmhwm_bytes["after_inference"] - small <= 215 * 2**20


def test_workers_started_in_pairs_each_time_their_own_startup(artifacts):
    """`together=2` (a paired A/B's two sides of a variant): each still reports its own probe
    record, the 200 MB allocation only in the worker that makes it; a broken one is dropped."""
    specs = [WorkerSpec("held", artifacts["hold-200mb"], 1), WorkerSpec("small", artifacts["sleep-1ms"], 1),
             WorkerSpec("broken", artifacts["load-segfault"], 1)]
    with WorkerPool(specs, TEXTS, timeout_s=60, startup_predictions=4, together=2) as pool:
        assert set(pool.startup) == {"held", "small"} and "SIGSEGV" in pool.errors["broken"]
        held, small = (pool.startup[k][0].vmhwm_bytes["after_inference"] for k in ("held", "small"))
    assert 190 * 2**20 <= held - small <= 215 * 2**20


def test_several_processes_per_variant_alternate_by_round_and_each_times_its_startup(artifacts):
    """`processes=2`: every key gets two worker processes, started one at a time (all first
    processes before any second), each a start-up record; round r runs in process r mod 2; a key
    whose second process fails is dropped whole, its error naming it."""
    specs = [WorkerSpec("held", artifacts["hold-200mb"], 1), WorkerSpec("small", artifacts["sleep-1ms"], 1),
             WorkerSpec("broken", artifacts["load-segfault"], 1)]
    seen: list[tuple[int, int]] = []
    with WorkerPool(specs, TEXTS, timeout_s=60, startup_predictions=4, processes=2,
                    started_one=lambda done, total: seen.append((done, total))) as pool:
        assert pool.alive == ["held", "small"] and "SIGSEGV" in pool.errors["broken"]
        assert {k: len(v) for k, v in pool.startup.items()} == {"held": 2, "small": 2}
        assert all(r.wall_s >= r.start_to_first_prediction_s > 0 for rs in pool.startup.values() for r in rs)
        pids = {k: [w.proc.pid for w in pool.processes[k]] for k in pool.alive}
        assert all(len(set(p)) == 2 for p in pids.values())
        assert pool.workers["held"].proc.pid == pids["held"][0]
        for records in pool.startup.values():  # each its own 200 MB, or none
            assert records[0].vmhwm_bytes["after_load"] > 0
        grew = [r.vmhwm_bytes["after_load"] - r.vmhwm_bytes["after_import"] for r in pool.startup["held"]]
        assert all(195 * 2**20 <= g <= 215 * 2**20 for g in grew), grew
        warm = pool.warm_up(3)
        run = pool.blocks("latency", 3)
        blocks = [run("small", r) for r in range(4)]
        served = [pool.request("small", {"op": "latency", "start": 0, "n": 1}, process=p) for p in (0, 1)]
    assert seen[-1] == (5, 6) and seen[0] == (1, 6)  # 3 first processes (one broken), then 2 second ones
    assert set(warm) == {"held", "small"}
    assert all(b is not None and len(b) == 3 for b in blocks)
    assert all(s is not None for s in served)


def test_groups_started_together_stay_together_after_a_failure(artifacts):
    """`together=2` with two processes each: a group whose member failed in the first pass starts
    its survivor alone in the second, and the later groups keep their pairs (a paired A/B's two
    sides of a variant start side by side in every pass). `started_one` reports after each group."""
    specs = [WorkerSpec("a:broken", artifacts["load-segfault"], 1), WorkerSpec("b:broken", artifacts["sleep-1ms"], 1),
             WorkerSpec("a:ok", artifacts["sleep-1ms"], 1), WorkerSpec("b:ok", artifacts["sleep-1ms"], 1)]
    done: list[int] = []
    with WorkerPool(specs, TEXTS, timeout_s=60, startup_predictions=2, together=2, processes=2,
                    started_one=lambda d, total: done.append(d)) as pool:
        assert pool.alive == ["b:broken", "a:ok", "b:ok"] and "a:broken" in pool.errors
        assert {k: len(v) for k, v in pool.startup.items()} == {"b:broken": 2, "a:ok": 2, "b:ok": 2}
    # pass 1: (a:broken, b:broken), (a:ok, b:ok); pass 2: (b:broken), (a:ok, b:ok) -- not (b:broken, a:ok), (b:ok)
    assert done == [2, 4, 5, 7]


def test_a_round_runs_in_process_r_mod_processes(artifacts):
    """Killing a key's third process (of 3) is noticed exactly at the first round r with r mod 3 == 2;
    the key's other processes take that round and the ones after it: the variant keeps its rows."""
    with WorkerPool([WorkerSpec("small", artifacts["sleep-1ms"], 1)], TEXTS, timeout_s=60, processes=3) as pool:
        run = pool.blocks("latency", 2)
        assert run("small", 0) is not None and run("small", 1) is not None and run("small", 3) is not None
        pool.processes["small"][2].kill()
        assert run("small", 3) is not None and not pool.lost  # process 0 again: nothing noticed
        assert run("small", 5) is not None  # process 2: dead; process 1 of the two left answers
        assert pool.alive == ["small"] and len(pool.processes["small"]) == 2 and not pool.errors
        assert "SIGKILL" in pool.lost["small"][0]
        pool.processes["small"][1].kill()
        pool.processes["small"][0].kill()
        assert run("small", 6) is None  # the last one gone: now the key fails
        assert pool.alive == [] and "small" in pool.errors["small"]


def _state_and_cpu(pid: int) -> tuple[str, float]:
    """A process's state letter (T: stopped) and its CPU seconds, from /proc."""
    import os
    from pathlib import Path

    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return fields[0], (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


@linux_only
def test_idle_workers_are_stopped_and_continued_for_their_own_requests(artifacts):
    specs = [WorkerSpec("a", artifacts["sleep-1ms"], 1), WorkerSpec("b", artifacts["sleep-1ms"], 1)]
    with WorkerPool(specs, TEXTS, timeout_s=60, processes=2) as pool:
        pids = {(k, p): w.proc.pid for k, procs in pool.processes.items() for p, w in enumerate(procs)}
        assert {_state_and_cpu(pid)[0] for pid in pids.values()} == {"T"}  # frozen once ready
        run = pool.blocks("latency", 3)
        for r in range(4):
            assert run("a", r) is not None and run("b", r) is not None
            assert {_state_and_cpu(pid)[0] for pid in pids.values()} == {"T"}
    with WorkerPool(specs, TEXTS, timeout_s=60, freeze_idle=False) as pool:
        assert pool.request("a", {"op": "latency", "start": 0, "n": 2}) is not None
        assert _state_and_cpu(pool.workers["a"].proc.pid)[0] != "T"


@linux_only
@pytest.mark.parametrize("freeze", [True, False])
def test_a_frozen_worker_cannot_spin_while_another_is_timed(artifacts, freeze):
    """After each call the spin-after worker's thread busy-spins for 1 s, as a runtime's idle pool
    threads do. Frozen, it burns no CPU while the other worker runs a block; not frozen, it does."""
    specs = [WorkerSpec("spinner", artifacts["spin-after"], 1), WorkerSpec("timed", artifacts["sleep-5ms"], 1)]
    with WorkerPool(specs, TEXTS, timeout_s=60, freeze_idle=freeze) as pool:
        assert pool.request("spinner", {"op": "latency", "start": 0, "n": 1}) is not None
        pid = pool.workers["spinner"].proc.pid
        before = _state_and_cpu(pid)[1]
        assert pool.request("timed", {"op": "latency", "start": 0, "n": 60}) is not None  # >= 0.3 s
        burnt = _state_and_cpu(pid)[1] - before
    if freeze:
        assert burnt <= 0.02, burnt
    else:
        assert burnt >= 0.05, burnt


@linux_only
def test_frozen_workers_die_with_a_parent_that_was_killed(artifacts, tmp_path):
    """A parent killed outright (SIGKILL) never continues the workers it stopped; the kernel kills
    them (PR_SET_PDEATHSIG) instead of leaving them stopped for good."""
    import os
    import signal
    import subprocess
    import time

    script = tmp_path / "parent.py"
    script.write_text(
        "import sys, time\n"
        "from slimbench.measure.workers import WorkerPool, WorkerSpec\n"
        f"pool = WorkerPool([WorkerSpec('a', {str(artifacts['sleep-1ms'])!r}, 1)], ['a text'], processes=2)\n"
        "pool.request('a', {'op': 'latency', 'start': 0, 'n': 2})\n"
        "print(' '.join(str(w.proc.pid) for w in pool.processes['a']), flush=True)\n"
        "time.sleep(600)\n")
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        pids = [int(p) for p in parent.stdout.readline().split()]
        assert len(pids) == 2 and all(_state_and_cpu(p)[0] == "T" for p in pids)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        end = time.monotonic() + 30
        while time.monotonic() < end and any(_alive(p) for p in pids):
            time.sleep(0.1)
        assert not any(_alive(p) for p in pids)
    finally:
        parent.kill()


def _alive(pid: int) -> bool:
    try:
        return _state_and_cpu(pid)[0] not in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError):
        return False


def test_processes_must_be_positive(artifacts):
    with pytest.raises(ValueError, match="processes must be >= 1"):
        WorkerPool([WorkerSpec("small", artifacts["sleep-1ms"], 1)], TEXTS, processes=0)


def test_workers_started_together_give_no_startup_record(artifacts):
    with WorkerPool([WorkerSpec("small", artifacts["sleep-1ms"], 1)], TEXTS, timeout_s=60) as pool:
        assert pool.startup == {} and pool.alive == ["small"]


@pytest.mark.slow
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


# --- accuracy ratios paired by sentence ----------------------------------------------------------

def test_accuracy_figures_count_the_sentences_only_one_side_gets_right():
    from slimbench.measure import accuracy_figures

    gold = [1, 1, 0, 0, 1, 0]
    reference = [1, 1, 0, 1, 0, 0]  # right on 0, 1, 2, 5
    pred = [1, 0, 0, 0, 0, 1]  # right on 0, 2, 3
    f = accuracy_figures(pred, gold, 2, reference)
    assert f["only_standard_right"] == {"value": 2, "unit": "count", "n": 6}  # sentences 1, 5
    assert f["only_variant_right"] == {"value": 1, "unit": "count", "n": 6}  # sentence 3
    assert f["agreement_with_standard"]["value"] == pytest.approx(3 / 6)
    assert "only_standard_right" not in accuracy_figures(pred, gold, 2)


def test_paired_accuracy_ratio_and_its_interval():
    from slimbench.stats import paired_accuracy_ratio_ci

    # identical predictions: no disagreement, no uncertainty in the ratio
    assert paired_accuracy_ratio_ci(1000, 800, 0, 0) == (1.0, 1.0, 1.0)
    # 50 sentences only the reference gets right, 30 only the other: 780 / 800
    ratio, lo, hi = paired_accuracy_ratio_ci(1000, 800, 50, 30)
    assert ratio == pytest.approx(0.975)
    # paired: the difference's sd is ~sqrt(50 + 30) / 1000, so the 95 % CI is ~ +-0.022 around 0.975
    assert lo < ratio < hi and 0.035 < hi - lo < 0.055
    # the same accuracies with more disagreement are less certain
    lo2, hi2 = paired_accuracy_ratio_ci(1000, 800, 150, 130)[1:]
    assert hi2 - lo2 > 1.5 * (hi - lo)
    with pytest.raises(ValueError, match="not a 2x2 table"):
        paired_accuracy_ratio_ci(100, 10, 20, 0)  # more only-reference sentences than reference right


def test_paired_accuracy_difference_and_its_interval():
    from slimbench.stats import paired_accuracy_difference_ci

    assert paired_accuracy_difference_ci(500, 0, 0) == (0.0, 0.0, 0.0)
    diff, lo, hi = paired_accuracy_difference_ci(1109, 15, 5)  # e.g. an INT8 recipe's 20 flips, 5 right / 15 wrong
    assert diff == pytest.approx(-10 / 1109)
    # sd of the net count ~ sqrt(20) ~ 4.5 sentences: the interval spans ~ +-9 sentences
    assert lo < diff < hi and 14 / 1109 < hi - lo < 22 / 1109
    with pytest.raises(ValueError, match="not a paired count"):
        paired_accuracy_difference_ci(10, 8, 5)



def test_progress_lines_come_by_time_not_by_round_count():
    """No phase of a run stays silent for longer than the heartbeat (issue 15): a line once 10 s
    have passed since the last one, however long a round is, and one at the end."""
    import time

    from slimbench.measure.interleave import HEARTBEAT_S, Heartbeat, progress_log

    now = [0.0]
    beat = Heartbeat(interval=10.0)
    beat._clock = lambda: now[0]
    beat.started = beat._last = 0.0
    due = []
    for t in (3, 6, 9, 10.5, 12, 20.4, 20.6, 21):
        now[0] = t
        due.append(beat.due())
    assert due == [False, False, False, True, False, False, True, False]  # 10 s after the last line
    now[0] = 22
    assert beat.due(force=True) and beat.elapsed == 22
    now[0] = 24  # 2 s after the last line, before a step expected to take 8 s: a line now, not 16 s later
    assert not beat.due(ahead=7.0) and beat.due(ahead=8.0)
    assert HEARTBEAT_S == 10.0
    lines: list[str] = []
    show = progress_log(lines.append, "latency", interval=0.05)  # slow rounds: a line each
    for done in range(1, 4):
        time.sleep(0.06)
        show(done, 3)
    assert len(lines) == 3 and lines[-1].startswith("latency round 3/3")
    lines.clear()
    show = progress_log(lines.append, "latency", interval=60)  # fast rounds: only the last line
    for done in range(1, 41):
        show(done, 40)
    assert len(lines) == 1 and lines[0].startswith("latency round 40/40")


def test_the_time_to_go_after_the_first_rounds_heeds_the_phase_budget(monkeypatch):
    """Past the first rounds, the rounds left to the cap may take longer than the budget allows: the
    time to go is then the budget's rest plus one round (a round that starts just before it ends)."""
    from slimbench.measure import interleave

    now = [0.0]
    monkeypatch.setattr(interleave.Heartbeat, "elapsed", property(lambda self: now[0]))
    lines: list[str] = []
    show = interleave.progress_log(lines.append, "latency", interval=0, max_s=150, rounds=40)
    for done, total, t in ((20, 40, 40.0), (70, 120, 140.0), (70, 120, 160.0), (110, 120, 110.0), (120, 120, 120.0)):
        now[0] = t
        show(done, total)
    assert lines == [
        "latency round 20/40, 40 s elapsed, ~40 s to go",  # the first 40 rounds always run: no budget
        "latency round 70/120, 140 s elapsed, ~12 s to go (the phase's 150-s budget)",  # 10 s left + a 2-s round
        "latency round 70/120, 160 s elapsed, ~2 s to go (the phase's 150-s budget)",
        "latency round 110/120, 110 s elapsed, ~10 s to go",  # the cap comes first
        "latency round 120/120, 120 s elapsed, ~0 s to go",
    ]
