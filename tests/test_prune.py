"""Pruning library: physical head/FFN pruning equals masking, save/load round trips, importance scores,
magnitude pruning hits its targets exactly (also progressively), exact sparsity counts. Tiny models
built from a config; no download."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from transformers import BertConfig, BertForSequenceClassification

from slimbench.build import prune
from slimbench.errors import ArtifactError

HIDDEN, HEADS, LAYERS, INTER = 32, 4, 3, 37
D = HIDDEN // HEADS


def tiny_model(seed: int = 0) -> BertForSequenceClassification:
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=100, hidden_size=HIDDEN, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
                        intermediate_size=INTER, max_position_embeddings=64, num_labels=2)
    return BertForSequenceClassification(config).eval()


def make_batches(n: int = 3, seed: int = 0) -> list[dict[str, torch.Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        ids = torch.randint(5, 100, (4, 12), generator=gen)
        mask = torch.ones_like(ids)
        mask[0, 8:] = 0  # some padding
        out.append({"input_ids": ids, "attention_mask": mask, "labels": torch.randint(0, 2, (4,), generator=gen)})
    return out


def loss_fn(logits: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
    return F.cross_entropy(logits, batch["labels"], reduction="sum")


def logits(model: nn.Module, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def masked_heads_logits(model: nn.Module, keep: Mapping[int, Sequence[int]], batch: dict) -> torch.Tensor:
    """Reference: the unpruned model with the removed heads' context outputs zeroed by hooks."""
    handles = []
    for i, heads in keep.items():
        gate = torch.zeros(HEADS)
        gate[list(heads)] = 1.0

        def hook(module, args, output, gate=gate):
            b, t, _ = output[0].shape
            return ((output[0].view(b, t, HEADS, D) * gate.view(1, 1, HEADS, 1)).view(b, t, HIDDEN), *output[1:])
        handles.append(prune.encoder_layers(model)[i].attention.self.register_forward_hook(hook))
    try:
        return logits(model, batch)
    finally:
        for h in handles:
            h.remove()


def masked_ffn_logits(model: nn.Module, keep: Mapping[int, Sequence[int]], batch: dict) -> torch.Tensor:
    handles = []
    for i, neurons in keep.items():
        gate = torch.zeros(INTER)
        gate[list(neurons)] = 1.0
        handles.append(prune.encoder_layers(model)[i].intermediate.register_forward_hook(
            lambda module, args, output, gate=gate: output * gate))
    try:
        return logits(model, batch)
    finally:
        for h in handles:
            h.remove()


# --- structured pruning --------------------------------------------------------------------------

def test_prune_heads_equals_masking_them_and_removes_exactly_their_parameters():
    model, batch = tiny_model(), make_batches(1)[0]
    keep = {0: [1, 3], 1: [2], 2: [0, 1, 2, 3]}
    expected = masked_heads_logits(model, keep, batch)
    before = n_params(model)
    prune.prune_heads(model, keep)
    torch.testing.assert_close(logits(model, batch), expected, atol=1e-5, rtol=0)
    removed_heads = (HEADS - 2) + (HEADS - 1)
    # per head: q, k, v rows (d x hidden + d bias each) + d input columns of attention.output.dense
    assert before - n_params(model) == removed_heads * (3 * (D * HIDDEN + D) + HIDDEN * D)
    att = prune.encoder_layers(model)[0].attention.self
    assert (att.num_attention_heads, att.all_head_size, att.query.out_features) == (2, 2 * D, 2 * D)
    assert prune.structure_of(model)["heads"] == [2, 1, 4]
    prune.prune_heads(model, {2: [3]})  # pruning again indexes the current heads
    assert prune.structure_of(model)["heads"] == [2, 1, 1]


def test_prune_heads_rejects_an_empty_layer_and_unknown_heads():
    model = tiny_model()
    with pytest.raises(ValueError, match="at least one head"):
        prune.prune_heads(model, {0: []})
    with pytest.raises(ValueError, match="cannot keep \\[4\\]"):
        prune.prune_heads(model, {0: [0, 4]})
    assert prune.structure_of(model)["heads"] == [HEADS] * LAYERS


def test_prune_ffn_equals_zeroing_neurons_and_removes_exactly_their_parameters():
    model, batch = tiny_model(), make_batches(1)[0]
    keep = {0: list(range(0, INTER, 2)), 1: [], 2: [5, 36]}
    expected = masked_ffn_logits(model, keep, batch)
    before = n_params(model)
    prune.prune_ffn(model, keep)
    torch.testing.assert_close(logits(model, batch), expected, atol=1e-5, rtol=0)
    removed = sum(INTER - len(v) for v in keep.values())
    assert before - n_params(model) == removed * (HIDDEN + 1 + HIDDEN)  # row + bias of intermediate, output column
    assert prune.structure_of(model)["intermediate"] == [19, 0, 2]


