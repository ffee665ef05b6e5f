"""How much faster is a training step of standard (MiniLM-L6 + head, batch 32, 48 tokens) under
torch's CPU bf16 autocast than in fp32? A lead for issue 15 (training is ~80 % of a fresh build),
not a change: bf16 changes the numerics, so every trained row would have to be re-checked. CPUs
without AVX-512 BF16 / AMX emulate bf16 and are expected to get slower, not faster.

    python experiments/training/train_step_bf16.py     (~2 min; needs standard built)
"""

from __future__ import annotations

import statistics
import time
from typing import Any

STEPS = 10
ROUNDS = 3


def standard_training_batch(tokens: int) -> tuple[Any, Any, Any, Any]:
    """The built standard in training mode, on 2 threads, and a fixed batch of 32 x `tokens` random
    token ids: (model, ids, attention mask, labels). Shared with train_speed.py and dropout_masks.py."""
    import torch

    from slimbench.build.context import default_context
    from slimbench.formats.torch_io import load_hf

    torch.set_num_threads(2)
    ctx = default_context(log=lambda _: None)
    model = load_hf(ctx.artifact_dir("standard")).train()
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, 20000, (32, tokens), generator=gen)
    return model, ids, torch.ones_like(ids), torch.randint(0, 2, (32,), generator=gen)


def main() -> None:
    import torch

    model, ids, mask, labels = standard_training_batch(48)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)

    def steps(bf16: bool) -> float:
        start = time.perf_counter()
        for _ in range(STEPS):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            loss.backward()
            opt.step()
            opt.zero_grad()
        return (time.perf_counter() - start) / STEPS

    steps(False), steps(True)  # warm-up
    times: dict[str, list[float]] = {"fp32": [], "bf16 autocast": []}
    for r in range(ROUNDS):
        for name in (list(times) if r % 2 == 0 else list(times)[::-1]):
            times[name].append(steps(name != "fp32"))
    base = statistics.median(times["fp32"])
    print(f"standard, batch 32 x 48 tokens, {STEPS} steps a round, {ROUNDS} rounds alternated, 2 threads\n")
    print("| training step | s/step (median) | rounds | × fp32 |\n|---|---|---|---|")
    for name, ts in times.items():
        m = statistics.median(ts)
        print(f"| {name} | {m:.3f} | {', '.join(f'{t:.3f}' for t in ts)} | {base / m:.2f} |")


if __name__ == "__main__":
    main()
