"""Tiny models and data built from a config (seed 000 style), for fast tests and calibration.

Nothing here downloads anything: a BERT of a few thousand parameters with its own WordPiece
tokenizer, and a synthetic sentiment task it can learn in seconds.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from slimbench.data import synthetic_examples as synthetic_examples  # re-exported for the tests
from slimbench.data import synthetic_splits as synthetic_splits
from slimbench.synthetic import tiny_vocab, write_tiny_tokenizer


def make_tiny_checkpoint(directory: Path, layers: int = 2, hidden: int = 32, heads: int = 2,
                         intermediate: int = 64, num_labels: int = 2, seed: int = 0,
                         with_head: bool = False) -> Path:
    """A randomly initialised BERT encoder (or, with_head, a BertForSequenceClassification) +
    tokenizer.json, saved like a hub model."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertModel

    directory.mkdir(parents=True, exist_ok=True)
    vocab = tiny_vocab()
    config = BertConfig(vocab_size=len(vocab), hidden_size=hidden, num_hidden_layers=layers,
                        num_attention_heads=heads, intermediate_size=intermediate,
                        max_position_embeddings=64, num_labels=num_labels)
    torch.manual_seed(seed)
    model = BertForSequenceClassification(config) if with_head else BertModel(config)
    model.save_pretrained(directory, safe_serialization=True)
    write_tiny_tokenizer(directory / "tokenizer.json", vocab)
    return directory


def tiny_zoo_specs(base: Path) -> list[dict[str, Any]]:
    """A zoo shaped like the default one, over a tiny base checkpoint; cheap to build."""
    recipe = {"epochs": 3, "lr": 3e-3, "batch_size": 16, "warmup": 0.1, "seed": 0}
    return [
        {"name": "standard", "base": str(base), "train": {"method": "finetune", **recipe}, "max_length": 16},
        {"name": "light", "source": "standard", "architecture": {"num_hidden_layers": 1},
         "init": {"layers": [1]}, "train": {"method": "distill", **recipe}, "max_length": 16},
        {"name": "ultra-light", "source": "standard",
         "architecture": {"num_hidden_layers": 1, "hidden_size": 16, "num_attention_heads": 2,
                          "intermediate_size": 32},
         "init": {"embeddings": "pca"}, "train": {"method": "distill", **recipe}, "transforms": {"trim_vocab": True},
         "max_length": 16},
        {"name": "quantized", "source": "standard", "steps": ["torch-dynamic-int8"], "precision": "int8",
         "max_length": 16},
        {"name": "onnx", "source": "standard", "steps": ["export-onnx"], "runtime": "onnxruntime",
         "max_length": 16},
        {"name": "onnx-int8", "source": "standard", "steps": ["export-onnx", "onnx-dynamic-int8"],
         "runtime": "onnxruntime", "precision": "int8", "max_length": 16},
    ]


def write_specs(directory: Path, specs: list[dict[str, Any]]) -> Path:
    """Write specs as TOML files (numbered to keep order); returns the directory."""
    directory.mkdir(parents=True, exist_ok=True)
    for k, spec in enumerate(specs):
        (directory / f"{k:02d}-{spec['name']}.toml").write_text(_to_toml(spec))
    return directory


def _to_toml(spec: dict[str, Any]) -> str:
    def val(v: Any) -> str:
        return json.dumps(v) if not isinstance(v, bool) else ("true" if v else "false")

    lines = [f"{k} = {val(v)}" for k, v in spec.items() if not isinstance(v, dict)]
    for k, v in spec.items():
        if isinstance(v, dict):
            lines.append(f"\n[{k}]")
            lines += [f"{kk} = {val(vv)}" for kk, vv in v.items()]
    return "\n".join(lines) + "\n"


def write_example(directory: Path, n: int = 400) -> tuple[Path, Path]:
    """A worked example for the README: a reviews CSV and "your own" fine-tuned classifier -- a tiny
    BERT trained on that CSV for a few seconds and saved with its head, like a hub checkpoint."""
    from tokenizers import Tokenizer
    from transformers import BertForSequenceClassification

    from slimbench.build.train import encode_all, finetune
    from slimbench.zoo import TrainRecipe

    directory.mkdir(parents=True, exist_ok=True)
    examples = synthetic_examples(n, seed=7)
    csv_path = directory / "reviews.csv"
    lines = ["review,sentiment"] + [f"{e.text},{'positive' if e.label else 'negative'}" for e in examples]
    csv_path.write_text("\n".join(lines) + "\n")
    model_dir = make_tiny_checkpoint(directory / "my-model", with_head=True)
    model = BertForSequenceClassification.from_pretrained(model_dir)
    model.config.id2label, model.config.label2id = {0: "negative", 1: "positive"}, {"negative": 0, "positive": 1}
    seqs = encode_all(Tokenizer.from_file(str(model_dir / "tokenizer.json")), [e.text for e in examples], 16)
    labels = [e.label for e in examples]
    finetune(model, seqs, labels, seqs[:50], labels[:50], TrainRecipe(epochs=3, lr=3e-3, batch_size=16), "example")
    model.save_pretrained(model_dir, safe_serialization=True)
    return model_dir, csv_path


if __name__ == "__main__":
    import sys

    target = Path(sys.argv[1] if len(sys.argv) > 1 else "example")
    model_dir, data = write_example(target)
    print(f"wrote {data} ({len(data.read_text().splitlines()) - 1} rows) and {model_dir} (a tiny BERT "
          "sentiment classifier trained on it: your own fine-tuned checkpoint)")
