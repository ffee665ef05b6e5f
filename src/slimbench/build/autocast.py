"""`train.autocast = "auto"`: the training steps' compute dtype chosen for the CPU they run on.

Whether torch's CPU bf16 autocast speeds training up depends on the CPU, not on its flags: on this
project's 2-core VM it made standard's training step 1.78x faster on an AMD EPYC (family 26,
AVX-512 BF16) and 1.25x *slower* on an Intel Xeon (family 6 model 207, AVX-512 BF16 too), where
oneDNN's bf16 matmul ran at 169 GFLOP/s against fp32's 297 (reports/evidence/first-report/
train-step-bf16.md). So "auto" times a few forward+backward passes of a MiniLM-sized encoder layer
in both dtypes and takes bf16 only when it is at least `MIN_SPEEDUP` times as fast; fp32 is the
reference precision and keeps its place on any CPU where bf16 does not clearly pay.

The choice is measured once per machine (CPU name, generation and kernel flags; torch version)
and kept beside the artifacts, so every build on one machine uses the same dtype and a
rebuild reproduces its artifacts. The dtype chosen is one of the inputs of every spec hash that
depends on an "auto" recipe: a bf16- and an fp32-trained standard are different artifacts and get
different directories. `SLIMBENCH_TRAIN_AUTOCAST=fp32|bf16` overrides the measurement, e.g. to
rebuild on one CPU the artifacts another one chose.
"""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from slimbench.errors import SpecError

AUTO = "auto"
ENV = "SLIMBENCH_TRAIN_AUTOCAST"
CHOICES = ("fp32", "bf16")
MIN_SPEEDUP = 1.2  # bf16 only where it is clearly faster: below this, fp32's exactness wins
DECISIVE = 2.0  # a first round's speed-up this far from MIN_SPEEDUP (either way) needs no second round
DECISIONS_DIR = ".train-autocast"  # under the artifact root, beside .teacher-outputs


@dataclass(frozen=True)
class AutocastChoice:
    """The dtype "auto" resolved to, and why: `source` is "measured", "cached" (an earlier
    measurement on this machine) or "env" (SLIMBENCH_TRAIN_AUTOCAST)."""

    dtype: str
    source: str
    fp32_step_s: float | None = None
    bf16_step_s: float | None = None
    machine: str = ""

    @property
    def speedup(self) -> float | None:
        """fp32's step time over bf16's: how much faster bf16 autocast was."""
        if not self.fp32_step_s or not self.bf16_step_s:
            return None
        return self.fp32_step_s / self.bf16_step_s

    def describe(self) -> str:
        if self.source == "env":
            return f"{self.dtype} ({ENV})"
        if self.speedup is None:  # a choice made without two step times: nothing to quote
            return f"{self.dtype} ({self.source})"
        how = "measured" if self.source == "measured" else "measured earlier on this machine"
        return (f"{self.dtype}: bf16 autocast step {self.speedup:.2f}x as fast as fp32 on this CPU ({how}; "
                f"bf16 needs >= {MIN_SPEEDUP}x)")

    def record(self) -> dict[str, object]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def choose(fp32_step_s: float, bf16_step_s: float) -> str:
    return "bf16" if fp32_step_s >= MIN_SPEEDUP * bf16_step_s else "fp32"


