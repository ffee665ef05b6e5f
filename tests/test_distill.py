"""Intermediate-layer (TinyBERT-style) distillation: the layer mapping, the masked hidden-state loss,
and a student pulled towards its teacher's states by it, on tiny models built from a config."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from slimbench.build.train import LayerTeacher, distill, hidden_state_loss, layer_pairs
from slimbench.spec.schema import TrainRecipe


def _bert(layers: int, hidden: int, seed: int):
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=50, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2,
                     intermediate_size=2 * hidden, max_position_embeddings=16, num_labels=2)
    return BertForSequenceClassification(cfg).eval()


@pytest.mark.parametrize("student, teacher, pairs", [
    (3, 6, [(1, 2), (2, 4), (3, 6)]),
    (2, 6, [(1, 3), (2, 6)]),
    (6, 6, [(k, k) for k in range(1, 7)]),
])
def test_layer_pairs_map_each_student_layer_to_the_same_relative_depth(student, teacher, pairs):
    assert layer_pairs(student, teacher) == pairs


def test_hidden_state_loss_is_zero_for_identical_states_and_ignores_padding():
    torch.manual_seed(0)
    states = [torch.randn(2, 5, 8) for _ in range(3)]
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    pairs, ident = [(1, 1), (2, 2)], [nn.Identity(), nn.Identity()]
    assert hidden_state_loss(states, states, pairs, ident, mask).item() == 0.0
    other = [s.clone() for s in states]
    other[1][0, 3:] += 100.0  # padded positions only
    assert hidden_state_loss(states, other, pairs, ident, mask).item() == 0.0
    other[2][1, 0] += 1.0  # one real token, one unit each of 8 ... all 8 units shifted by 1
    # per pair: sum of squares 8 over 8 real tokens x 8 units; mean over the two pairs
    assert hidden_state_loss(states, other, pairs, ident, mask).item() == pytest.approx(8 / 64 / 2)


def _sequences(n: int) -> list[list[int]]:
    rng = np.random.default_rng(0)
    return [[int(i) for i in rng.integers(5, 50, size=int(rng.integers(3, 12)))] for _ in range(n)]


# trained on the hidden-state loss alone: logit weight 0 (alpha 1, every row unlabelled, teacher logits 0)
LAYERS_ONLY = TrainRecipe(method="distill", epochs=8, lr=1e-2, batch_size=16, warmup=0.0, alpha=1.0,
                          temperature=1.0, layer_weight=100.0)


def test_layer_distillation_pulls_the_student_towards_the_teachers_states():
    """A 1-layer student of a 2-layer teacher of the same width: its layer-1 states end much closer to
    the teacher's layer-2 states than at the start."""
    from slimbench.build.train import collate

    teacher, student = _bert(2, 16, 0), _bert(1, 16, 1)
    seqs = _sequences(64)
    ids, mask = collate(seqs, np.arange(64))

    def gap() -> float:
        with torch.no_grad():
            s = student(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
            t = teacher(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
            return hidden_state_loss(s, t, [(1, 2)], [nn.Identity()], mask).item()

    before = gap()
    distill(student, seqs, np.zeros((64, 2), np.float32), [-1] * 64, seqs[:8], [0] * 8, LAYERS_ONLY,
            layer_teacher=LayerTeacher(teacher))
    assert gap() < 0.5 * before


def test_layer_distillation_learns_a_projection_where_widths_differ():
    teacher, student = _bert(2, 16, 0), _bert(1, 8, 1)
    seqs = _sequences(64)
    result = distill(student, seqs, np.zeros((64, 2), np.float32), [-1] * 64, seqs[:8], [0] * 8, LAYERS_ONLY,
                     layer_teacher=LayerTeacher(teacher))
    losses = [h["train_loss"] for h in result.history]
    assert losses[-1] < 0.5 * losses[0]


def test_vocabulary_table_maps_student_ids_to_the_teachers():
    from slimbench.build.recipes.distill import vocabulary_table

    teacher = {"[PAD]": 0, "a": 1, "b": 2, "c": 3}
    assert vocabulary_table(teacher, teacher) is None
    assert vocabulary_table({"[PAD]": 0, "c": 1, "a": 2}, teacher).tolist() == [0, 3, 1]


@pytest.mark.parametrize("train, message", [
    ({"method": "distill", "layer_weight": -1.0}, "loss weight"),
    ({"method": "finetune", "layer_weight": 1.0}, "needs method"),
    ({"method": "distill", "hidden_weight": -0.5}, "loss weight"),
])
def test_distillation_loss_weights_are_checked_in_the_spec(train, message):
    from slimbench.errors import SlimbenchError
    from slimbench.spec.schema import spec_from_dict

    with pytest.raises(SlimbenchError, match=message):
        spec_from_dict({"name": "x", "source": "standard", "train": train})
