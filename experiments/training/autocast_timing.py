"""What `train.autocast = "auto"`'s measurement costs on this CPU: the wall seconds of
`slimbench.build.autocast.time_steps()` as it is now (one-step warm-ups, rounds only while the speed-up
is undecided) and as it was (four-step warm-ups, always three rounds), with the step times and the
choice each gives. Run it alone on an idle machine (it uses both cores).

usage: PYTHONPATH=src python experiments/training/autocast_timing.py
"""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn

from slimbench.build.autocast import choose, time_steps


def time_steps_before(steps: int = 4, rounds: int = 3, tokens: int = 48, batch: int = 32) -> tuple[float, float]:
    """The measurement before this change, verbatim but for its name."""
    gen = torch.Generator().manual_seed(0)
    layer = nn.TransformerEncoderLayer(384, 12, 1536, dropout=0.0, batch_first=True)
    x = torch.randn(batch, tokens, 384, generator=gen)

    def run(bf16: bool) -> float:
        start = time.perf_counter()
        for _ in range(steps):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                out = layer(x)
            out.float().square().mean().backward()
        return (time.perf_counter() - start) / steps

    run(False), run(True)
    times: dict[bool, list[float]] = {False: [], True: []}
    for r in range(rounds):
        for bf16 in ((False, True) if r % 2 == 0 else (True, False)):
            times[bf16].append(run(bf16))
    return statistics.median(times[False]), statistics.median(times[True])


def main() -> None:
    torch.set_num_threads(2)
    print("| measurement | wall s | fp32 step s | bf16 step s | speed-up | choice |")
    print("|---|---|---|---|---|---|")
    for name, fn in (("before (3 rounds, 4-step warm-ups)", time_steps_before), ("now", time_steps)) * 2:
        t = time.perf_counter()
        fp32, bf16 = fn()
        wall = time.perf_counter() - t
        print(f"| {name} | {wall:.1f} | {fp32:.3f} | {bf16:.3f} | {fp32 / bf16:.2f}x | {choose(fp32, bf16)} |")


if __name__ == "__main__":
    main()
