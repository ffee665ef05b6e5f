"""Seed-to-seed spread of a recipe, and the uniform weight average ("model soup") of its seeds
(issue 14): how much of a variant's accuracy is decided by the seed, and whether averaging the
weights of builds that differ only in seed does better than any one of them.

    python experiments/recipes/seed_soup.py ARTIFACT [ARTIFACT ...]

Each ARTIFACT is a directory of a torch fp32 build of the same spec with a different `train.seed`
(e.g. `slimbench build --models <copy of models/ with seed = 1> --variants light`). The builds
must share their architecture and tokenizer; light's do by construction (every weight starts from
standard's, the seed only changes dropout and data order). Prints validation and test accuracy of
each build, of the soup of all of them, and of each leave-one-out soup.
"""

from __future__ import annotations

import argparse
import itertools
import os
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    import torch

    from slimbench.data import load_dataset
    from slimbench.formats.torch_io import load_hf
    from slimbench.runtimes.runners import Encoder, read_manifest

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("artifacts", nargs="+", type=Path)
    a = p.parse_args()
    torch.set_num_threads(2)
    splits = load_dataset()
    sets = {"val": splits.val, "test": splits.test}
    manifests = [read_manifest(d) for d in a.artifacts]
    if len({(m["max_length"], m.get("truncation", "right")) for m in manifests}) != 1:
        raise SystemExit("the artifacts differ in max_length or truncation: not seeds of one recipe")
    first = a.artifacts[0]
    enc = Encoder(first / "tokenizer.json", int(manifests[0]["max_length"]), manifests[0].get("truncation", "right"))
    models = [load_hf(d).eval() for d in a.artifacts]
    states = [m.state_dict() for m in models]

    def accuracy(model: Any) -> dict[str, float]:
        out = {}
        with torch.inference_mode():
            for name, rows in sets.items():
                texts, labels = [e.text for e in rows], np.array([e.label for e in rows])
                pred = np.concatenate([model(input_ids=torch.from_numpy(i), attention_mask=torch.from_numpy(k)).logits
                                       .argmax(-1).numpy() for i, k in (enc(texts[j:j + 64]) for j in range(0, len(texts), 64))])
                out[name] = float((pred == labels).mean())
        return out

    def soup(members: list[int]) -> Any:
        model = load_hf(first).eval()
        avg = {}
        for key, value in states[0].items():
            if value.is_floating_point():
                avg[key] = sum(states[i][key] for i in members) / len(members)
            else:
                avg[key] = value
        model.load_state_dict(avg)
        return model

    print("| model | seed | val accuracy | test accuracy |")
    print("|---|---|---|---|")
    for d, m, model in zip(a.artifacts, manifests, models, strict=True):
        acc = accuracy(model)
        print(f"| {d.name} | {m['spec']['train'].get('seed', 0)} | {acc['val']:.4f} | {acc['test']:.4f} |")
    n = len(models)
    groups = [list(range(n))] + ([list(c) for c in itertools.combinations(range(n), n - 1)] if n > 2 else [])
    for members in groups:
        acc = accuracy(soup(members))
        seeds = "+".join(str(manifests[i]["spec"]["train"].get("seed", 0)) for i in members)
        print(f"| soup of seeds {seeds} | – | {acc['val']:.4f} | {acc['test']:.4f} |")


if __name__ == "__main__":
    main()
