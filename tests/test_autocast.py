"""train.autocast: the training steps under torch's CPU bf16 autocast, opted into per spec: checked in
the spec, part of the spec hash, and really applied by fit() (tiny models built from a config)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from slimbench.build.train import finetune
from slimbench.errors import SpecError
from slimbench.zoo import TrainRecipe, Zoo, spec_from_dict


def _bert():
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=32, max_position_embeddings=16, num_labels=2)
    return BertForSequenceClassification(cfg)


def _train(autocast: str) -> tuple[list[torch.Tensor], list[float]]:
    rng = np.random.default_rng(0)
    seqs = [[2] + list(rng.integers(5, 50, size=int(rng.integers(3, 12)))) + [3] for _ in range(48)]
    labels = [int(s[1] % 2) for s in seqs]
    model = _bert()
    recipe = TrainRecipe(method="finetune", epochs=2, lr=1e-3, batch_size=16, warmup=0.0, autocast=autocast)
    result = finetune(model, seqs, labels, seqs[:8], labels[:8], recipe, desc="t")
    return [p.detach().clone() for p in model.parameters()], [h["train_loss"] for h in result.history]


def test_bf16_autocast_trains_and_changes_the_numbers_while_the_weights_stay_fp32():
    fp32, fp32_losses = _train("fp32")
    again, _ = _train("fp32")
    bf16, bf16_losses = _train("bf16")
    assert all(torch.equal(a, b) for a, b in zip(fp32, again, strict=True))  # fp32 is deterministic
    assert all(p.dtype == torch.float32 for p in bf16)  # autocast computes in bf16, stores fp32
    assert not all(torch.equal(a, b) for a, b in zip(fp32, bf16, strict=True))  # it was applied
    assert all(np.isfinite(bf16_losses)) and bf16_losses[-1] < bf16_losses[0] * 1.5
    assert abs(bf16_losses[0] - fp32_losses[0]) < 0.05  # the same training, to bf16's precision


def test_autocast_is_checked_and_in_the_spec_hash():
    with pytest.raises(SpecError, match="autocast must be one of"):
        spec_from_dict({"name": "x", "source": "standard", "train": {"method": "finetune", "autocast": "fp16"}})
    base = {"name": "standard", "base": "minilm", "train": {"method": "finetune"}}
    fp32 = Zoo([spec_from_dict(base)]).spec_hash("standard")
    bf16 = Zoo([spec_from_dict({**base, "train": {"method": "finetune", "autocast": "bf16"}})]).spec_hash("standard")
    assert fp32 != bf16
