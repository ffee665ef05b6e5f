"""Tiny models and data built from a config (seed 000 style), for fast tests and calibration.

Nothing here downloads anything: a BERT of a few thousand parameters with its own WordPiece
tokenizer, and a synthetic sentiment task it can learn in seconds.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from slimbench.data import synthetic_examples as synthetic_examples  # re-exported for the tests
from slimbench.data import synthetic_splits as synthetic_splits
from slimbench.synthetic import (
    FILLER,
    LETTERS,
    NEGATIVE,
    POSITIVE,
    synthetic_rows,
    tiny_vocab,
    write_tiny_tokenizer,
)

FAMILIES = ("bert", "distilbert", "roberta", "electra", "albert")  # model_type of each tiny family


def make_tiny_checkpoint(directory: Path, layers: int = 2, hidden: int = 32, heads: int = 2,
                         intermediate: int = 64, num_labels: int = 2, seed: int = 0,
                         with_head: bool = False, family: str = "bert") -> Path:
    """A randomly initialised encoder of `family` (a model_type of FAMILIES; or, with_head, its
    *ForSequenceClassification) + tokenizer.json, saved like a hub model: BERT, DistilBERT and ELECTRA
    with the tiny WordPiece vocabulary, RoBERTa with a byte-level BPE (`<s>`, `<pad>` = 1, ...) and
    ALBERT with a Unigram (SentencePiece-style) vocabulary, each trained on the synthetic texts.
    ELECTRA and ALBERT get an embedding narrower than the hidden size (their projection)."""
    import torch
    from transformers import AutoModel, AutoModelForSequenceClassification

    directory.mkdir(parents=True, exist_ok=True)
    vocab = write_family_tokenizer(directory / "tokenizer.json", family)
    config = _tiny_config(family, len(vocab), layers, hidden, heads, intermediate, num_labels)
    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_config(config) if with_head else AutoModel.from_config(config)
    model.save_pretrained(directory, safe_serialization=True)
    return directory


def _tiny_config(family: str, vocab_size: int, layers: int, hidden: int, heads: int, intermediate: int,
                 num_labels: int) -> Any:
    from transformers import AlbertConfig, BertConfig, DistilBertConfig, ElectraConfig, RobertaConfig

    common = {"vocab_size": vocab_size, "max_position_embeddings": 64, "num_labels": num_labels}
    bert_like = {"hidden_size": hidden, "num_hidden_layers": layers, "num_attention_heads": heads,
                 "intermediate_size": intermediate, **common}
    if family == "bert":
        return BertConfig(**bert_like)
    if family == "distilbert":
        return DistilBertConfig(dim=hidden, n_layers=layers, n_heads=heads, hidden_dim=intermediate, **common)
    if family == "roberta":  # positions start after padding_idx (1), as in roberta-base's 514 = 512 + 2
        return RobertaConfig(**{**bert_like, "max_position_embeddings": 66}, type_vocab_size=1, pad_token_id=1,
                             bos_token_id=0, eos_token_id=2)
    if family == "electra":
        return ElectraConfig(**bert_like, embedding_size=hidden // 2)
    if family == "albert":
        return AlbertConfig(**bert_like, embedding_size=hidden // 2, pad_token_id=0, bos_token_id=2, eos_token_id=3)
    raise ValueError(f"unknown family {family!r}; known: {', '.join(FAMILIES)}")


def write_family_tokenizer(path: Path, family: str) -> list[str]:
    """The tokenizer.json a `family` checkpoint ships with, over the synthetic task's words; returns
    its vocabulary in id order."""
    if family in ("bert", "distilbert", "electra"):
        vocab = tiny_vocab()
        write_tiny_tokenizer(path, vocab)
        return vocab
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    texts = [text for text, _ in synthetic_rows(2000, seed=0)] + [" ".join(LETTERS)]
    if family == "roberta":
        specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
        tok = Tokenizer(models.BPE(unk_token=None))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=420, special_tokens=specials, show_progress=False,
                                                           initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
        tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0), add_prefix_space=False)
    elif family == "albert":
        specials = ["<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]"]
        tok = Tokenizer(models.Unigram())
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
        tok.decoder = decoders.Metaspace()
        tok.train_from_iterator(texts, trainers.UnigramTrainer(vocab_size=200, special_tokens=specials, unk_token="<unk>",
                                                               show_progress=False, initial_alphabet=list(LETTERS)))
        tok.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
            special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))])
    else:
        raise ValueError(f"unknown family {family!r}; known: {', '.join(FAMILIES)}")
    tok.save(str(path))
    ids = tok.get_vocab()
    return sorted(ids, key=lambda token: ids[token])


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


def default_zoo_dicts() -> list[dict[str, Any]]:
    """The default zoo's specs as the TOML tables they are written as, in file order."""
    import tomllib

    from slimbench.spec.zoo import default_models_dir

    return [tomllib.loads(p.read_text(encoding="utf-8")) for p in sorted(default_models_dir().glob("*.toml"))]


