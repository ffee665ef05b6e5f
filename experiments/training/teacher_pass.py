"""How fast can the teacher label ultra-light's distillation texts, and how much do the labels move?
The build's teacher pass (torch fp32, batches of 64 in length order, last hidden states kept) against
the same pass without hidden states and through ONNX Runtime (the zoo's `onnx` and `onnx-int8`
artifacts of the same teacher). Every 8th of ultra-light's 52,863 texts; times are one pass each,
methods alternated over 3 rounds (median), the machine otherwise idle. Issue 15.

    python experiments/training/teacher_pass.py      (~4 min; needs standard, onnx, onnx-int8 built)
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np

ROUNDS = 3
BATCH = 64


def main() -> None:
    import torch

    from slimbench.build.context import default_context
    from slimbench.build.recipes.common import load_tokenizer
    from slimbench.build.train import augment, encode_all, predict_logits_and_cls
    from slimbench.formats.torch_io import load_hf
    from slimbench.runtimes.runners import open_runner

    torch.set_num_threads(2)
    ctx = default_context(log=lambda _: None)
    spec = ctx.zoo.get("ultra-light")
    train = [e.text for e in ctx.splits.train]
    texts = train + list(ctx.transfer_loader()) + augment(train, spec.recipe.augment_copies, seed=spec.recipe.seed)
    texts = texts[::8]
    teacher_dir = ctx.artifact_dir("standard")
    seqs = encode_all(load_tokenizer(teacher_dir), texts, 64)
    order = np.argsort([len(s) for s in seqs], kind="stable")
    model = load_hf(teacher_dir)

    def runner_pass(name: str) -> Callable[[], np.ndarray]:
        runner = open_runner(ctx.artifact_dir(name), threads=2)

        def run() -> np.ndarray:
            out = np.zeros((len(texts), 2), dtype=np.float32)
            for i in range(0, len(order), BATCH):
                idx = order[i : i + BATCH]
                out[idx] = runner.predict_logits([texts[j] for j in idx])
            return out
        return run

    methods: dict[str, Callable[[], np.ndarray]] = {
        "torch fp32, hidden states kept (the build's pass)":
            lambda: predict_logits_and_cls(model, seqs, batch_size=BATCH)[0],
        "torch fp32, logits only": lambda: predict_logits_and_cls(model, seqs, batch_size=BATCH, with_cls=False)[0],
        "onnxruntime fp32 (`onnx` artifact)": runner_pass("onnx"),
        "onnxruntime dynamic INT8 (`onnx-int8` artifact)": runner_pass("onnx-int8"),
    }
    times: dict[str, list[float]] = {k: [] for k in methods}
    logits: dict[str, np.ndarray] = {}
    for r in range(ROUNDS):
        for name in list(methods)[r % len(methods):] + list(methods)[: r % len(methods)]:
            start = time.perf_counter()
            logits[name] = methods[name]()
            times[name].append(time.perf_counter() - start)
    ref = logits[next(iter(methods))]
    t = 2.0

    def soft(x: np.ndarray) -> np.ndarray:
        e = np.exp((x - x.max(-1, keepdims=True)) / t)
        return e / e.sum(-1, keepdims=True)

    base = statistics.median(times[next(iter(methods))])
    print(f"{len(texts)} texts (every 8th of ultra-light's {len(texts) * 8 - 7}-ish), batches of {BATCH} in length "
          f"order, 2 threads, {ROUNDS} rounds alternated\n")
    print("| teacher pass | s (median of 3) | texts/s | × the build's pass | max abs Δ logit | "
          "argmax agreement | max abs Δ soft label (T=2) |")
    print("|---|---|---|---|---|---|---|")
    for name in methods:
        s = statistics.median(times[name])
        d = np.abs(logits[name] - ref).max()
        agree = (logits[name].argmax(-1) == ref.argmax(-1)).mean()
        ds = np.abs(soft(logits[name]) - soft(ref)).max()
        print(f"| {name} | {s:.1f} | {len(texts) / s:.0f} | {base / s:.2f} | {d:.2g} | {agree:.4f} | {ds:.2g} |")


if __name__ == "__main__":
    main()
