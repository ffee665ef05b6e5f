"""Interleaved rounds: every variant runs a short block each round, in a rotated order.

A shared 2-core machine drifts by tens of percent over minutes. Timing variant A for a minute and
then variant B puts that drift into the ratio B/A; timing them in alternating blocks, a few hundred
milliseconds apart, puts the same drift into both, and a ratio computed round by round cancels it
(paired benchmarking, as tango, perfgate-paired and asv `continuous` do for two commands).

Blocks, not single calls, and nothing else running during a block: an idle worker's runtime
threads keep spinning after its last call -- measured here (experiments/paired-timing/spin.md): an
onnxruntime worker keeps a core busy for ~50 ms, torch's OpenMP threads for ~10-20 ms -- which would
steal a core from the next worker (alternating single calls made standard 5x slower). Where the OS
allows, every worker but the one being asked is stopped (SIGSTOP, `workers.Worker.freeze`), which
cuts the tail off at once; elsewhere (or with --no-freeze-idle-workers) the parent sleeps
`settle_s` (60 ms) before each block until the tail is over. The two agree within 1.5 % on every
ratio, and freezing makes a round 30 % shorter (experiments/paired-timing/freeze.md). The first
`discard` calls of each block (default 2: the wake-up of the block's own threads, measured at
+17-134 % on the first call and +8-46 % on the second) are not kept as samples.

Round r of every variant uses the same sentences (texts[r * block ...]), so rounds are paired by
input as well as by time. This module only schedules: `run_block(key, round)` does the work.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

HEARTBEAT_S = 10.0  # the longest a phase of a benchmark run stays silent (issue 15)
RunBlock = Callable[[str, int], "list[float] | None"]  # None: the key failed and is dropped


@dataclass
class Rounds:
    """Kept samples per key and round (None where the key had failed before that round)."""

    blocks: dict[str, list[list[float] | None]] = field(default_factory=dict)
    orders: list[list[str]] = field(default_factory=list)  # who ran when, for the record
    # why no further round ran: "rounds" (a fixed count), "ci" (the criterion named no key),
    # "max_rounds" (the round limit) or "max_s" (the time budget)
    stopped: str = "rounds"

    def samples(self, key: str) -> list[float]:
        return [s for block in self.blocks.get(key, []) if block for s in block]

    def rounds_of(self, key: str) -> list[list[float] | None]:
        return self.blocks.get(key, [])


def rotated(keys: Sequence[str], k: int) -> list[str]:
    """keys rotated left by k: each key leads equally often over len(keys) rounds."""
    if not keys:
        return []
    k %= len(keys)
    return [*keys[k:], *keys[:k]]


Order = Callable[[Sequence[str], int], "list[str]"]  # (keys still alive, round) -> who runs, in order


def paired_order(keys: Sequence[str], r: int) -> list[str]:
    """For A/B runs, keys "side:variant": variants in rotated order, the two sides of a variant
    back to back, the side that goes first alternating by round."""
    variants: dict[str, list[str]] = {}
    for key in keys:
        variants.setdefault(key.split(":", 1)[-1], []).append(key)
    out: list[str] = []
    for v in rotated(list(variants), r):
        group = variants[v]
        out.extend(group if r % 2 == 0 else group[::-1])
    return out


MIN_BLOCK_S = 0.12  # a latency block lasts at least this long: fast variants repeat the round's texts
MAX_REPEAT = 64


def equal_time_repeats(latency_s: Mapping[str, float], n: int, min_block_s: float = MIN_BLOCK_S,
                       group: Callable[[str], str] = lambda key: key) -> dict[str, int]:
    """How many times each key repeats a round's `n` texts so that its block lasts >= min_block_s.

    Bursts of noise on a shared machine last tens of milliseconds: a 10 ms block is either hit or
    missed whole, so its median jumps from round to round, while a 150 ms block averages over the
    burst. Keys of one group (the two sides of a variant in an A/B run) get the same repeat, from
    their mean latency, so their blocks stay comparable call for call.
    """
    groups: dict[str, list[float]] = {}
    for key, s in latency_s.items():
        groups.setdefault(group(key), []).append(s)
    out = {}
    for key in latency_s:
        mean = sum(groups[group(key)]) / len(groups[group(key)])
        out[key] = 1 if mean <= 0 or min_block_s <= 0 else max(1, min(MAX_REPEAT, math.ceil(min_block_s / (mean * n))))
    return out


SETTLE_S = 0.06  # pause before each block where idle workers are not frozen: longer than onnxruntime's spinning tail
DISCARD = 2  # calls dropped at the start of a latency block: its own threads waking (2nd call still +8-46 %)


def run_rounds(keys: Sequence[str], rounds: int, run_block: RunBlock, discard: int = 1,
               progress: Callable[[int, int], None] | None = None, order: Order = rotated,
               settle_s: float = 0.0, more: Callable[[Rounds], Sequence[str]] | None = None,
               max_rounds: int | None = None, max_s: float | None = None,
               clock: Callable[[], float] | None = None) -> Rounds:
    """`rounds` rounds over `keys`; a pause of `settle_s` before each block, whose first `discard`
    samples are dropped.

    Then, up to `max_rounds` in all, further rounds of only the keys that `more(rounds so far)`
    names (e.g. those whose ratio's confidence interval is still wide, and their reference), until
    it names none: sequential stopping, spending rounds where the noise is. A key that sits out a
    round gets None for it, so rounds stay aligned by index. `max_s` bounds the time: no further
    round starts once `max_s` seconds (on `clock`, default time.perf_counter) have passed since the
    first began -- the first `rounds` always run. `Rounds.stopped` says which limit ended the run.
    """
    import time

    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    if discard < 0:
        raise ValueError(f"discard must be >= 0, got {discard}")
    if max_s is not None and max_s <= 0:
        raise ValueError(f"max_s must be > 0 (None: no time limit), got {max_s}")
    clock = clock or time.perf_counter
    started = clock()
    last = max(rounds, max_rounds or rounds) if more else rounds
    out = Rounds(blocks={k: [] for k in keys}, stopped="max_rounds" if more else "rounds")
    alive = list(keys)
    for r in range(last):
        if r < rounds:
            now = order(alive, r)
        else:
            assert more is not None
            wanted = set(more(out))
            now = order([k for k in alive if k in wanted], r)
            if not now:
                out.stopped = "ci"
                break
            if max_s is not None and clock() - started >= max_s:
                out.stopped = "max_s"
                break
        out.orders.append(now)
        for key in now:
            if settle_s:
                time.sleep(settle_s)
            block = run_block(key, r)
            if block is None:
                alive.remove(key)
                out.blocks[key].append(None)
                continue
            out.blocks[key].append(list(block[discard:]))
        for key in keys:  # keys that failed earlier or sat out this round: keep rounds aligned
            if len(out.blocks[key]) < r + 1:
                out.blocks[key].append(None)
        if progress:
            progress(r + 1, rounds if r < rounds else last)
    return out


def wide_ratios(pairs: Mapping[str, str], half_width: float) -> Callable[[Rounds], list[str]]:
    """A `more` criterion for `run_rounds`: `pairs` maps a key to the key it is compared with (a
    variant to `standard`, or a candidate to its baseline); a pair whose paired p50 ratio has a 95 %
    CI wider than +-half_width (relative) gets another round, both of its keys."""
    from slimbench.stats import paired_ratio

    def need(rounds: Rounds) -> list[str]:
        out: list[str] = []
        for num, den in pairs.items():
            try:
                pr = paired_ratio(rounds.rounds_of(num), rounds.rounds_of(den), resamples=500)
            except ValueError:
                continue
            if pr.value > 0 and (pr.high - pr.low) / 2 / pr.value > half_width:
                out += [num, den]
        return out
    return need


class Heartbeat:
    """When the next progress line is due: at most every `interval` seconds, so that no phase of a
    run is silent for longer (`if beat.due(): log(...)`)."""

    def __init__(self, interval: float = HEARTBEAT_S):
        import time

        self.interval, self._clock = interval, time.perf_counter
        self.started = self._last = self._clock()

    @property
    def elapsed(self) -> float:
        return self._clock() - self.started

    def due(self, force: bool = False, ahead: float = 0.0) -> bool:
        """Whether to print a line now. `ahead`: how long the next step (printed nothing during)
        is expected to take; a line is due already when the silence would otherwise outlast the
        interval by its end -- before a fresh-process probe of ~8 s, a line 2 s after the last."""
        now = self._clock()
        if force or now - self._last + ahead >= self.interval:
            self._last = now
            return True
        return False


def progress_log(log: Callable[[str], None], what: str, interval: float = HEARTBEAT_S,
                 max_s: float | None = None, rounds: int = 0) -> Callable[[int, int], None]:
    """A `run_rounds` progress callback: a line about every `interval` seconds, and at the end, with
    the time to go. With `run_rounds`' `max_s` and `rounds`: once past the first `rounds`, the time to
    go is at most what is left of the budget plus the round that may start just before it ends."""
    beat = Heartbeat(interval)

    def show(done: int, total: int) -> None:
        if beat.due(force=done == total):
            elapsed = beat.elapsed
            per_round = elapsed / done
            to_go, why = per_round * (total - done), ""
            if max_s is not None and total > rounds and done < total:
                left = max(0.0, max_s - elapsed) + per_round
                if left < to_go:
                    to_go, why = left, f" (the phase's {max_s:g}-s budget)"
            log(f"{what} round {done}/{total}, {elapsed:.0f} s elapsed, ~{to_go:.0f} s to go{why}")
    return show
