"""The one measuring session: every entry point (`pytest bench`, `slimbench run`, the Python API,
`slimbench compare`) measures through `measure_session`, and only maps what it returns.

Given subjects (a variant's built artifact, or one side of an A/B's), the test sentences, what to
measure and the settings, it

1. starts every subject's timing workers (`settings.worker_processes` each), all alive together;
   when start-up is wanted, one group at a time (`together`: a paired A/B's two sides of a variant
   start together, one per core), each timing its own start-up as a fresh-process probe does;
2. runs interleaved latency rounds (blocks of batch-1 calls, the other workers frozen, fast
   subjects repeating their sentences to an equal block time, more rounds while a paired ratio's
   interval is wide, within a time budget), then throughput rounds (one untimed wake-up call, one
   timed batch);
3. takes each subject's labels for the test split (memoised by artifact, code and inputs; a
   subject with the same prediction key as another in the run is predicted once) and warm reloads;
4. closes the workers and runs fresh-process probes round by round (start-up time, peak RSS), the
   workers' own start-ups counting as the first, more only while they could still move a median.

It returns raw observations and renders nothing; statistics and records are the callers'.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slimbench.measure.interleave import (
    DISCARD,
    Heartbeat,
    Rounds,
    equal_time_repeats,
    paired_order,
    progress_log,
    rotated,
)
from slimbench.measure.settings import MeasureSettings
from slimbench.runtimes.probes import PROBE_PREDICTIONS, ProbeResult

METRICS = ("latency", "throughput", "accuracy", "load", "memory")
WARM_RELOADS = 3
Log = Callable[[str], None]


@dataclass(frozen=True)
class Subject:
    """One thing measured: `key` names it in every observation (`variant`, or `side:variant`)."""

    key: str
    variant: str
    artifact: Path
    extra_work: float = 0.0
    src: Path | None = None  # a checkout's src/ to import slimbench from (an A/B side); None: this one

    @property
    def env(self) -> dict[str, str]:
        """Environment of this subject's child processes, on top of the parent's."""
        env = dict(os.environ)
        if self.src is not None:
            env["PYTHONPATH"] = str(self.src)
        if self.extra_work:
            env["SLIMBENCH_EXTRA_WORK"] = str(self.extra_work)
        return env


@dataclass
class Observations:
    """What one session measured, raw. Keys are `Subject.key`s; a key in `errors` failed in its
    workers (from then on), a key in `probe_errors` in a fresh-process probe."""

    latency: Rounds | None = None
    throughput: Rounds | None = None
    labels: dict[str, list[Any]] = field(default_factory=dict)  # a class index per text, or per-group indices
    accuracy_pass_s: dict[str, float] = field(default_factory=dict)
    label_source: dict[str, str] = field(default_factory=dict)  # key -> why its labels were not predicted now
    reload_s: dict[str, list[float]] = field(default_factory=dict)
    startup: dict[str, list[ProbeResult]] = field(default_factory=dict)  # the timing workers' own start-ups
    probes: dict[str, list[ProbeResult]] = field(default_factory=dict)  # start-ups first, then fresh probes
    errors: dict[str, str] = field(default_factory=dict)
    probe_errors: dict[str, str] = field(default_factory=dict)
    repeat: dict[str, int] = field(default_factory=dict)  # key -> times a latency block repeats its texts
    seconds: dict[str, float] = field(default_factory=dict)  # phase -> wall seconds
    steal: dict[str, float] = field(default_factory=dict)  # phase -> share of CPU time given to other guests
    how: dict[str, Any] = field(default_factory=dict)  # how it was measured, for the record
    lost: dict[str, list[str]] = field(default_factory=dict)  # key -> worker processes that died, the others going on

    @property
    def labels_cached(self) -> list[str]:
        return [k for k, why in self.label_source.items() if "cache" in why]

    def failed(self, key: str) -> str | None:
        return self.errors.get(key) or self.probe_errors.get(key)


@dataclass(frozen=True)
class Request:
    """What a session is asked to measure."""

    subjects: Sequence[Subject]
    texts: Sequence[str]
    settings: MeasureSettings
    # metric -> keys that need it (None: every metric for every subject)
    wanted: Mapping[str, Collection[str]] | None = None
    # key -> the key its latency ratio is taken against: more rounds go where that ratio is still wide
    pairs: Mapping[str, str] = field(default_factory=dict)
    paired: bool = False  # A/B: a variant's sides back to back in every round and probe round, starting together
    code: Mapping[str, str] = field(default_factory=dict)  # key -> fingerprint of the code that runs it (memo)
    label: str = "slimbench"  # progress lines start with it

    def keys(self, *metrics: str) -> list[str]:
        """The keys that any of `metrics` wants, in subject order."""
        if self.wanted is None:
            return [s.key for s in self.subjects]
        want = set().union(*(set(self.wanted.get(m, ())) for m in metrics))
        return [s.key for s in self.subjects if s.key in want]

    @property
    def order(self) -> Callable[[Sequence[str], int], list[str]]:
        return paired_order if self.paired else rotated


def measure_session(req: Request, log: Log) -> Observations:
    """Run the whole session; never raises for a failing subject (its error is kept)."""
    out = Observations()
    st = req.settings
    worker_keys = req.keys("latency", "throughput", "accuracy", "load")
    if worker_keys:
        _run_workers(req, worker_keys, out, log)
    probe_keys = [k for k in req.keys("load", "memory") if k not in out.errors]
    if probe_keys:
        t = time.perf_counter()
        _run_probes(req, probe_keys, out, log)
        out.seconds["probes"] = time.perf_counter() - t
    idle = "every worker but the one asked stopped (SIGSTOP)" if st.freeze_idle else "a pause before each block"
    out.how = {"method": "worker processes per variant (round r in process r mod processes), all alive "
                         f"together, interleaved rounds in a rotated order, {idle}, "
                         "first calls of each block discarded",
               "processes": st.worker_processes, "frozen_idle": st.freeze_idle,
               "rounds": st.latency_rounds, "block": st.latency_block, "discard": DISCARD,
               "settle_s": st.settle_s, "min_block_s": st.min_block_s,
               "max_rounds": st.latency_max_rounds, "ci_half_width": st.latency_ci, "max_s": st.max_s,
               "rounds_run": len(out.latency.orders) if out.latency else 0,
               "stopped": out.latency.stopped if out.latency else None,
               "repeat": {k: r for k, r in out.repeat.items() if r > 1},
               "throughput_rounds": st.throughput_rounds, "throughput_warmup": st.throughput_warmup,
               "variants": worker_keys, "workers_start_s": round(out.seconds.get("workers_start", 0.0), 3),
               "phase_s": {k: round(v, 1) for k, v in out.seconds.items()},
               "steal": dict(out.steal), "labels_cached": out.labels_cached,
               "lost_processes": dict(out.lost)}
    return out


def _run_workers(req: Request, keys: Sequence[str], out: Observations, log: Log) -> None:
    from slimbench.machine import StealMeter
    from slimbench.measure.workers import WorkerPool, WorkerSpec

    st, label = req.settings, req.label
    by_key = {s.key: s for s in req.subjects}
    specs = [WorkerSpec(k, by_key[k].artifact, st.threads, by_key[k].extra_work,
                        str(by_key[k].src) if by_key[k].src else None) for k in _start_order(req, keys)]
    as_probe = bool(req.keys("load", "memory"))
    together = 2 if req.paired else 1
    n_proc = st.worker_processes
    log(f"{label}: starting {len(specs) * n_proc} timing workers ({n_proc} process{'es' if n_proc > 1 else ''} "
        "per variant" + (" and side" if req.paired else "") + ", all alive together)"
        + (f", {'two' if together == 2 else 'one'} at a time, each timing its own start-up as a fresh-process "
           "probe" if as_probe else ""))
    beat, previous = Heartbeat(), [0.0]

    def started_one(done: int, total: int) -> None:
        took, previous[0] = beat.elapsed - previous[0], beat.elapsed  # the next start takes about as long
        if beat.due(ahead=took if done < total else 0.0):
            log(f"{label}: {done}/{total} timing workers ready, {beat.elapsed:.0f} s elapsed")

    with WorkerPool(specs, req.texts, timeout_s=st.probe_timeout,
                    startup_predictions=PROBE_PREDICTIONS if as_probe else None, together=together,
                    started_one=started_one, processes=n_proc, freeze_idle=st.freeze_idle) as pool:
        out.seconds["workers_start"] = pool.start_s
        out.startup = {k: list(v) for k, v in pool.startup.items()}
        warm = pool.warm_up(st.latency_warmup)
        group = (lambda key: key.split(":", 1)[-1]) if req.paired else (lambda key: key)
        out.repeat = equal_time_repeats(warm, st.latency_block, st.min_block_s, group=group)
        meter = StealMeter()
        _latency_phase(req, pool, out, meter, log)
        _throughput_phase(req, pool, out, meter, log)
        accuracy = [k for k in req.keys("accuracy") if k in pool.alive]
        if accuracy:
            t = time.perf_counter()
            _accuracy_pass(req, pool, accuracy, out, log)
            out.seconds["accuracy"] = time.perf_counter() - t
        reload = [k for k in req.keys("load") if k in pool.alive]
        if reload:
            t = time.perf_counter()
            for key in reload:
                reply = pool.request(key, {"op": "reload", "n": WARM_RELOADS})
                if reply is not None:
                    out.reload_s[key] = reply["s"]
            out.seconds["warm_reload"] = time.perf_counter() - t
        out.errors.update(pool.errors)
        out.lost = {k: v for k, v in pool.lost.items() if k not in out.errors}
        for key, why in out.lost.items():
            log(f"{label}: {key}: {len(why)} of its worker processes died and the others went on: {why[0]}")
    log(f"{label}: timing workers done: " + ", ".join(f"{k.replace('_', ' ')} {v:.0f} s" for k, v in out.seconds.items()))


def _latency_phase(req: Request, pool: Any, out: Observations, meter: Any, log: Log) -> None:
    """Interleaved rounds of batch-1 blocks; more rounds where a paired ratio is still wide."""
    from slimbench.measure.interleave import run_rounds, wide_ratios

    st, label = req.settings, req.label
    latency = [k for k in req.keys("latency") if k in pool.alive]
    if not latency:
        return
    t = time.perf_counter()
    log(f"{label}: latency, {st.latency_rounds} interleaved rounds of {st.latency_block} batch-1 calls per "
        f"{'side and ' if req.paired else ''}variant (first {DISCARD} of each block discarded; variants "
        f"faster than {st.latency_min_block_ms:g} ms a block repeat its sentences)")
    pairs = {k: r for k, r in req.pairs.items() if k in latency and r in latency}
    more = wide_ratios(pairs, st.latency_ci) if pairs and st.latency_max_rounds > st.latency_rounds else None
    out.latency = run_rounds(latency, st.latency_rounds, pool.blocks("latency", st.latency_block, repeat=out.repeat),
                             discard=DISCARD, order=req.order,
                             progress=progress_log(log, f"{label}: latency", max_s=st.max_s, rounds=st.latency_rounds),
                             settle_s=st.settle_s, more=more, max_rounds=st.latency_max_rounds, max_s=st.max_s)
    out.seconds["latency"] = time.perf_counter() - t
    _lap(meter, out, "latency")


def _throughput_phase(req: Request, pool: Any, out: Observations, meter: Any, log: Log) -> None:
    """Interleaved rounds of one untimed wake-up call and one timed batch per worker."""
    from slimbench.measure.interleave import run_rounds

    st = req.settings
    throughput = [k for k in req.keys("throughput") if k in pool.alive]
    if not throughput or not st.throughput_rounds:
        return
    t, size, warmup = time.perf_counter(), st.throughput_batch, st.throughput_warmup
    log(f"{req.label}: throughput, {st.throughput_rounds} interleaved rounds of one batch of {size} per "
        f"{'side and ' if req.paired else ''}variant"
        + (f", after an untimed call on {warmup} sentence{'s' if warmup > 1 else ''}" if warmup else ""))
    out.throughput = run_rounds(throughput, st.throughput_rounds, pool.blocks("batch", 1, size, warmup=warmup),
                                discard=0, order=req.order, progress=progress_log(log, f"{req.label}: throughput"),
                                settle_s=st.settle_s)
    out.seconds["throughput"] = time.perf_counter() - t
    _lap(meter, out, "throughput")


def _start_order(req: Request, keys: Sequence[str]) -> list[str]:
    """Subjects in start order: as given; in a paired run a variant's sides next to each other, which
    side first alternating by variant (the pair starts together, one per core)."""
    if not req.paired:
        return list(keys)
    variants: dict[str, list[str]] = {}
    for key in keys:
        variants.setdefault(key.split(":", 1)[-1], []).append(key)
    return [k for i, group in enumerate(variants.values()) for k in (group if i % 2 == 0 else group[::-1])]


def _lap(meter: Any, out: Observations, phase: str) -> None:
    steal = meter.lap()
    if steal is not None:
        out.steal[phase] = steal


def _accuracy_pass(req: Request, pool: Any, keys: Sequence[str], out: Observations, log: Log) -> None:
    """Each key's labels for the test split and the seconds its pass took. Labels are a pure function of
    the artifact's files, the code, the libraries, the sentences, batch, threads and extra work
    (`memo.prediction_key`): a key with the same prediction key as one already done in this run
    shares its labels, and one predicted by an earlier run in the same cache is read from the memo."""
    from slimbench.cache import memo
    from slimbench.cache.memo import TEST_SPLIT_BATCH

    st, by_key = req.settings, {s.key: s for s in req.subjects}
    here = None
    beat = Heartbeat()
    log(f"{req.label}: accuracy, each worker's pass over the {len(req.texts)} test sentences (read from the "
        "cache when an earlier pass predicted them from the same files and code)")
    done: dict[str, str] = {}  # digest of a prediction key -> the key that has its labels
    for n, key in enumerate(keys, 1):
        if n > 1 and beat.due():
            log(f"{req.label}: accuracy, {n - 1}/{len(keys)} done, {beat.elapsed:.0f} s elapsed")
        s = by_key[key]
        code = req.code.get(key)
        if code is None:
            here = here or memo.code_fingerprint(memo.running_code())
            code = here
        extra = {s.variant: s.extra_work} if s.extra_work else {}
        pkey = memo.prediction_key(code, s.artifact, req.texts, st.threads, extra)
        digest = memo.digest(pkey)
        if digest in done and done[digest] in out.labels:
            earlier = done[digest]
            out.labels[key], out.accuracy_pass_s[key] = out.labels[earlier], out.accuracy_pass_s[earlier]
            out.label_source[key] = "same artifact and code as another in this run: predicted once"
            continue
        cacheable = memo.in_cache(s.artifact)
        if cacheable:
            labels, seconds = memo.labels(pkey, len(req.texts)), memo.get("prediction-seconds", pkey)
            if labels is not None and isinstance(seconds, float):
                out.labels[key], out.accuracy_pass_s[key] = labels, seconds
                out.label_source[key] = "same artifact files and code as an earlier run: cached labels"
                done[digest] = key
                continue
        reply = pool.request(key, {"op": "predict_all", "batch_size": TEST_SPLIT_BATCH})
        if reply is not None:
            out.labels[key], out.accuracy_pass_s[key] = reply["labels"], float(reply["s"][0])
            done[digest] = key
            if cacheable:
                memo.put("predictions", pkey, reply["labels"])
                memo.put("prediction-seconds", pkey, float(reply["s"][0]))


def _run_probes(req: Request, keys: Sequence[str], out: Observations, log: Log) -> None:
    """Fresh-process probes, round by round: round k probes each key once, in the session's order
    (rotated; paired: a variant's sides back to back), so the machine's drift spreads over all of
    them. The timing workers' own start-ups are the first rounds. A key gets more than the fewest
    only while further probes could still move its median start-up time beyond the spread; in a
    paired run a variant's sides get as many as each other."""
    from slimbench.runtimes.probes import run_probe, wants_another_probe

    st = req.settings
    by_key = {s.key: s for s in req.subjects}
    least, most = st.probe_counts()
    texts = [req.texts[i % len(req.texts)] for i in range(PROBE_PREDICTIONS)] if req.texts else []
    for key in keys:
        out.probes[key] = list(out.startup.get(key, []))
    group = (lambda key: key.split(":", 1)[-1]) if req.paired else (lambda key: key)
    count = f"{least}" if least == most else f"{least}-{most}"
    log(f"{req.label}: {count} fresh-process probes of each of {len(keys)} "
        f"{'sides of variants' if req.paired else 'variants'}, round-robin"
        + (" (the first: the timing workers' own start-ups)" if out.startup else "")
        + (f"; more than {least} only while further probes could still move a median start-up time beyond "
           f"+-{st.load_spread:.0%}" if least < most else ""))
    beat = Heartbeat()

    def wants(key: str) -> bool:
        if key in out.probe_errors:
            return False
        mates = [k for k in keys if group(k) == group(key) and k not in out.probe_errors]
        return any(wants_another_probe([r.start_to_first_prediction_s for r in out.probes[k]], least, most,
                                       st.load_spread) for k in mates)

    for k in range(most):
        for key in req.order([key for key in keys if wants(key)], k):
            taken = out.probes[key]
            if len(taken) > k:
                continue  # a worker's own start-up is this round's sample
            if beat.due(ahead=(taken[-1].wall_s or taken[-1].start_to_first_prediction_s) if taken else 0.0):
                log(f"{req.label}: fresh-process probes, round {k + 1}, "
                    f"{sum(map(len, out.probes.values()))} taken, {beat.elapsed:.0f} s elapsed")
            # only the processes that give peak RSS predict on after their first prediction
            n_predict = PROBE_PREDICTIONS if len(taken) < st.memory_samples else 0
            s = by_key[key]
            r = run_probe(s.artifact, st.threads, texts, n_predict=n_predict, timeout_s=st.probe_timeout, env=s.env)
            if r.ok:
                taken.append(r)
            else:
                out.probe_errors[key] = r.error or "probe failed"
    log(f"{req.label}: fresh-process probes done in {beat.elapsed:.0f} s")


def default_log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
