"""The teacher pass through onnxruntime: the same logits as torch in input order, a torch fallback that
says why, and a spec hash that moved with it (tiny models built from a config)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from slimbench.build import teacher_pass
from slimbench.build.train import predict_logits_and_cls
from slimbench.errors import BuildError
from slimbench.zoo import spec_from_dict


def _teacher():
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=60, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=32, num_labels=2)
    return BertForSequenceClassification(cfg).eval()


@pytest.fixture(scope="module")
def seqs():
    rng = np.random.default_rng(0)
    return [list(rng.integers(1, 60, size=int(n))) for n in rng.integers(2, 17, size=150)]


def test_onnxruntime_pass_gives_torchs_logits_in_input_order(seqs):
    model = _teacher()
    want = predict_logits_and_cls(model, seqs, batch_size=16, with_cls=False)[0]
    got, runtime = teacher_pass.teacher_logits(model, seqs, max_length=16, batch_size=16, log=lambda _: None)
    assert runtime == "onnxruntime"
    assert got.shape == want.shape == (150, 2)
    assert np.abs(got - want).max() < 1e-4
    assert (got.argmax(-1) == want.argmax(-1)).all()


def test_a_teacher_that_does_not_fuse_runs_in_torch_and_says_why(seqs, monkeypatch):
    import slimbench.build.fuse as fuse

    def refuse(*_args, **_kwargs):
        raise BuildError("onnx-fuse: the transformer optimizer fused 0 of 2 attention blocks")

    monkeypatch.setattr(fuse, "fuse_transformer", refuse)
    model, said = _teacher(), []
    got, runtime = teacher_pass.teacher_logits(model, seqs, max_length=16, batch_size=16, log=said.append)
    assert runtime == "torch"
    assert len(said) == 1 and "could not be exported and fused" in said[0] and "fused 0 of 2" in said[0]
    np.testing.assert_array_equal(got, predict_logits_and_cls(model, seqs, batch_size=16, with_cls=False)[0])


def test_a_graph_that_disagrees_with_torch_is_not_used(seqs, monkeypatch):
    monkeypatch.setattr(teacher_pass, "GRAPH_TOLERANCE", -1.0)  # no graph can agree this well
    said: list[str] = []
    _, runtime = teacher_pass.teacher_logits(_teacher(), seqs, max_length=16, batch_size=16, log=said.append)
    assert runtime == "torch" and "disagrees with torch" in said[0]


def test_spec_hash_names_the_teacher_pass_of_a_distilled_variant_only():
    distilled = spec_from_dict({"name": "s", "source": "t", "train": {"method": "distill"}})
    with_cls = spec_from_dict({"name": "s", "source": "t", "train": {"method": "distill", "hidden_weight": 1.0}})
    finetuned = spec_from_dict({"name": "t", "base": "minilm", "train": {"method": "finetune"}})
    assert distilled.canonical()["train"]["teacher_pass"] == "onnxruntime"
    assert "teacher_pass" not in with_cls.canonical()["train"]  # [CLS] states: torch, as before
    assert "teacher_pass" not in finetuned.canonical()["train"]
    assert "teacher_pass" not in distilled.train  # the spec keeps its table as written