def machine_key() -> str:
    """What the choice depends on: the CPU (name, generation, kernel flags) and torch's version. Not
    the thread count: every process that computes a spec hash (a build, the bench's, a compare's)
    must find the same choice, whatever OMP_NUM_THREADS it runs with."""
    from slimbench.machine import cpu_generation, cpu_model, kernel_flags, read_cpuinfo

    info = read_cpuinfo()
    try:
        from importlib.metadata import version

        torch_version = version("torch")
    except Exception:  # noqa: BLE001 -- no torch: the key still names the CPU
        torch_version = "none"
    parts = (cpu_model(info), cpu_generation(info), ",".join(kernel_flags(info.get("flags", "").split())),
             f"torch {torch_version}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:12]


def time_steps(steps: int = 4, rounds: int = 3, tokens: int = 48, batch: int = 32) -> tuple[float, float]:
    """Median seconds of one forward+backward pass of a MiniLM-sized encoder layer (hidden 384,
    12 heads, FFN 1536) on batch x tokens, in fp32 and under bf16 autocast, alternated by round
    (`alternate_rounds`: fewer rounds where the first already decides)."""
    import torch
    from torch import nn

    gen = torch.Generator().manual_seed(0)
    layer = nn.TransformerEncoderLayer(384, 12, 1536, dropout=0.0, batch_first=True)
    x = torch.randn(batch, tokens, 384, generator=gen)

    def run(bf16: bool, n: int = steps) -> float:
        start = time.perf_counter()
        for _ in range(n):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                out = layer(x)
            out.float().square().mean().backward()
        return (time.perf_counter() - start) / n

    run(False, 1), run(True, 1)  # warm-up: the first pass chooses the kernels and allocates the buffers
    return alternate_rounds(run, rounds)


def alternate_rounds(run: Callable[[bool], float], rounds: int) -> tuple[float, float]:
    """Medians of `run(False)` (fp32) and `run(True)` (bf16) over up to `rounds` rounds, their order
    alternated by round. After each round, no further round when the medians so far put the speed-up
    beyond a factor `DECISIVE` of MIN_SPEEDUP either way: where bf16 has no fast kernels (an AVX2-only
    CPU) its step is ~14x slower, and timing it twice more cost ~40 s of every first `make report`
    (reports/evidence/first-report/autocast-timing.md) to confirm what no noise could reverse."""
    times: dict[bool, list[float]] = {False: [], True: []}
    for r in range(rounds):
        for bf16 in ((False, True) if r % 2 == 0 else (True, False)):
            times[bf16].append(run(bf16))
        speedup = statistics.median(times[False]) / statistics.median(times[True])
        if not MIN_SPEEDUP / DECISIVE < speedup < MIN_SPEEDUP * DECISIVE:
            break
    return statistics.median(times[False]), statistics.median(times[True])


MAX_STEP_S = 3600.0  # a kept step time beyond an hour is no measurement of one layer's step


def read_kept(path: Path) -> tuple[float, float] | str:
    """The (fp32, bf16) step seconds kept in `path`, or what is wrong with them: each must be a
    number of seconds, finite, above zero and below MAX_STEP_S (a zero crashed `build` and `plan`)."""
    try:
        kept = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as err:
        return f"unreadable: {err}"
    if not isinstance(kept, dict):
        return f"not an object: {str(kept)[:60]}"
    times = []
    for name in ("fp32_step_s", "bf16_step_s"):
        value = kept.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < MAX_STEP_S:
            return f"{name} is {value!r}, not a step time in seconds"
        times.append(float(value))
    return times[0], times[1]


def resolve(root: Path | None, measure: Callable[[], tuple[float, float]] = time_steps) -> AutocastChoice:
    """The dtype "auto" means on this machine: SLIMBENCH_TRAIN_AUTOCAST if set, else the choice
    kept under `root` for this machine, else measured now (and kept when `root` is writable)."""
    forced = os.environ.get(ENV, "").strip()
    if forced:
        if forced not in CHOICES:
            raise SpecError(f"{ENV}={forced!r}: must be one of {CHOICES} (or unset, to measure which is faster)")
        return AutocastChoice(forced, "env")
    key = machine_key()
    path = root / DECISIONS_DIR / f"{key}.json" if root is not None else None
    if path is not None and path.is_file():
        kept = read_kept(path)
        if isinstance(kept, tuple):
            return AutocastChoice(choose(*kept), "cached", *kept, key)
        print(f"slimbench: the kept training-dtype choice {path} is damaged ({kept}): measuring again",
              file=sys.stderr, flush=True)
    fp32, bf16 = measure()
    choice = AutocastChoice(choose(fp32, bf16), "measured", fp32, bf16, key)
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            part = path.with_name(f".{path.name}.partial-{os.getpid()}")
            part.write_text(json.dumps(choice.record(), indent=1) + "\n")
            os.replace(part, path)
        except OSError:
            pass  # a read-only cache: the choice holds for this process only
    return choice