def test_save_load_round_trip_is_exact_and_the_file_shrinks_by_the_removed_bytes(tmp_path):
    dense, batch = tiny_model(), make_batches(1)[0]
    prune.save_pruned(dense, tmp_path / "dense")
    model = copy.deepcopy(dense)
    prune.prune_heads(model, {0: [0], 2: [1, 2]})
    prune.prune_ffn(model, {1: list(range(10))})
    removed = n_params(dense) - n_params(model)
    prune.save_pruned(model, tmp_path / "pruned")
    assert json.loads((tmp_path / "pruned" / "structure.json").read_text())["heads"] == [1, 4, 2]

    loaded = prune.load_pruned(tmp_path / "pruned")
    assert torch.equal(logits(loaded, batch), logits(model, batch))
    assert prune.structure_of(loaded) == prune.structure_of(model) and not loaded.training
    sizes = [(tmp_path / d / "model.safetensors").stat().st_size for d in ("dense", "pruned")]
    shrink = sizes[0] - sizes[1]
    assert abs(shrink - 4 * removed) <= 64  # the header differs only in a few shape digits and padding


def test_load_pruned_names_the_bad_file(tmp_path):
    model = tiny_model()
    prune.prune_heads(model, {1: [0, 1]})
    directory = prune.save_pruned(model, tmp_path / "p")
    structure = directory / "structure.json"
    good = structure.read_text()
    structure.write_text(json.dumps({**json.loads(good), "heads": [4, 3, 4]}))  # fits config, not the weights
    with pytest.raises(ArtifactError, match=r"model\.safetensors: tensor .*layer\.1\..* has shape .*structure\.json"):
        prune.load_pruned(directory)
    structure.write_text(json.dumps({**json.loads(good), "heads": [4, 9, 4]}))
    with pytest.raises(ArtifactError, match=r"structure\.json does not fit .*config\.json: layer 1: 9 heads"):
        prune.load_pruned(directory)
    structure.write_text("{not json")
    with pytest.raises(ArtifactError, match=r"cannot read .*structure\.json"):
        prune.load_pruned(directory)
    structure.unlink()
    with pytest.raises(ArtifactError, match=r"structure\.json is missing.*save_pruned"):
        prune.load_pruned(directory)


def test_apply_structure_reshapes_a_fresh_model():
    model = tiny_model()
    structure = {"heads": [1, 2, 3], "intermediate": [0, 5, 37], "head_size": D}
    prune.apply_structure(model, structure)
    assert prune.structure_of(model) == {"format": prune.STRUCTURE_FORMAT, **structure}
    with pytest.raises(ValueError, match="2 / 3 layers, the model has 3"):
        prune.apply_structure(tiny_model(), {"heads": [1, 1], "intermediate": [1, 1, 1], "head_size": D})


# --- importance and selection --------------------------------------------------------------------

def test_head_importance_shape_normalisation_dead_head_and_model_untouched():
    model = tiny_model()
    layer = prune.encoder_layers(model)[1]
    with torch.no_grad():  # head 2 of layer 1 contributes nothing: its importance must be 0
        for lin in (layer.attention.self.value,):
            lin.weight[2 * D : 3 * D] = 0
            lin.bias[2 * D : 3 * D] = 0
        layer.attention.output.dense.weight[:, 2 * D : 3 * D] = 0
    model.train()
    state = {k: v.clone() for k, v in model.state_dict().items()}

    imp = prune.head_importance(model, make_batches(), loss_fn)
    assert imp.shape == (LAYERS, HEADS) and np.isfinite(imp).all() and (imp >= 0).all()
    np.testing.assert_allclose(np.linalg.norm(imp, axis=1), 1.0, rtol=1e-6)
    assert imp[1, 2] < 1e-9 and imp.min() == imp[1, 2]
    keep = prune.select_heads(imp, 0.25)
    assert 2 not in keep[1] and sum(len(v) for v in keep.values()) == LAYERS * HEADS - 3

    assert model.training and all(p.grad is None and p.requires_grad for p in model.parameters())
    assert not any(m._forward_hooks for m in model.modules())
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


def test_head_importance_of_a_pruned_model_pads_with_nan():
    model = tiny_model()
    prune.prune_heads(model, {0: [0, 1]})
    imp = prune.head_importance(model, make_batches(1), loss_fn)
    assert np.isnan(imp[0, 2:]).all() and np.isfinite(imp[0, :2]).all() and np.isfinite(imp[1:]).all()
    keep = prune.select_heads(imp, 0.5)
    assert sum(len(v) for v in keep.values()) == 10 - 5 and all(len(v) >= 1 for v in keep.values())


