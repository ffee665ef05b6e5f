"""The teacher pass through onnxruntime: the same logits as torch in input order, a torch fallback that
says why, and a spec hash that moved with it (tiny models built from a config)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from slimbench.build import teacher_pass
from slimbench.build.train import predict_logits_and_cls
from slimbench.errors import BuildError
from slimbench.spec.schema import spec_from_dict


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


@pytest.mark.slow
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


@pytest.mark.slow
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


# --- the teacher outputs kept on disk (.teacher-outputs/*.npz): validated on read ---------------------

def _outputs(rows: int = 5, with_cls: bool = False):
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(rows, 2)).astype(np.float32)
    return logits, (rng.normal(size=(rows, 8)).astype(np.float32) if with_cls else None)


def _compute(calls: list[int], rows: int = 5, with_cls: bool = False):
    def compute():
        calls.append(1)
        return _outputs(rows, with_cls)
    return compute


@pytest.mark.parametrize("with_cls", [False, True])
def test_teacher_outputs_are_computed_once_and_read_back(tmp_path, with_cls):
    cache, calls, said = tmp_path / ".teacher-outputs" / "t-k-logits.npz", [], []
    first = teacher_pass.cached_outputs(cache, 5, with_cls, _compute(calls, with_cls=with_cls), said.append)
    again = teacher_pass.cached_outputs(cache, 5, with_cls, _compute(calls, with_cls=with_cls), said.append)
    assert len(calls) == 1 and said == [] and cache.is_file()
    np.testing.assert_array_equal(first[0], again[0])
    assert (again[1] is None) == (not with_cls)
    assert [p.name for p in cache.parent.iterdir()] == [cache.name]  # no partial file left behind


def _truncated(path):
    path.write_bytes(path.read_bytes()[:40])


def _garbage(path):
    path.write_bytes(b"PK\x03\x04" + bytes(range(256)) * 4)


def _wrong_rows(path):
    np.savez(path, logits=np.zeros((4, 2), np.float32))


def _nan(path):
    np.savez(path, logits=np.full((5, 2), np.nan, np.float32))


def _no_logits(path):
    np.savez(path, other=np.zeros((5, 2), np.float32))


def _one_dimensional(path):
    np.savez(path, logits=np.zeros(5, np.float32))


def _pickled(path):
    np.savez(path, logits=np.array([{"a": 1}] * 5, dtype=object))


@pytest.mark.parametrize("damage", [_truncated, _garbage, _wrong_rows, _nan, _no_logits, _one_dimensional, _pickled])
def test_damaged_teacher_outputs_are_computed_again_with_one_line_naming_the_file(tmp_path, damage):
    """A damaged .npz broke every later distillation from that teacher with a BadZipFile that named
    no file, and --force did not recompute it (issue 45)."""
    cache, calls, said = tmp_path / "t-k-logits.npz", [], []
    teacher_pass.cached_outputs(cache, 5, False, _compute(calls), said.append)
    damage(cache)
    logits, _ = teacher_pass.cached_outputs(cache, 5, False, _compute(calls), said.append)
    assert len(calls) == 2 and logits.shape == (5, 2)
    assert len(said) == 1 and str(cache) in said[0] and "computing them again" in said[0], said
    teacher_pass.cached_outputs(cache, 5, False, _compute(calls), said.append)
    assert len(calls) == 2  # the recomputed file is good


def test_logits_kept_without_the_cls_states_a_pass_needs_are_computed_again(tmp_path):
    cache, calls, said = tmp_path / "t-k-cls.npz", [], []
    np.savez(cache, logits=_outputs()[0])
    _, cls = teacher_pass.cached_outputs(cache, 5, True, _compute(calls, with_cls=True), said.append)
    assert cls is not None and len(calls) == 1 and "cls" in said[0]


@pytest.mark.slow
def test_a_damaged_teacher_output_file_does_not_break_a_distillation(tiny_built, tiny_ctx, context_for, tmp_path):
    from slimbench.build.recipes.common import teacher_outputs

    ctx = context_for(tiny_ctx.zoo, tmp_path)
    said: list[str] = []
    ctx.log = said.append
    texts = ["a good film", "a dull, bad film", "fine"]
    want, _ = teacher_outputs(ctx, tiny_built["standard"], texts)
    (cache,) = (tmp_path / ".teacher-outputs").glob("*-logits.npz")
    cache.write_bytes(cache.read_bytes()[:40])
    got, _ = teacher_outputs(ctx, tiny_built["standard"], texts)
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert any(str(cache) in line and "computing them again" in line for line in said)


def test_a_failing_write_of_teacher_outputs_names_the_cache_file(tmp_path, monkeypatch):
    import errno
    import os

    cache = tmp_path / "t-k-logits.npz"

    def full(src, dst):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), src)

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(OSError) as err:
        teacher_pass.write_outputs(cache, *_outputs())
    assert err.value.filename == str(cache) and err.value.errno == errno.ENOSPC
    assert list(tmp_path.iterdir()) == []  # no partial file left behind
