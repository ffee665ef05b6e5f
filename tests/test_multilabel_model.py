"""Multi-label models: a tiny config-built BERT fine-tuned on a tiny multi-label CSV, through the
default recipes (distillation, torch INT8, ONNX export, ONNX INT8 dynamic and static, the NumPy
runtime); every runtime agrees with torch per group; the predictor answers in seed 001's shape."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from slimbench.build.builder import BuildContext, build
from slimbench.build.train import classification_loss, distillation_loss
from slimbench.data import Splits, load_dataset
from slimbench.labels import LabelGroup, LabelGroups
from slimbench.runtimes.predictor import Predictor
from slimbench.runtimes.runners import open_runner, read_manifest
from slimbench.spec.zoo import Zoo
from slimbench.testing import tiny_default_zoo_specs, write_multilabel_files, write_specs


@pytest.fixture(scope="module")
def ml_splits(tmp_path_factory: pytest.TempPathFactory) -> Splits:
    files = write_multilabel_files(tmp_path_factory.mktemp("ml-data"), n=1200)
    return load_dataset(str(files["csv"]), label_column="sentiment,topic")


@pytest.fixture(scope="module")
def ml_ctx(tiny_base: Path, ml_splits: Splits, tmp_path_factory: pytest.TempPathFactory) -> BuildContext:
    specs = tiny_default_zoo_specs(tiny_base)
    for spec in specs:
        if "train" in spec:
            spec["train"]["epochs"] = 15
    zoo = Zoo.load(write_specs(tmp_path_factory.mktemp("ml-models"), specs))
    return BuildContext(zoo=zoo, root=tmp_path_factory.mktemp("ml-artifacts"), splits_loader=lambda: ml_splits,
                        threads=2, log=lambda s: None)


@pytest.fixture(scope="module")
def ml_built(ml_ctx: BuildContext) -> dict[str, Path]:
    return build(ml_ctx, list(ml_ctx.zoo.names))


@pytest.mark.slow  # a tiny zoo built from scratch (about 20 s)
def test_every_default_recipe_builds_a_multilabel_variant(ml_built, ml_splits):
    assert ml_splits.groups is not None
    assert set(ml_built) == {"standard", "light", "ultra-light", "quantized", "onnx", "onnx-int8", "onnx-static-int8",
                             "ultra-light-onnx-int8", "standard-numpy", "ultra-light-numpy", "pruned-heads",
                             "sparse-50"}
    for name, path in ml_built.items():
        m = read_manifest(path)
        assert m["label_groups"] == ml_splits.groups.to_json(), name
        scores = m["test_label_scores"]
        assert m["test_accuracy"] == scores["exact_match"], name
        assert set(scores["groups"]) == {"sentiment", "topic"}
        # chance is 1/3 x 1/4 of the texts fully right; every variant learnt the task (the tiny models learn
        # the topic fully and the sentiment to about 0.7)
        assert m["test_accuracy"] > 0.6 and scores["micro_f1"] > 0.8, (name, scores)
    config = json.loads((ml_built["standard"] / "config.json").read_text())
    assert len(config["id2label"]) == 7 and config["label_groups"] == ml_splits.groups.to_json()
    assert json.loads((ml_built["ultra-light"] / "config.json").read_text())["label_groups"] == config["label_groups"]
    checks = read_manifest(ml_built["onnx-int8"])["checks"]
    assert set(checks["agreement_vs_source_per_group"]) == {"sentiment", "topic"}
    assert checks["agreement_vs_source"] <= min(checks["agreement_vs_source_per_group"].values())
    numpy_checks = read_manifest(ml_built["standard-numpy"])["checks"]  # the NumPy runtime vs torch, per group
    assert numpy_checks["agreement_vs_source_per_group"] == {"sentiment": 1.0, "topic": 1.0}


@pytest.mark.slow
@pytest.mark.parametrize("torch_variant, other, exact", [
    ("standard", "onnx", True), ("standard", "standard-numpy", True), ("ultra-light", "ultra-light-numpy", True),
    ("standard", "quantized", False), ("standard", "onnx-int8", False), ("standard", "onnx-static-int8", False),
])
def test_every_runtime_agrees_with_torch_per_group(ml_built, ml_splits, torch_variant, other, exact):
    texts = [e.text for e in ml_splits.test]
    with open_runner(ml_built[torch_variant]) as ref, open_runner(ml_built[other]) as run:
        assert ref.groups == run.groups == ml_splits.groups
        a, b = ref.predict_logits(texts), run.predict_logits(texts)
        pa, pb = np.array(ref.predict(texts)), np.array(run.predict(texts))
    assert a.shape == b.shape == (len(texts), 7) and pa.shape == (len(texts), 2)
    agree = (pa == pb).mean(axis=0)  # per group
    if exact:
        assert np.abs(a - b).max() < 1e-4 and agree.tolist() == [1.0, 1.0]
    else:  # INT8: close, not identical
        assert agree.min() >= 0.9, agree


@pytest.mark.slow  # a tiny zoo built from scratch (about 20 s)
def test_the_predictor_answers_in_seed_001s_shape(ml_built, ml_splits):
    groups = ml_splits.groups
    assert groups is not None
    texts = [e.text for e in ml_splits.test]
    for name in ("standard", "onnx", "ultra-light-numpy"):  # fp32: batching does not change a label
        with Predictor(ml_built[name]) as p:
            named = p.predict(texts)
            full = p.predict(texts, include_none=True)
            proba = p.predict_proba(texts[:5])
            assert p.predict(texts[0]) == named[:1] and p.predict([]) == []
        assert all(set(row) == {"sentiment", "topic"} for row in full)
        for short, whole in zip(named, full, strict=True):  # none values left out, the rest the same
            assert short == {g: v for g, v in whole.items() if v != "none"}
        assert any(len(row) < 2 for row in named)  # the task has none values: some groups are left out
        for row in proba:
            assert list(row) == ["sentiment", "topic"] and list(row["topic"]) == ["cast", "music", "none", "script"]
            assert all(sum(values.values()) == pytest.approx(1.0, abs=1e-5) for values in row.values())
        gold = [groups.named(e.groups, include_none=True) for e in ml_splits.test]
        exact = float(np.mean([f == g for f, g in zip(full, gold, strict=True)]))
        assert exact == pytest.approx(read_manifest(ml_built[name])["test_accuracy"]), name
    with Predictor(ml_built["standard"]) as p, pytest.raises(TypeError, match="predict takes texts"):
        p.predict([1, 2])


def test_the_predictor_reads_a_single_label_variant_as_one_group(tiny_built):
    with Predictor(tiny_built["onnx"]) as p:
        out = p.predict(["a great and superb film", "an awful dull boring plot"])
        proba = p.predict_proba("a great film")
    assert out == [{"label": "positive"}, {"label": "negative"}]
    assert list(proba[0]["label"]) == ["negative", "positive"] and proba[0]["label"]["positive"] > 0.5


@pytest.mark.slow  # a tiny zoo built from scratch (about 20 s)
def test_pruning_scores_and_recovers_on_every_group(ml_built, ml_splits):
    """Head pruning scores importance on the sum of the groups' losses and recovers by per-group
    distillation; magnitude pruning zeroes weights; both keep the label table and every group."""
    source = read_manifest(ml_built["standard"])
    for name in ("pruned-heads", "sparse-50"):
        m = read_manifest(ml_built[name])
        assert m["label_groups"] == ml_splits.groups.to_json(), name
        assert set(m["test_label_scores"]["groups"]) == {"sentiment", "topic"}
        assert m["test_accuracy"] > 0.5, (name, m["test_label_scores"])
        for stage in m["pruning"]["stages"]:  # the checks between stages are exact matches too
            assert 0.0 <= stage.get("val_accuracy", 0.0) <= 1.0
    assert read_manifest(ml_built["pruned-heads"])["parameters"] < source["parameters"]
    texts = [e.text for e in ml_splits.test][:50]
    with open_runner(ml_built["pruned-heads"]) as runner:
        pred = runner.predict(texts)
    assert all(isinstance(p, tuple) and len(p) == 2 for p in pred)


GROUPS = LabelGroups((LabelGroup("a", ("x", "y", "none"), "none"), LabelGroup("b", ("p", "q"), None, 0.5)))


def test_the_losses_are_per_group_over_the_slices():
    torch.manual_seed(0)
    logits, teacher = torch.randn(6, 5), torch.randn(6, 5)
    labels = torch.tensor([[0, 1], [2, 0], [1, 1], [0, 0], [2, 1], [1, 0]])
    ce = F.cross_entropy(logits[:, :3], labels[:, 0]) + 0.5 * F.cross_entropy(logits[:, 3:], labels[:, 1])
    assert torch.allclose(classification_loss(logits, labels, GROUPS), ce)
    single = torch.tensor([0, 1, 4, 3, 2, 1])
    assert torch.equal(classification_loss(logits, single), F.cross_entropy(logits, single))
    t = 2.0

    def kl(s, q):
        return F.kl_div(F.log_softmax(s / t, -1), F.log_softmax(q / t, -1), log_target=True,
                        reduction="batchmean") * t * t

    want_kl = kl(logits[:, :3], teacher[:, :3]) + 0.5 * kl(logits[:, 3:], teacher[:, 3:])
    unlabelled = labels.clone()
    unlabelled[3:] = -1  # transfer rows: KL only
    ce_labelled = (F.cross_entropy(logits[:3, :3], labels[:3, 0])
                   + 0.5 * F.cross_entropy(logits[:3, 3:], labels[:3, 1]))
    got = distillation_loss(logits, teacher, unlabelled, t, 0.7, GROUPS)
    assert torch.allclose(got, 0.7 * want_kl + 0.3 * ce_labelled)
    assert torch.allclose(distillation_loss(logits, teacher, torch.full((6, 2), -1), t, 0.7, GROUPS), want_kl)


@pytest.mark.slow  # a tiny zoo built from scratch (about 20 s)
def test_a_checkpoint_with_heads_for_these_groups_is_used_as_it_is(ml_built, ml_splits, tmp_path):
    """Your own multi-label classifier (its config.json holds the label table, as slimbench saves it)
    is `standard` as it is; one with other groups, or a single-label head, is fine-tuned."""
    import shutil

    mine = tmp_path / "my-multilabel-model"
    shutil.copytree(ml_built["standard"], mine)
    (mine / "manifest.json").unlink()  # a checkpoint folder, not a slimbench artifact
    specs = [s for s in tiny_default_zoo_specs(mine) if s["name"] == "standard"]
    zoo = Zoo.load(write_specs(tmp_path / "models", specs))
    ctx = BuildContext(zoo=zoo, root=tmp_path / "artifacts", splits_loader=lambda: ml_splits, threads=2,
                       log=lambda s: None)
    m = read_manifest(build(ctx, ["standard"])["standard"])
    assert m.get("used_as_is") is True and m["training"] is None
    assert m["test_accuracy"] == read_manifest(ml_built["standard"])["test_accuracy"]
    from slimbench.build.base_models import classification_head

    other = {"groups": [{"name": "sentiment", "values": ["negative", "positive"], "none": None}]}
    assert classification_head(mine, ml_splits.num_labels, ml_splits.groups.to_json())
    assert not classification_head(mine, ml_splits.num_labels, other)
    assert not classification_head(mine, ml_splits.num_labels)  # not a single-label classifier
