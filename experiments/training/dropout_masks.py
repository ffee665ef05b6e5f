"""A lead for issue 15, not a change: how much of standard's fp32 training step would a cheaper
dropout mask save? Replaces the model's nn.Dropout modules (not the attention's, inside scaled
dot-product attention) by one that draws its keep-mask from NumPy's PCG64 as uint16 (keep
probability 1 - p to 1.5e-5), alternated by round with torch's own dropout.

    python experiments/training/dropout_masks.py     (~2 min; needs standard built)
"""

from __future__ import annotations

import statistics
import time

from train_step_bf16 import standard_training_batch  # beside this script

STEPS = 6
ROUNDS = 3


def main() -> None:
    import numpy as np
    import torch
    from torch import nn

    class NumpyDropout(nn.Module):
        def __init__(self, p: float, seed: int = 0):
            super().__init__()
            self.p, self.rng = p, np.random.default_rng(seed)
            self.threshold = int(round(p * 65536))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if not self.training or self.p == 0:
                return x
            bits = self.rng.integers(0, 65536, size=x.numel(), dtype=np.uint16)
            keep = torch.from_numpy(bits >= self.threshold).view(x.shape)
            return x * keep * (1.0 / (1.0 - self.p))

    model, ids, mask, labels = standard_training_batch(40)
    originals = {name: m for name, m in model.named_modules() if isinstance(m, nn.Dropout)}
    replacements = {name: NumpyDropout(m.p) for name, m in originals.items()}

    def use(mods: dict[str, nn.Module]) -> None:
        for name, m in mods.items():
            parent, _, leaf = name.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, leaf, m)
        model.train()

    opt = torch.optim.AdamW(model.parameters(), lr=1e-9, fused=True)

    def step() -> float:
        t = time.perf_counter()
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0, foreach=True)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return time.perf_counter() - t

    arms = {"torch nn.Dropout (fit() today)": originals, "NumPy PCG64 uint16 masks": replacements}
    for mods in arms.values():
        use(mods)
        step()
    times: dict[str, list[float]] = {k: [] for k in arms}
    for r in range(ROUNDS):
        for name in (list(arms) if r % 2 == 0 else list(arms)[::-1]):
            use(arms[name])
            times[name] += [step() for _ in range(STEPS)]
    base = statistics.median(times[next(iter(arms))])
    print(f"standard, fp32, fused AdamW, batch 32 x 40, {len(originals)} nn.Dropout modules replaced, "
          f"{STEPS} steps x {ROUNDS} rounds alternated, 2 threads\n")
    print("| dropout | step s (median) | × today |\n|---|---|---|")
    for name, ts in times.items():
        print(f"| {name} | {statistics.median(ts):.3f} | {base / statistics.median(ts):.2f} |")


if __name__ == "__main__":
    main()
