"""Where a training step of standard spends its time, and what fit()'s choices change (issue 15).

One step = forward (the model's loss), backward, gradient clipping + AdamW step. Configurations,
alternated by round: the training dtype (fp32, bf16 autocast) x the optimizer (AdamW's per-tensor
loop, as fit() had it before, and fused=True with foreach clipping, as it has now). Then a
torch.profiler table of fit()'s current fp32 step (the ops' self CPU time), for the next levers.

    python experiments/training/train_speed.py     (~3 min; needs standard built)
"""

from __future__ import annotations

import statistics
import time

from train_step_bf16 import standard_training_batch  # beside this script

STEPS = 6
ROUNDS = 3


def main() -> None:
    import torch

    model, ids, mask, labels = standard_training_batch(40)
    optimizers = {"loop": torch.optim.AdamW(model.parameters(), lr=1e-9),
                  "fused": torch.optim.AdamW(model.parameters(), lr=1e-9, fused=True)}

    def step(bf16: bool, opt_name: str) -> tuple[float, float, float]:
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss.float()
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0, foreach=opt_name == "fused")
        optimizers[opt_name].step()
        optimizers[opt_name].zero_grad(set_to_none=True)
        return t1 - t0, t2 - t1, time.perf_counter() - t2

    configs = [(bf16, opt) for bf16 in (False, True) for opt in ("loop", "fused")]
    for c in configs:
        step(*c)  # warm-up
    times: dict[tuple[bool, str], list[tuple[float, float, float]]] = {c: [] for c in configs}
    for r in range(ROUNDS):
        for c in (configs if r % 2 == 0 else configs[::-1]):
            times[c] += [step(*c) for _ in range(STEPS)]
    base = statistics.median(sum(t) for t in times[(False, "loop")])
    print(f"standard, batch 32 x 40 tokens, {STEPS} steps x {ROUNDS} rounds per configuration, "
          "alternated, 2 threads; medians over the steps\n")
    print("| dtype | optimizer | forward s | backward s | clip + AdamW s | step s | × fp32 loop |")
    print("|---|---|---|---|---|---|---|")
    for (bf16, opt), ts in times.items():
        parts = [statistics.median(t[i] for t in ts) for i in range(3)]
        total = statistics.median(sum(t) for t in ts)
        label = "fused AdamW + foreach clip" if opt == "fused" else "AdamW loop"
        print(f"| {'bf16 autocast' if bf16 else 'fp32'} | {label} | "
              + " | ".join(f"{p:.3f}" for p in parts) + f" | {total:.3f} | {base / total:.2f} |")

    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(4):
            step(False, "fused")
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total_us = sum(e.self_cpu_time_total for e in events)
    print("\nfp32, fused: the ops' self CPU time over 4 steps (top 8)\n")
    print("| op | share | ms a step | calls a step |\n|---|---|---|---|")
    for e in events[:8]:
        print(f"| {e.key} | {100 * e.self_cpu_time_total / total_us:.1f} % | "
              f"{e.self_cpu_time_total / 4e3:.0f} | {e.count // 4} |")


if __name__ == "__main__":
    main()
