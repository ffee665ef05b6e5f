"""Validation accuracy of built variants split by sentence length (issue 14): how much of a
student's gap to `standard` comes from the sentences its max_length truncates.

    python experiments/recipes/length_split.py standard ultra-light [/path/to/artifact ...] [--limit 32]

A name is that variant of this checkout's zoo (`models/`), as built in the cache; a path is an
artifact directory (e.g. an experiment's build). Lengths are standard's token counts without truncation.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    import torch
    from tokenizers import Tokenizer

    from slimbench.build.context import default_context
    from slimbench.data import load_dataset
    from slimbench.formats.torch_io import load_hf
    from slimbench.runtimes.runners import Encoder, read_manifest

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("artifacts", nargs="+")
    p.add_argument("--limit", type=int, default=32, help="split at this many tokens (default 32)")
    a = p.parse_args()
    torch.set_num_threads(2)

    ctx = default_context()

    def resolve(x: str) -> Path:
        if Path(x).is_dir():
            return Path(x)
        if not ctx.is_built(x):
            raise SystemExit(f"{x} is not built; run `slimbench build --variants {x}` first")
        return ctx.artifact_dir(x)

    dirs = [resolve(x) for x in a.artifacts]
    val = load_dataset().val
    texts, labels = [e.text for e in val], np.array([e.label for e in val])
    tok = Tokenizer.from_file(str(resolve("standard") / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    lengths = np.array([len(e.ids) for e in tok.encode_batch(texts)])
    long = lengths > a.limit
    print(f"validation: {len(texts)} sentences, {long.sum()} ({long.mean():.1%}) longer than {a.limit} tokens\n")
    print(f"| artifact | max length | all | <= {a.limit} tokens | > {a.limit} tokens |")
    print("|---|---|---|---|---|")
    for d in dirs:
        m = read_manifest(d)
        model = load_hf(d).eval()
        enc = Encoder(d / "tokenizer.json", int(m["max_length"]), m.get("truncation", "right"))
        with torch.inference_mode():
            pred = np.concatenate([model(input_ids=torch.from_numpy(i), attention_mask=torch.from_numpy(k)).logits
                                   .argmax(-1).numpy() for i, k in (enc(texts[j:j + 64]) for j in range(0, len(texts), 64))])
        ok = pred == labels
        print(f"| {d.name} | {m['max_length']} | {ok.mean():.4f} | {ok[~long].mean():.4f} | {ok[long].mean():.4f} |")


if __name__ == "__main__":
    main()
