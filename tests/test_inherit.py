"""A narrower student inheriting its teacher's layers (`init.width`): exact when nothing is cut,
the most important heads and neurons kept, clear errors where the shapes cannot map; on tiny
models built from a config."""

from __future__ import annotations

import re

import pytest
import torch

from slimbench.build import inherit
from slimbench.errors import BuildError

SEQS = [[1, 5, 7, 9, 2], [1, 3, 4, 2], [1, 8, 8, 8, 8, 8, 2], [1, 11, 12, 13, 2]]


def _bert(layers: int, hidden: int, heads: int, inter: int, seed: int = 0):
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=50, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                     intermediate_size=inter, max_position_embeddings=16, num_labels=2)
    return BertForSequenceClassification(cfg).eval()


def _logits(model, ids):
    with torch.no_grad():
        return model(input_ids=torch.tensor(ids)).logits


def test_inheriting_every_channel_head_and_neuron_reproduces_the_teacher():
    teacher, student = _bert(3, 32, 4, 64, seed=0), _bert(3, 32, 4, 64, seed=1)
    imp = inherit.importance(teacher, SEQS, batch_size=3)
    u = inherit.basis("select", 32, 32, imp=imp)
    assert torch.equal(u, torch.eye(32))
    inherit.inherit(teacher, student, [0, 1, 2], u, imp, torch.arange(50))
    ids = [[1, 5, 7, 9, 2], [1, 3, 4, 8, 2]]
    assert torch.allclose(_logits(student, ids), _logits(teacher, ids), atol=1e-5)


def test_a_narrower_student_keeps_the_most_important_heads_grouped_and_stays_finite():
    """Teacher 8 heads of 4 dims -> student 2 heads of 8 dims: 4 teacher heads, two per student head."""
    teacher, student = _bert(3, 32, 8, 64), _bert(2, 16, 2, 24, seed=1)
    imp = inherit.importance(teacher, SEQS)
    assert [h.shape for h in imp.heads] == [torch.Size([8])] * 3 and imp.neurons[0].shape == torch.Size([64])
    assert bool((imp.heads[0] > 0).all())
    word = teacher.bert.embeddings.word_embeddings.weight.detach()
    for how in inherit.BASES:
        u = inherit.basis(how, 32, 16, word=word, imp=imp)
        assert torch.allclose(u.T @ u, torch.eye(16), atol=1e-5)  # orthonormal columns
        kept = inherit.inherit(teacher, student, [1, 2], u, imp, torch.arange(50))
        assert kept[0]["heads"] == inherit.kept_heads(imp.heads[1], 4) and kept[0]["neurons"] == 24
        assert torch.isfinite(_logits(student, [[1, 5, 7, 2]])).all()
    # the kept heads are the top 4 by importance, in the teacher's order
    scores = torch.tensor([0.1, 5.0, 0.2, 4.0, 3.0, 0.3, 2.0, 0.0])
    assert inherit.kept_heads(scores, 4) == [1, 3, 4, 6]


def test_select_keeps_the_most_active_channels():
    imp = inherit.Importance(heads=[], neurons=[], channels=torch.tensor([0.5, 3.0, 0.1, 2.0]), states=torch.zeros(1, 4))
    u = inherit.basis("select", 4, 2, imp=imp)
    assert torch.equal(u, torch.eye(4)[:, [1, 3]])


def test_a_student_head_narrower_than_the_teachers_fails_clearly():
    """Teacher heads of 8 dims cannot be grouped into student heads of 4."""
    teacher, student = _bert(1, 32, 4, 64), _bert(1, 16, 4, 24, seed=1)
    imp = inherit.importance(teacher, SEQS)
    u = inherit.basis("select", 32, 16, imp=imp)
    with pytest.raises(BuildError, match="a student head of 4 dims cannot be made of teacher heads of 8"):
        inherit.inherit_layer(teacher.bert.encoder.layer[0], student.bert.encoder.layer[0], u,
                              imp.heads[0], imp.neurons[0], 4, 4)


def test_a_wider_student_or_an_unknown_basis_is_a_clear_error():
    imp = inherit.Importance(heads=[], neurons=[], channels=torch.ones(4), states=torch.zeros(1, 4))
    with pytest.raises(BuildError, match="wider than its teacher"):
        inherit.basis("select", 4, 8, imp=imp)
    with pytest.raises(BuildError, match="init.width must be one of pca, states, select"):
        inherit.basis("svd", 4, 2, imp=imp)


def _narrow_spec(**init):
    from slimbench.spec.schema import spec_from_dict

    return spec_from_dict({"name": "narrow", "source": "standard", "max_length": 16,
                           "architecture": {"num_hidden_layers": 1, "hidden_size": 16, "num_attention_heads": 1,
                                            "intermediate_size": 32},
                           "init": init, "train": {"method": "distill", "epochs": 1}, "transforms": {"trim_vocab": True}})


def test_the_recipe_inherits_through_the_spec_and_asks_for_a_width_basis(tiny_ctx, tiny_built):
    from slimbench.build.recipes.distill import init_student

    texts = [e.text for e in tiny_ctx.splits.train]
    with pytest.raises(BuildError, match=r"narrow: init.layers into a narrower student needs init.width \(pca, states, select\)"):
        init_student(tiny_ctx, _narrow_spec(layers=[1]), tiny_built["standard"], texts)
    for layers in ([2], [-1], [0, 1]):
        message = re.escape(f"init.layers {layers} must name 1 of the teacher's layers 0-1")
        with pytest.raises(BuildError, match=message):
            init_student(tiny_ctx, _narrow_spec(layers=layers, width="states"), tiny_built["standard"], texts)
    student, tok = init_student(tiny_ctx, _narrow_spec(layers=[1], width="states"), tiny_built["standard"], texts)
    assert student.config.hidden_size == 16 and len(tok["model"]["vocab"]) == student.config.vocab_size
    with torch.no_grad():
        assert torch.isfinite(student(input_ids=torch.tensor([[1, 4, 5, 2]])).logits).all()


@pytest.mark.parametrize("init, message", [
    ({"layers": [1], "width": "svd"}, "width \\(one of pca, states, select\\) .* got 'svd'"),
    ({"width": "states"}, "got 'states' without init.layers"),
])
def test_a_width_basis_is_checked_with_the_spec(init, message):
    from slimbench.errors import SpecError

    with pytest.raises(SpecError, match=message):
        _narrow_spec(**init)