def test_ffn_importance_ranks_a_dead_neuron_last():
    model = tiny_model()
    with torch.no_grad():  # gelu(0) = 0: neuron 7 of layer 0 never fires
        prune.encoder_layers(model)[0].intermediate.dense.weight[7] = 0
        prune.encoder_layers(model)[0].intermediate.dense.bias[7] = 0
    imps = prune.ffn_importance(model, make_batches(), loss_fn)
    assert [v.shape for v in imps] == [(INTER,)] * LAYERS
    assert all(np.isfinite(v).all() and (v >= 0).all() for v in imps)
    assert imps[0][7] == 0.0
    keep = prune.select_neurons(imps, 0.1)
    assert 7 not in keep[0] and sum(len(v) for v in keep.values()) == LAYERS * INTER - round(0.1 * LAYERS * INTER)
    per_layer = prune.select_neurons(imps, 0.5, scope="layer")
    assert [len(v) for v in per_layer.values()] == [INTER - 18] * LAYERS  # round(18.5) == 18 (banker's)


def test_select_heads_ranks_globally_and_keeps_a_minimum_per_layer():
    imp = np.array([[0.1, 0.2, 0.3], [0.01, 0.02, 0.9]])
    assert prune.select_heads(imp, 0.5) == {0: [1, 2], 1: [2]}
    assert prune.select_heads(imp, 0.0) == {0: [0, 1, 2], 1: [0, 1, 2]}
    assert prune.select_heads(imp, 4 / 6) == {0: [2], 1: [2]}
    assert prune.select_heads(imp, 2 / 6, min_per_layer=2) == {0: [1, 2], 1: [1, 2]}
    with pytest.raises(ValueError, match="cannot remove 6 heads"):
        prune.select_heads(imp, 1.0)


# --- unstructured magnitude pruning --------------------------------------------------------------

def prunable_zeros(model: nn.Module) -> tuple[int, int]:
    stats = prune.sparsity_stats(model)["prunable"]
    return stats["zeros"], stats["total"]


def other_zeros(model: nn.Module) -> int:
    prunable = {f"{n}.weight" for n, _ in prune.prunable_weights(model)}
    return sum(int((p == 0).sum()) for n, p in prune._effective_parameters(model) if n not in prunable)


def test_prunable_weights_are_the_six_encoder_linears_per_layer():
    names = [n for n, _ in prune.prunable_weights(tiny_model())]
    assert len(names) == 6 * LAYERS
    assert names[:6] == [f"bert.encoder.layer.0.{p}" for p in prune.PRUNABLE]


@pytest.mark.parametrize("sparsity", [0.3, 0.5, 0.77])
def test_global_magnitude_pruning_hits_the_target_exactly(sparsity):
    model = tiny_model()
    untouched = other_zeros(model)
    reached = prune.magnitude_prune(model, sparsity, scope="global")
    zeros, total = prunable_zeros(model)
    assert zeros == round(sparsity * total) and reached == zeros / total
    assert other_zeros(model) == untouched  # embeddings, biases, pooler, classifier untouched
    # the kept weights are the largest in magnitude
    kept = torch.cat([m.weight[m.weight != 0].abs() for _, m in prune.prunable_weights(model)])
    dropped = torch.cat([m.weight_orig[m.weight_mask == 0].abs() for _, m in prune.prunable_weights(model)])
    assert dropped.max() <= kept.min()


def test_layer_magnitude_pruning_gives_each_matrix_the_target():
    model = tiny_model()
    prune.magnitude_prune(model, 0.6, scope="layer")
    for name, stats in prune.sparsity_stats(model)["tensors"].items():
        assert stats["zeros"] == round(0.6 * stats["total"]), name


