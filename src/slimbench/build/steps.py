"""Where a build's time goes: a clock per named step (teacher pass, training, evaluation...).

`build_one` gives each build a fresh `StepClock`; recipes wrap their costly parts in
`with ctx.steps("train"):`. The seconds land in the manifest as `build_steps_s`, with the rest of
the build (loading, tokenising, small steps) as `other`, and `slimbench build` prints them after
each variant, so a profile of a fresh build is one `slimbench build` away.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager


class StepClock:
    """Seconds per step name, summed over repeats (two recovery rounds are one "train")."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._open = False

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        if self._open:  # a step inside a step is already counted by the outer one
            yield
            return
        self._open = True
        start = time.perf_counter()
        try:
            yield
        finally:
            self._open = False
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start

    def record(self, total: float) -> dict[str, float]:
        """The steps in the order they first ran, and `other`: the rest of `total` (never negative)."""
        out = {name: round(s, 1) for name, s in self.seconds.items()}
        out["other"] = round(max(0.0, total - sum(self.seconds.values())), 1)
        return out


def summary(steps: dict[str, float]) -> str:
    """'train 754 s, evaluate 22 s, other 31 s': the steps of one build, largest first."""
    parts = sorted(steps.items(), key=lambda kv: -kv[1])
    return ", ".join(f"{name} {s:.0f} s" for name, s in parts if s >= 0.5) or "all steps under 1 s"
