"""Issue 15's lead, measured on whole builds: standard fine-tuned in fp32 and then with its training
steps under torch's CPU bf16 autocast (evaluation stays fp32), same recipe, seed and data, one after
the other in one window; validation accuracy per epoch, training seconds, test accuracy. Not adopted
by this script: the artifacts go to temporary directories, never to the cache.

    python reports/evidence/first-report/bf16_standard.py     (~10-13 min; the assets cached)
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any


def build_standard(bf16: bool) -> dict[str, Any]:
    import torch

    import slimbench.build.train as train
    from slimbench.build.context import default_context
    from slimbench.build.pipeline import build

    fp32_fit = train.fit

    def bf16_fit(model, lengths, loss_on, evaluate, recipe, desc, extra_modules=()):  # type: ignore[no-untyped-def]
        def loss_bf16(idx):  # type: ignore[no-untyped-def]
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return loss_on(idx).float()
        return fp32_fit(model, lengths, loss_bf16, evaluate, recipe, desc, extra_modules)

    if bf16:
        train.fit = bf16_fit  # finetune() calls fit by its module-level name
    try:
        with tempfile.TemporaryDirectory() as tmp:
            out = build(default_context(root=Path(tmp)), ["standard"])["standard"]
            return json.loads((out / "manifest.json").read_text())
    finally:
        train.fit = fp32_fit


def main() -> None:
    rows = [("fp32 (as built today)", build_standard(False)), ("bf16 autocast training", build_standard(True))]
    print("\n| standard | val accuracy per epoch | best | training s | test accuracy |\n|---|---|---|---|---|")
    for name, m in rows:
        epochs = " / ".join(f"{h['val_accuracy']:.4f}" for h in m["training"]["history"])
        print(f"| {name} | {epochs} | {m['val_accuracy']:.4f} | {m['build_steps_s'].get('train', 0):.0f} | "
              f"{m['test_accuracy']:.4f} |")


if __name__ == "__main__":
    main()