@pytest.mark.parametrize("scope", ["global", "layer"])
@pytest.mark.slow
def test_progressive_pruning_keeps_old_zeros_survives_training_and_reaches_the_total(scope):
    model = tiny_model()
    prune.magnitude_prune(model, 0.3, scope=scope)
    old = {n: (m.weight == 0).clone() for n, m in prune.prunable_weights(model)}
    model.train()  # one recovery-training step
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    loss_fn(model(input_ids=make_batches(1)[0]["input_ids"]).logits, make_batches(1)[0]).backward()
    opt.step()  # no forward since: module.weight is now a stale pre-step copy

    prune.magnitude_prune(model, 0.6, scope=scope)
    zeros, total = prunable_zeros(model)
    if scope == "global":
        assert zeros == round(0.6 * total)
        # ranked by the weights after the training step, not by the stale pre-step copy
        targets = prune.prunable_weights(model)
        newly = torch.cat([m.weight_orig[(m.weight_mask == 0) & ~old[n]].abs() for n, m in targets])
        kept = torch.cat([m.weight_orig[m.weight_mask == 1].abs() for _, m in targets])
        assert newly.max() <= kept.min()
    else:
        assert all(s["zeros"] == round(0.6 * s["total"]) for s in prune.sparsity_stats(model)["tensors"].values())
    logits(model, make_batches(1)[0])  # the forward pre-hook applies the masks to the trained weights
    assert all(torch.equal(m.weight == 0, m.weight_mask == 0) for _, m in prune.prunable_weights(model))
    assert all(bool((m.weight[old[n]] == 0).all()) for n, m in prune.prunable_weights(model))
    with pytest.raises(ValueError, match="already"):
        prune.magnitude_prune(model, 0.5, scope=scope)


def test_make_permanent_leaves_plain_parameters_with_the_same_zeros_and_outputs():
    model, batch = tiny_model(), make_batches(1)[0]
    prune.magnitude_prune(model, 0.5)
    before, stats = logits(model, batch), prune.sparsity_stats(model)
    assert prune.make_permanent(model) == 6 * LAYERS
    assert not any(k.endswith(("_orig", "_mask")) for k in model.state_dict())
    assert all(type(m.weight) is nn.Parameter and not m._forward_pre_hooks for _, m in prune.prunable_weights(model))
    assert prune.sparsity_stats(model) == stats and torch.equal(logits(model, batch), before)
    # pruning a permanent model again counts its existing zeros towards the new target
    prune.magnitude_prune(model, 0.7)
    zeros, total = prunable_zeros(model)
    assert zeros == round(0.7 * total)
    with pytest.raises(ValueError, match="make_permanent"):
        prune.prune_heads(model, {0: [0]})


def test_sparsity_stats_are_exact_on_a_hand_made_model():
    model = tiny_model()
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(1.0)
        layers = prune.encoder_layers(model)
        layers[0].attention.self.query.weight.view(-1)[:10] = 0  # 10 of 32*32
        layers[1].output.dense.weight[0, :5] = 0  # 5 of 32*37
        layers[2].intermediate.dense.bias[:3] = 0  # a bias: counts only in "all"
        model.classifier.weight[0, :4] = 0  # outside the encoder: counts only in "all"
    stats = prune.sparsity_stats(model)
    q = stats["tensors"]["bert.encoder.layer.0.attention.self.query.weight"]
    assert q == {"zeros": 10, "total": 1024, "sparsity": 10 / 1024}
    assert stats["tensors"]["bert.encoder.layer.1.output.dense.weight"]["zeros"] == 5
    per_layer_total = 4 * HIDDEN * HIDDEN + 2 * HIDDEN * INTER
    assert [s["zeros"] for s in stats["layers"]] == [10, 5, 0]
    assert all(s["total"] == per_layer_total for s in stats["layers"])
    total = LAYERS * per_layer_total
    assert stats["prunable"] == {"zeros": 15, "total": total, "sparsity": 15 / total}
    assert stats["all"]["zeros"] == 15 + 3 + 4 and stats["all"]["total"] == n_params(model)
    json.dumps(stats)


def test_sparse_weights_compress_while_the_raw_file_keeps_its_size(tmp_path):
    dense = tiny_model()
    sparse = copy.deepcopy(dense)
    prune.magnitude_prune(sparse, 0.5)
    prune.make_permanent(sparse)
    a = prune.save_pruned(dense, tmp_path / "dense") / "model.safetensors"
    b = prune.save_pruned(sparse, tmp_path / "sparse") / "model.safetensors"
    assert a.stat().st_size == b.stat().st_size
    assert prune.compressed_size(b) < 0.8 * prune.compressed_size(a)
    assert prune.compressed_size(a) > 0.85 * a.stat().st_size  # random fp32 barely compresses


def test_cubic_schedule_is_monotone_and_ends_at_the_target():
    s = prune.sparsity_schedule(0.9, 10)
    assert len(s) == 10 and s[-1] == 0.9 and all(x < y for x, y in zip(s, s[1:], strict=False))
    assert s[0] == pytest.approx(0.9 * (1 - 0.9**3))
    assert s[4] - s[0] > s[-1] - s[-5]  # front-loaded
    assert prune.sparsity_schedule(0.5, 1) == [0.5]
    assert prune.sparsity_schedule(0.8, 4, initial=0.5)[-1] == 0.8
    with pytest.raises(ValueError):
        prune.sparsity_schedule(0.5, 0)
