"""Could two builds share the 2 cores? Seconds per training step of standard (MiniLM-L6, batch 32,
AdamW), alone and two processes at once, at 2 and 1 torch threads; and whether the thread count
changes the numbers (a hash of two steps' logits and gradients). Issue 15.

    python reports/evidence/first-report/parallel_training.py        (~2 min; nothing else running)
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time

STEPS = 11


def child(threads: int) -> None:
    import numpy as np
    import torch

    from slimbench.build.context import default_context
    from slimbench.build.recipes.common import load_tokenizer
    from slimbench.build.train import collate, encode_all
    from slimbench.torch_io import load_hf

    torch.set_num_threads(threads)
    ctx = default_context(log=lambda _: None)
    src = ctx.artifact_dir("standard")
    train = ctx.splits.train[: 32 * (STEPS + 1)]
    seqs = encode_all(load_tokenizer(src), [e.text for e in train], 64)
    model = load_hf(src).train()
    torch.manual_seed(0)  # dropout
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    digest = hashlib.sha256()

    def step(b: int) -> None:
        idx = np.arange(b * 32, (b + 1) * 32)
        ids, mask = collate(seqs, idx)
        out = model(input_ids=ids, attention_mask=mask, labels=torch.tensor([train[i].label for i in idx]))
        out.loss.backward()
        if b < 2:
            digest.update(out.logits.detach().numpy().tobytes())
            for p in model.parameters():
                digest.update(p.grad.numpy().tobytes())
        opt.step()
        opt.zero_grad()

    step(0)
    start = time.perf_counter()
    for b in range(1, STEPS + 1):
        step(b)
    print(f"{(time.perf_counter() - start) / STEPS:.3f} {digest.hexdigest()[:12]}", flush=True)


def run(threads: int, together: int) -> list[tuple[float, str]]:
    procs = [subprocess.Popen([sys.executable, __file__, "--child", str(threads)], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True) for _ in range(together)]
    out = []
    for p in procs:
        s, h = p.communicate()[0].split()
        out.append((float(s), h))
    return out


def main() -> None:
    print("| torch threads | processes at once | s per step (each) | steps/s, all processes | numbers (hash) |")
    print("|---|---|---|---|---|")
    for threads, together in ((2, 1), (2, 2), (1, 1), (1, 2)):
        res = run(threads, together)
        rate = sum(1 / s for s, _ in res)
        print(f"| {threads} | {together} | {' · '.join(f'{s:.2f}' for s, _ in res)} | {rate:.2f} | "
              f"{' · '.join(sorted({h for _, h in res}))} |")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        child(int(sys.argv[2]))
    else:
        main()
