"""Bring your own model and data: a local checkpoint (with or without a head), a CSV dataset,
a random-init variant from an architecture alone."""

from __future__ import annotations

import json
import shutil

import pytest

from slimbench.build.base_models import check_checkpoint, classification_head, tokenizer_json
from slimbench.build.builder import BuildContext, build
from slimbench.data import table_dataset
from slimbench.errors import BuildError
from slimbench.runtimes.runners import Encoder, head_tail, open_runner, read_manifest
from slimbench.spec.schema import spec_from_dict
from slimbench.spec.zoo import Zoo
from slimbench.testing import make_tiny_checkpoint, synthetic_examples, tiny_vocab


def _csv(path, n=300, seed=0):
    rows = ["text,label"] + [f"{e.text},{'pos' if e.label else 'neg'}" for e in synthetic_examples(n, seed)]
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.mark.slow
def test_user_classifier_is_used_as_is_and_derived_without_training(tmp_path):
    base = make_tiny_checkpoint(tmp_path / "mine", with_head=True)
    assert classification_head(base, 2) and not classification_head(base, 3)
    splits = table_dataset(_csv(tmp_path / "d.csv"))
    zoo = Zoo(spec_from_dict(d) for d in [
        {"name": "standard", "base": "minilm", "train": {"method": "finetune", "epochs": 1}, "max_length": 16},
        {"name": "onnx", "source": "standard", "steps": ["export-onnx"], "runtime": "onnxruntime", "max_length": 16},
    ])
    logs: list[str] = []
    ctx = BuildContext(zoo=zoo, root=tmp_path / "art", splits_loader=lambda: splits, base_override=str(base),
                       log=logs.append, threads=1)
    built = build(ctx, ["onnx"])
    m = read_manifest(built["standard"])
    assert m["used_as_is"] is True and m["training"] is None and m["base"] == str(base)
    assert any("used as it is, no training" in line for line in logs)
    assert read_manifest(built["onnx"])["checks"]["export_max_abs_logit_diff"] < 1e-4
    # another checkpoint -> another spec hash -> another artifact
    other = make_tiny_checkpoint(tmp_path / "other", with_head=True, seed=1)
    ctx2 = BuildContext(zoo=zoo, root=tmp_path / "art", splits_loader=lambda: splits, base_override=str(other))
    assert ctx2.artifact_dir("standard") != ctx.artifact_dir("standard")


def test_random_init_variant_is_untrained(tmp_path, monkeypatch):
    vocab_dir = make_tiny_checkpoint(tmp_path / "ref")  # stands in for the MiniLM asset's tokenizer/config
    splits = table_dataset(_csv(tmp_path / "d.csv"))
    zoo = Zoo([spec_from_dict({"name": "sketch", "base": "random", "max_length": 16,
                               "architecture": {"num_hidden_layers": 1, "hidden_size": 24,
                                                "num_attention_heads": 2, "intermediate_size": 48}})])
    ctx = BuildContext(zoo=zoo, root=tmp_path / "art", splits_loader=lambda: splits,
                       base_resolver=lambda b: vocab_dir, log=lambda s: None, threads=1)
    m = read_manifest(build(ctx, ["sketch"])["sketch"])
    assert m["untrained"] is True and m["parameters"] > 0
    assert json.loads((ctx.artifact_dir("sketch") / "config.json").read_text())["hidden_size"] == 24


def test_checkpoint_problems_are_named(tmp_path):
    base = make_tiny_checkpoint(tmp_path / "ck")
    broken = tmp_path / "pickled"
    shutil.copytree(base, broken)
    (broken / "model.safetensors").rename(broken / "pytorch_model.bin")
    with pytest.raises(BuildError, match=r"has no model.safetensors \(found \['pytorch_model.bin'\]: pickled weights are never loaded"):
        check_checkpoint(broken)
    (broken / "config.json").unlink()
    with pytest.raises(BuildError, match="has no config.json"):
        check_checkpoint(broken)
    from slimbench.build.base_models import resolve

    with pytest.raises(BuildError, match="is not a directory; give a checkpoint directory, 'minilm'"):
        resolve(str(tmp_path / "nope"))


def test_tokenizer_from_vocab_txt(tmp_path):
    ck = make_tiny_checkpoint(tmp_path / "ck")
    (ck / "tokenizer.json").unlink()
    (ck / "vocab.txt").write_text("\n".join(tiny_vocab()) + "\n")
    from tokenizers import Tokenizer

    tok = Tokenizer.from_str(tokenizer_json(ck))
    assert tok.encode("Good movie").tokens == ["[CLS]", "good", "movie", "[SEP]"]


def test_head_tail_truncation_keeps_the_ending(tiny_base):
    assert head_tail(list(range(40)), 10) == [0, 1, 2, 33, 34, 35, 36, 37, 38, 39]
    assert head_tail([1, 2, 3], 10) == [1, 2, 3]
    enc = Encoder(tiny_base / "tokenizer.json", max_length=8, truncation="head-tail")
    ids, mask = enc(["the movie was very very very dull and it was awful", "good"])
    sep = enc.tokenizer.token_to_id("[SEP]")
    assert ids.shape == (2, 8) and ids[0, -1] == sep and mask[1].sum() == 3
    awful = enc.tokenizer.token_to_id("awful")
    assert awful in ids[0]  # the verdict at the end survives; right truncation would drop it
    right = Encoder(tiny_base / "tokenizer.json", max_length=8)
    assert awful not in right(["the movie was very very very dull and it was awful"])[0]


def test_multiclass_dataset_end_to_end(tmp_path, tiny_base):
    rows = ["text,label"]
    for k, e in enumerate(synthetic_examples(300, 1)):
        label = "mixed" if k % 3 == 0 else ("pos" if e.label else "neg")
        rows.append(f"{e.text},{label}")
    (tmp_path / "d.csv").write_text("\n".join(rows) + "\n")
    splits = table_dataset(tmp_path / "d.csv")
    assert splits.labels == ("mixed", "neg", "pos")
    zoo = Zoo([spec_from_dict({"name": "standard", "base": str(tiny_base), "max_length": 16,
                               "train": {"method": "finetune", "epochs": 2, "lr": 3e-3, "batch_size": 16}})])
    ctx = BuildContext(zoo=zoo, root=tmp_path / "art", splits_loader=lambda: splits, log=lambda s: None, threads=1)
    path = build(ctx, ["standard"])["standard"]
    m = read_manifest(path)
    assert m["dataset"]["labels"] == ["mixed", "neg", "pos"] and 0 <= m["test_macro_f1"] <= 1
    with open_runner(path) as r:
        assert r.predict_proba(["good plot"]).shape == (1, 3)
