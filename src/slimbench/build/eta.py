"""How long a build will take, said before it starts and kept up to date while it runs.

A variant's estimate is its own last build time in this cache (any spec hash: the manifest records
`build_seconds`), else the time it took on the reference 2-core VM (`REFERENCE_S`, measured there
with the default dataset), else unknown. While the build runs, the remaining estimate is scaled by
how the finished variants compared with theirs (a slower machine says so after the first variant).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

# Seconds per variant on the reference VM (2 cores, idle), default dataset: the manifests of a fresh
# clone's first `make report` with an empty cache, nothing else running (2026-12-03, at c585000, on
# the VM's Intel Xeon, family 6 model 207; reports/evidence/first-report/cold-run-10.md): the trained
# rows in fp32 (train.autocast = "auto" measured bf16 0.58x as fast there) with fused AdamW, standard
# and ultra-light stopping after the epoch their builds keep (train.stop_after_epochs). The host ran
# ~10 % slower in that run than two hours before (light's epochs 70-76 s against 64-66). Sweep rungs
# (one-shot pruning, evaluation, gzip size): 16-25 s, median 18, in the same run.
REFERENCE_S: dict[str, float] = {
    "standard": 277, "light": 266, "ultra-light": 332, "quantized": 28, "onnx": 20, "onnx-int8": 19,
    "onnx-static-int8": 22, "ultra-light-onnx-int8": 3, "pruned-heads": 159, "sparse-50": 297,
    "standard-numpy": 37, "ultra-light-numpy": 2,
}
RUNG_S = 18.0


def previous_seconds(root: Path, name: str) -> float | None:
    """`build_seconds` of the most recent earlier build of `name` in this artifact cache."""
    best: tuple[str, float] | None = None
    for manifest in Path(root).glob(f"{name}-*/manifest.json"):
        try:
            m = json.loads(manifest.read_text())
        except (OSError, ValueError):
            continue
        if m.get("name") == name and isinstance(m.get("build_seconds"), (int, float)):
            when = str(m.get("built_at", ""))
            if best is None or when > best[0]:
                best = (when, float(m["build_seconds"]))
    return best[1] if best else None


def estimate(root: Path, name: str, default_dataset: bool) -> tuple[float | None, str]:
    """(seconds or None, where the figure comes from)."""
    earlier = previous_seconds(root, name)
    if earlier is not None:
        return earlier, "an earlier build here"
    if default_dataset and name in REFERENCE_S:
        return REFERENCE_S[name], "the reference 2-core VM"
    if default_dataset and "-sparse-" in name:
        return RUNG_S, "the reference 2-core VM"
    return None, "unknown"


def minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


@dataclass
class BuildEta:
    """The estimates of the variants still to build, and how the finished ones went."""

    todo: dict[str, float | None]
    started: float = field(default_factory=time.perf_counter)
    estimated_done: float = 0.0
    actual_done: float = 0.0

    def plan_line(self, cached: int, sources: Sequence[str]) -> str:
        known = [s for s in self.todo.values() if s is not None]
        head = f"build plan: {len(self.todo)} to build, {cached} cached"
        if not known:
            return (f"{head}: {', '.join(self.todo)}; no time estimate (no earlier build of them here, and the "
                    "reference times are for the default dataset and checkpoint)")
        parts = ", ".join(f"{n} ~{minutes(s)}" if s is not None else f"{n} ?" for n, s in self.todo.items())
        total = f"about {minutes(sum(known))}" + (" plus the ones marked ?" if len(known) < len(self.todo) else "")
        return f"{head}; {total} (estimates from {' and '.join(sorted(set(sources)))}): {parts}"

    def finished(self, name: str, seconds: float) -> str:
        """Record a finished variant; the progress line with the whole build's ETA."""
        est = self.todo.pop(name, None)
        if est:
            self.estimated_done += est
            self.actual_done += seconds
        pace = self.actual_done / self.estimated_done if self.estimated_done else 1.0
        left = [s for s in self.todo.values() if s is not None]
        elapsed = time.perf_counter() - self.started
        text = f"{minutes(elapsed)} elapsed"
        if self.todo and not left:
            text += f", {len(self.todo)} more to build"
        elif self.todo:
            unknown = len(self.todo) - len(left)
            text += f", about {minutes(sum(left) * pace)} left for {len(left)} more" + (
                f" and {unknown} without an estimate" if unknown else "")
            if pace > 1.25 or pace < 0.8:
                text += f" (this machine runs at {pace:.1f}x the estimates)"
        return text
