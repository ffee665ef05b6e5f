"""train.stop_after_epochs: run the first k epochs of an `epochs`-long schedule. The weights after
epoch k must be exactly those the full run has after its epoch k (same batches, same dropout, same
learning rates), so a recipe whose best validation epoch is k keeps the same model in less time."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from slimbench.build.train import fit
from slimbench.errors import SpecError
from slimbench.spec.schema import TrainRecipe, spec_from_dict
from slimbench.spec.zoo import Zoo


def _run(epochs: int, stop_after: int, val_by_epoch: list[float]) -> tuple[list[torch.Tensor], object, list[float]]:
    """A small MLP fitted with `fit()`; `evaluate` returns `val_by_epoch` in turn. Returns the kept
    weights, the result and the learning rate of every step."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    x = torch.tensor(rng.normal(size=(64, 8)), dtype=torch.float32)
    y = torch.tensor(rng.integers(0, 2, size=64))
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Dropout(0.2), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    lrs: list[float] = []

    def loss_on(idx: np.ndarray) -> torch.Tensor:
        return torch.nn.functional.cross_entropy(model(x[idx]), y[idx])

    scores = iter(val_by_epoch)
    recipe = TrainRecipe(method="finetune", epochs=epochs, stop_after_epochs=stop_after, lr=1e-2, batch_size=16,
                         warmup=0.1)
    original_step = torch.optim.AdamW.step

    def step(self: torch.optim.AdamW, *a: object, **k: object) -> object:
        lrs.append(float(self.param_groups[0]["lr"]))
        return original_step(self, *a, **k)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(torch.optim.AdamW, "step", step)
        result = fit(model, [1] * 64, loss_on, lambda: next(scores), recipe, desc="t")
    return [p.detach().clone() for p in model.parameters()], result, lrs


def test_stopping_after_the_best_epoch_keeps_exactly_the_full_runs_model():
    full, full_result, full_lrs = _run(3, 0, [0.5, 0.9, 0.6])  # the best epoch is 2: its weights are kept
    short, short_result, short_lrs = _run(3, 2, [0.5, 0.9])
    assert full_result.best_epoch == short_result.best_epoch == 2  # type: ignore[attr-defined]
    assert all(torch.equal(a, b) for a, b in zip(full, short, strict=True))
    assert len(short_result.history) == 2 and short_result.steps == 2 * 4  # type: ignore[attr-defined]
    assert short_lrs == full_lrs[: len(short_lrs)]  # the same schedule, cut short
    assert short_lrs[-1] > 1e-3  # not decayed to zero: the schedule spans 3 epochs


def test_a_two_epoch_schedule_is_not_the_same_thing():
    short, _, short_lrs = _run(3, 2, [0.5, 0.9])
    two, _, two_lrs = _run(2, 0, [0.5, 0.9])
    assert two_lrs[-1] < short_lrs[-1]  # a 2-epoch schedule decays to ~0 by its last step
    assert not all(torch.equal(a, b) for a, b in zip(short, two, strict=True))


@pytest.mark.parametrize("train, message", [
    ({"epochs": 3, "stop_after_epochs": 4}, r"stop_after_epochs must be in 1..epochs \(the schedule's length, 3\), got 4"),
    ({"epochs": 3, "stop_after_epochs": 0}, "stop_after_epochs must be in 1..epochs"),
    ({"stop_after_epochs": 3}, r"schedule's length, 2\), got 3"),  # epochs' default is 2
])
def test_stop_after_epochs_is_checked(train, message):
    with pytest.raises(SpecError, match=message):
        spec_from_dict({"name": "s", "base": "minilm", "train": {"method": "finetune", **train}})


@pytest.mark.slow
def test_stop_after_epochs_is_in_the_hash_and_the_record(tiny_base, context_for, tmp_path):
    from slimbench.build.builder import build
    from slimbench.runtimes.runners import read_manifest

    def spec(**train: int) -> dict[str, object]:
        return {"name": "standard", "base": "minilm", "max_length": 16,
                "train": {"method": "finetune", "epochs": 2, "autocast": "fp32", **train}}

    zoo = Zoo([spec_from_dict(spec(stop_after_epochs=1))])
    ctx = context_for(zoo, tmp_path)
    ctx.base_resolver = lambda _: tiny_base
    assert ctx.spec_hash("standard") != context_for(Zoo([spec_from_dict(spec())]), tmp_path).spec_hash("standard")
    build(ctx, ["standard"])
    training = read_manifest(ctx.artifact_dir("standard"))["training"]
    assert training["schedule_epochs"] == 2 and [h["epoch"] for h in training["history"]] == [1]
