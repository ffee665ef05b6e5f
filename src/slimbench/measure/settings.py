"""The measuring knobs, declared once: one name, one default and one check each, for every entry
point -- `pytest bench` (as `--slimbench-NAME`), `slimbench run` and `slimbench compare` (as
`--NAME`), and the Python API (as keyword arguments of `MeasureSettings`)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from slimbench.errors import SlimbenchError
from slimbench.measure.workers import CAN_FREEZE, idle_pause_s

# The latency phase's default time budget. The 12-variant zoo's phase took 83 s on a quiet machine (40
# rounds, every ratio within +-3 %), 118-138 s on a moderately noisy one (120 rounds), and 279 s on
# a noisy one, where +-3 % would need ~150 rounds: 150 s leaves the first two alone and cuts the
# third by half (experiments: latency budget).
LATENCY_MAX_S = 150.0
# Sentences of the untimed call before each throughput round's timed batch, which wakes a worker that
# was stopped while the others ran: with 4 the timed batch is as fast, relative to the same batch
# repeated at once, as after a whole discarded batch of 32, and the ratios' intervals are as wide.
THROUGHPUT_WARMUP = 4


class SettingsError(SlimbenchError):
    """A measuring knob has a value that would make a figure meaningless or switch a check off."""


@dataclass(frozen=True)
class MeasureSettings:
    """How the session measures. Units are in the names (`_s`, `_ms`); every field is a knob below."""

    threads: int = 2
    worker_processes: int = 2
    latency_rounds: int = 40
    latency_max_rounds: int = 120
    latency_ci: float = 0.03
    latency_max_s: float = LATENCY_MAX_S  # 0: no time budget
    latency_block: int = 12
    latency_warmup: int = 20
    latency_min_block_ms: int = 120
    latency_settle_ms: int | None = None  # None: 0 while idle workers are frozen, else 60
    no_freeze_idle_workers: bool = False
    throughput_batch: int = 32
    throughput_rounds: int = 10
    throughput_warmup: int = THROUGHPUT_WARMUP
    load_samples: int = 5
    load_min_samples: int = 3
    load_spread: float = 0.10
    memory_samples: int = 3
    probe_timeout: float = 300.0

    def __post_init__(self) -> None:
        for knob in KNOBS:
            knob.check(getattr(self, knob.name))

    @property
    def freeze_idle(self) -> bool:
        return not self.no_freeze_idle_workers and CAN_FREEZE

    @property
    def settle_s(self) -> float:
        """The pause before each block: by default none while idle workers are frozen."""
        if self.latency_settle_ms is None:
            return idle_pause_s(self.freeze_idle)
        return self.latency_settle_ms / 1000

    @property
    def min_block_s(self) -> float:
        return self.latency_min_block_ms / 1000

    @property
    def max_s(self) -> float | None:
        return self.latency_max_s or None

    def probe_counts(self) -> tuple[int, int]:
        """The fewest and the most start-up samples a variant gets (peak RSS needs its own count)."""
        most = max(self.load_samples, self.memory_samples)
        least = max(min(self.load_min_samples, self.load_samples), self.memory_samples)
        return (most if self.load_spread == 0 else least), most

    @classmethod
    def from_options(cls, get: Callable[[str], Any]) -> MeasureSettings:
        """From parsed options: `get(name)` returns the knob's value (argparse or pytest)."""
        return cls(**{f.name: get(f.name) for f in fields(cls)})


@dataclass(frozen=True)
class Knob:
    name: str
    kind: str  # int | float | flag
    help: str
    least: float = 1  # the smallest allowed value (ints and floats)
    below: float | None = None  # values must be < this (fractions)
    optional: bool = False  # None allowed (the default is computed)

    @property
    def default(self) -> Any:
        return {f.name: f.default for f in fields(MeasureSettings)}[self.name]

    def flag(self, prefix: str = "") -> str:
        return f"--{prefix}{self.name.replace('_', '-')}"

    def check(self, value: Any) -> None:
        if self.kind == "flag":
            if not isinstance(value, bool):
                raise SettingsError(f"{self.flag()} is a switch, got {value!r}")
            return
        if value is None and self.optional:
            return
        what = f"{'an integer' if self.kind == 'int' else 'a number'} >= {self.least:g}"
        if self.below is not None:
            what = f"a number in [{self.least:g}, {self.below:g})"
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        ok = ok and value >= self.least and (self.below is None or value < self.below)
        if ok and self.kind == "int":
            ok = float(value).is_integer()
        if not ok:
            raise SettingsError(f"{self.flag()} must be {what}, got {value!r}")