def tiny_default_zoo_specs(base: Path, max_length: int = 16) -> list[dict[str, Any]]:
    """Every variant of the default zoo, recipe for recipe (steps, [prune], [init], [quantize],
    [calibrate], transforms as shipped), over a tiny base checkpoint and cut to test size: one epoch,
    short texts, a student of hidden 16, few calibration and importance texts, fp32 training steps,
    no transfer data or augmented copies. `light` keeps its `init.layers = [0, 2, 4]`, which a
    shallow base has to scale to its own depth."""
    out = []
    for spec in default_zoo_dicts():
        spec = {k: (dict(v) if isinstance(v, dict) else v) for k, v in spec.items()}
        spec.pop("description", None)
        if spec.get("base") == "minilm":
            spec["base"] = str(base)
        spec["max_length"] = max_length
        if "train" in spec:
            spec["train"].update(epochs=1, batch_size=16, lr=3e-3, autocast="fp32")
            for key in ("stop_after_epochs", "augment_copies", "transfer_data"):
                spec["train"].pop(key, None)
        if "architecture" in spec and "hidden_size" in spec["architecture"]:
            spec["architecture"].update(hidden_size=16, intermediate_size=32, max_position_embeddings=max_length)
        if "prune" in spec and "importance_texts" in spec["prune"]:
            spec["prune"]["importance_texts"] = 64
        if "calibrate" in spec:
            spec["calibrate"]["texts"] = 64
        out.append(spec)
    return out


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


def vader_dir() -> Path:
    """The pinned VADER asset's folder, from this process's cache or the user's default one (another
    test may have pointed $SLIMBENCH_CACHE elsewhere); skips the calling test when neither has it."""
    import os

    import pytest

    from slimbench.cache.assets import VADER
    from slimbench.cache.paths import assets_dir

    xdg = os.environ.get("XDG_CACHE_HOME")
    default = (Path(xdg) if xdg else Path.home() / ".cache") / "slimbench" / "assets"
    for root in (assets_dir(), default):
        if all((root / VADER.key / name).is_file() for name in VADER.members):
            return root / VADER.key
    pytest.skip("the pinned VADER asset is not in the cache (`slimbench build` fetches it)")


MULTILABEL_TOPICS = ("music", "cast", "script")  # filler words that become the `topic` group's cues


def synthetic_multilabel_rows(n: int, seed: int = 0) -> list[tuple[str, dict[str, str]]]:
    """A multi-label task the tiny models learn in seconds: filler words, plus a sentiment word
    (group `sentiment`: positive, negative or none when there is no such word) and a topic word
    (group `topic`: music, cast, script or none)."""
    rng = np.random.default_rng(seed)
    filler = [w for w in FILLER if w not in MULTILABEL_TOPICS]
    out: list[tuple[str, dict[str, str]]] = []
    seen: set[str] = set()
    while len(out) < n:
        mood = ("negative", "positive", "none")[int(rng.integers(3))]
        topic = (*MULTILABEL_TOPICS, "none")[int(rng.integers(len(MULTILABEL_TOPICS) + 1))]
        words = list(rng.choice(filler, size=int(rng.integers(3, 8))))
        cues = [str(rng.choice(POSITIVE if mood == "positive" else NEGATIVE))] if mood != "none" else []
        cues += [topic] if topic != "none" else []
        for cue in cues:
            words.insert(int(rng.integers(len(words) + 1)), cue)
        text = " ".join(words)
        if text not in seen:
            seen.add(text)
            out.append((text, {"sentiment": mood, "topic": topic}))
    return out


def write_multilabel_files(directory: Path, n: int = 600, seed: int = 0) -> dict[str, Path]:
    """The synthetic multi-label task as the three ways a user gives one: a CSV with a column per
    group, JSON Lines with a "labels" object, and a label config (seed 001's QueryLabels.json)."""
    directory.mkdir(parents=True, exist_ok=True)
    rows = synthetic_multilabel_rows(n, seed)
    csv_path, jsonl_path, config_path = directory / "queries.csv", directory / "queries.jsonl", directory / "labels.json"
    csv_path.write_text("\n".join(["text,sentiment,topic"] + [f"{t},{g['sentiment']},{g['topic']}" for t, g in rows])
                        + "\n")
    jsonl_path.write_text("".join(json.dumps({"text": t, "labels": g}) + "\n" for t, g in rows))
    config_path.write_text(json.dumps({"sentiment": ["negative", "none", "positive"],
                                       "topic": [*MULTILABEL_TOPICS, "none"]}))
    return {"csv": csv_path, "jsonl": jsonl_path, "config": config_path}


def write_example(directory: Path, n: int = 400) -> tuple[Path, Path]:
    """A worked example for the README: a reviews CSV and "your own" fine-tuned classifier -- a tiny
    BERT trained on that CSV for a few seconds and saved with its head, like a hub checkpoint."""
    from tokenizers import Tokenizer
    from transformers import BertForSequenceClassification

    from slimbench.build.train import encode_all, finetune
    from slimbench.spec.schema import TrainRecipe

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

