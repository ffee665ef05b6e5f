"""Screen of the students' starting points (issue 14): validation accuracy of the *untrained*
student. ultra-light: inheriting two of standard's layers through a width basis (`init.width`),
against the current PCA-embeddings-only start; light: every choice of 3 of standard's 6 layers.
Cheap (forward passes only); it ranks starts, the builds judge.

    python reports/evidence/recipes/inherit_screen.py --variant ultra-light|light [--out X.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    import torch

    from slimbench.build.context import default_context
    from slimbench.build.recipes.distill import init_student
    from slimbench.data import load_dataset
    from slimbench.runtime import Encoder
    from slimbench.zoo import load_spec

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", type=Path, default=Path(__file__).resolve().parents[3] / "models")
    p.add_argument("--variant", choices=("ultra-light", "light"), default="ultra-light")
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args()
    torch.set_num_threads(2)
    spec = load_spec(a.models / ("20-ultra-light.toml" if a.variant == "ultra-light" else "10-light.toml"))
    ctx = default_context()
    if not ctx.is_built("standard"):
        raise SystemExit("standard is not built; run `slimbench build --variants standard` first")
    teacher = ctx.artifact_dir("standard")
    splits = load_dataset()
    train = [e.text for e in splits.train]
    val, labels = [e.text for e in splits.val], np.array([e.label for e in splits.val])

    class Ctx:
        log = staticmethod(print)

    if a.variant == "light":
        starts = [(f"layers {list(c)}", {**spec.init, "layers": list(c)}) for c in itertools.combinations(range(6), 3)]
    else:
        starts = [("current: PCA embeddings, random layers", {"embeddings": "pca"})]
        for width in ("pca", "states", "select"):
            for layers in ([0, 1], [0, 5], [1, 5], [2, 5], [3, 5], [4, 5]):
                starts.append((f"width {width}, layers {layers}", {"embeddings": "pca", "layers": layers, "width": width}))
    rows, tmp = [], Path(tempfile.mkdtemp())
    for label, init in starts:
        t = time.perf_counter()
        student, tok_json = init_student(Ctx(), dataclasses.replace(spec, init=init), teacher, train)
        tok = tmp / "tokenizer.json"
        tok.write_text(json.dumps(tok_json))
        enc = Encoder(tok, spec.max_length)
        student.eval()
        with torch.inference_mode():
            pred = np.concatenate([student(input_ids=torch.from_numpy(i), attention_mask=torch.from_numpy(m)).logits
                                   .argmax(-1).numpy() for i, m in (enc(val[k:k + 64]) for k in range(0, len(val), 64))])
        rows.append({"start": label, "init": init, "val_accuracy_untrained": float((pred == labels).mean()),
                     "seconds": round(time.perf_counter() - t, 1)})
        print(f"{label:45s} {rows[-1]['val_accuracy_untrained']:.4f}", flush=True)
    if a.out:
        a.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