KNOBS: tuple[Knob, ...] = (
    Knob("threads", "int", "intra-op threads, identical for every runtime (default %(default)s)"),
    Knob("worker_processes", "int",
         "timing worker processes per variant; latency and throughput rounds alternate between them, so that "
         "one process's lasting offset of its own (1-3 %% measured) averages out instead of moving the ratios "
         "(default %(default)s; each is also a start-up sample)"),
    Knob("latency_rounds", "int",
         "interleaved rounds: in each, every variant's worker runs one block of batch-1 predictions on the same "
         "test sentences, in a rotated order (default %(default)s)"),
    Knob("latency_max_rounds", "int",
         "after --{p}latency-rounds, rounds continue for the variants whose p50 ratio (to standard, or candidate to "
         "baseline) still has a 95 %% CI wider than --{p}latency-ci, up to this many in all (default %(default)s)",
         least=0),
    Knob("latency_ci", "float",
         "the CI half-width, relative, at which a ratio needs no more rounds (default %(default)s: +-3 %%; 0: "
         "always --{p}latency-max-rounds)", least=0, below=1),
    Knob("latency_max_s", "float",
         "time budget of the latency phase: no round after the first --{p}latency-rounds starts once it has lasted "
         "this long; the report says when the budget ended the rounds (default %(default)g s; 0: no limit)",
         least=0),
    Knob("latency_block", "int", "batch-1 calls per block; the first two of each are discarded (default %(default)s)",
         least=3),
    Knob("latency_warmup", "int", "untimed warm-up predictions per worker before the first round (default %(default)s)",
         least=0),
    Knob("latency_min_block_ms", "int",
         "a variant whose block would be shorter repeats the round's sentences until it lasts about this long, "
         "so that a burst of machine noise cannot hit a fast variant's whole block (default %(default)s; 0: off)",
         least=0),
    Knob("latency_settle_ms", "int",
         "pause before each block, so that the previous worker's spinning runtime threads have gone idle "
         "(default: 0 while idle workers are frozen, 60 otherwise)", least=0, optional=True),
    Knob("no_freeze_idle_workers", "flag",
         "do not stop idle timing workers (SIGSTOP) while another runs its block; pause before each block "
         "instead"),
    Knob("throughput_batch", "int", "batch size for throughput (default %(default)s)"),
    Knob("throughput_rounds", "int",
         "interleaved rounds of one timed batch per variant for throughput (default %(default)s)"),
    Knob("throughput_warmup", "int",
         "sentences of the one untimed call each worker makes before its timed batch in a throughput round "
         "(default %(default)s; 0: none)", least=0),
    Knob("load_samples", "int",
         "the most fresh processes per variant for start-up time, the timing workers' own start-ups first "
         "(default %(default)s)"),
    Knob("load_min_samples", "int",
         "the fewest: after these, a variant gets more (up to --{p}load-samples) only while further probes could "
         "still move its median start-up time beyond +-(--{p}load-spread) (default %(default)s)"),
    Knob("load_spread", "float",
         "how far, relative, further probes may still be able to move a median start-up time when a variant "
         "gets no more (default %(default)s; 0: always --{p}load-samples)", least=0, below=1),
    Knob("memory_samples", "int",
         "of those fresh processes, how many give peak RSS after 50 predictions (default %(default)s)"),
    Knob("probe_timeout", "float",
         "seconds before a fresh-process probe or a timing worker's answer counts as hung (default %(default)g)",
         least=1),
)

assert [k.name for k in KNOBS] == [f.name for f in fields(MeasureSettings)]  # one knob per field


def add_knobs(add: Callable[..., Any], prefix: str = "", skip: tuple[str, ...] = ()) -> None:
    """Declare every knob with `add` (argparse's add_argument or a pytest group's addoption)."""
    for knob in KNOBS:
        if knob.name in skip:
            continue
        if knob.kind == "flag":
            add(knob.flag(prefix), action="store_true", help=knob.help.replace("{p}", prefix))
        else:
            add(knob.flag(prefix), type=int if knob.kind == "int" else float, default=knob.default,
                help=knob.help.replace("{p}", prefix))


def settings_from(get: Callable[[str], Any], overrides: Mapping[str, Any] | None = None) -> MeasureSettings:
    """MeasureSettings from parsed options, `overrides` taking precedence (e.g. a compare's fixed choices)."""
    values = {f.name: get(f.name) for f in fields(MeasureSettings)}
    values.update(overrides or {})
    return MeasureSettings(**values)
