"""train.autocast: the training steps under torch's CPU bf16 autocast, opted into per spec: checked in
the spec, part of the spec hash, and really applied by fit() (tiny models built from a config)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from slimbench.build.train import finetune
from slimbench.errors import SpecError
from slimbench.spec.schema import TrainRecipe, spec_from_dict
from slimbench.spec.zoo import Zoo


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


# --- train.autocast = "auto": the dtype measured once per machine (slimbench.build.autocast) ---

def test_auto_takes_bf16_only_when_it_is_clearly_faster():
    from slimbench.build.autocast import MIN_SPEEDUP, choose

    assert choose(1.0, 0.5) == "bf16"  # 2x faster
    assert choose(0.8, 1.0) == "fp32"  # slower (the Intel host)
    assert choose(1.0, 1.0 / (MIN_SPEEDUP * 0.99)) == "fp32"  # faster, but not by enough
    assert choose(1.0, 1.0 / MIN_SPEEDUP) == "bf16"


def test_auto_is_measured_once_per_machine_and_kept(tmp_path, monkeypatch):
    from slimbench.build import autocast

    monkeypatch.delenv(autocast.ENV, raising=False)
    calls = []

    def measure():
        calls.append(1)
        return 0.8, 1.0  # bf16 slower

    first = autocast.resolve(tmp_path, measure)
    again = autocast.resolve(tmp_path, lambda: (1.0, 0.1))  # would say bf16 if it measured
    assert (first.dtype, first.source, len(calls)) == ("fp32", "measured", 1)
    assert (again.dtype, again.source) == ("fp32", "cached")  # the kept choice, not a new measurement
    assert again.speedup == pytest.approx(0.8) and "0.80x" in again.describe()
    kept = list((tmp_path / autocast.DECISIONS_DIR).glob("*.json"))
    assert len(kept) == 1 and kept[0].stem == autocast.machine_key()
    kept[0].write_text("{not json")  # a damaged record is measured again and replaced
    assert autocast.resolve(tmp_path, lambda: (1.0, 0.5)).dtype == "bf16"
    assert autocast.resolve(tmp_path, measure).source == "cached"


def test_auto_can_be_forced_by_the_environment(tmp_path, monkeypatch):
    from slimbench.build import autocast

    monkeypatch.setenv(autocast.ENV, "bf16")
    assert autocast.resolve(tmp_path, lambda: (0.8, 1.0)).dtype == "bf16"
    assert not (tmp_path / autocast.DECISIONS_DIR).exists()
    monkeypatch.setenv(autocast.ENV, "fp16")
    with pytest.raises(SpecError, match="SLIMBENCH_TRAIN_AUTOCAST='fp16'"):
        autocast.resolve(tmp_path)


def test_the_measurement_times_both_dtypes():
    from slimbench.build.autocast import time_steps

    fp32, bf16 = time_steps(steps=1, rounds=1, tokens=8, batch=2)
    assert fp32 > 0 and bf16 > 0


def _fake_run(fp32_s, bf16_s):
    calls = []

    def run(bf16):
        calls.append(bf16)
        return bf16_s if bf16 else fp32_s
    return run, calls


def test_a_first_round_far_from_the_threshold_decides_without_more_rounds():
    from slimbench.build.autocast import DECISIVE, MIN_SPEEDUP, alternate_rounds

    for bf16_s in (14.0, 1.0 / (MIN_SPEEDUP * DECISIVE * 1.01)):  # bf16 far slower / far faster than fp32's 1.0
        run, calls = _fake_run(1.0, bf16_s)
        assert alternate_rounds(run, 3) == (1.0, bf16_s)
        assert calls == [False, True]


def test_a_speed_up_near_the_threshold_gets_every_round_in_alternating_order():
    from slimbench.build.autocast import MIN_SPEEDUP, alternate_rounds

    for bf16_s in (1.25, 1.0 / MIN_SPEEDUP, 1.0 / 1.78):  # the Intel host's 0.8x, the threshold, the AMD host's 1.78x
        run, calls = _fake_run(1.0, bf16_s)
        assert alternate_rounds(run, 3) == (1.0, bf16_s)
        assert calls == [False, True, True, False, False, True]


def test_the_dtype_auto_chose_is_in_the_hash_of_the_variant_and_its_descendants(tmp_path, monkeypatch):
    from slimbench.build import autocast
    from slimbench.build.context import BuildContext
    from slimbench.testing import synthetic_splits

    zoo = Zoo([spec_from_dict({"name": "standard", "base": "random", "train": {"method": "finetune", "autocast": "auto"}}),
               spec_from_dict({"name": "child", "source": "standard", "steps": ["torch-dynamic-int8"],
                               "precision": "int8"}),
               spec_from_dict({"name": "other", "base": "random", "train": {"method": "finetune"}})])

    def hashes(dtype: str) -> dict[str, str]:
        monkeypatch.setenv(autocast.ENV, dtype)
        ctx = BuildContext(zoo=zoo, root=tmp_path, splits_loader=synthetic_splits, log=lambda _: None)
        return {n: ctx.spec_hash(n) for n in ("standard", "child", "other")}

    fp32, bf16 = hashes("fp32"), hashes("bf16")
    assert fp32["standard"] != bf16["standard"] and fp32["child"] != bf16["child"]
    assert fp32["other"] == bf16["other"]  # a recipe that names its dtype does not depend on the machine's


def test_fit_needs_auto_resolved():
    with pytest.raises(ValueError, match="autocast fp32 or bf16"):
        _train("auto")


@pytest.mark.slow
def test_a_build_with_auto_trains_in_the_chosen_dtype_and_says_why(tiny_base, context_for, tmp_path, monkeypatch):
    from slimbench.build import autocast
    from slimbench.build.builder import build
    from slimbench.runtimes.runners import read_manifest

    monkeypatch.delenv(autocast.ENV, raising=False)
    zoo = Zoo([spec_from_dict({"name": "standard", "base": "minilm", "max_length": 16,
                               "train": {"method": "finetune", "epochs": 1, "autocast": "auto"}})])
    ctx = context_for(zoo, tmp_path)
    ctx.base_resolver = lambda _: tiny_base
    logs: list[str] = []
    ctx.log = logs.append
    decisions = tmp_path / autocast.DECISIONS_DIR
    decisions.mkdir()
    # this machine's choice, as an earlier measurement would have kept it: bf16 1.5x as fast
    (decisions / f"{autocast.machine_key()}.json").write_text('{"fp32_step_s": 0.3, "bf16_step_s": 0.2}')
    build(ctx, ["standard"])
    training = read_manifest(ctx.artifact_dir("standard"))["training"]
    assert training["autocast"] == "bf16"
    assert training["autocast_choice"]["source"] == "cached"
    assert training["autocast_choice"]["fp32_step_s"] == 0.3
    said = [line for line in logs if line.startswith("training steps")]
    assert said == ['training steps ([train] autocast = "auto"): bf16: bf16 autocast step 1.50x as fast as fp32 '
                    'on this CPU (measured earlier on this machine; bf16 needs >= 1.2x)']


def test_the_kept_choice_does_not_depend_on_the_thread_count(monkeypatch):
    """A bench or compare process run with another OMP_NUM_THREADS must find the build's choice
    (else its spec hashes, and so its artifact directories, would differ)."""
    from slimbench.build import autocast

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    one = autocast.machine_key()
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert autocast.machine_key() == one


@pytest.mark.parametrize("kept", ['{"fp32_step_s": 0, "bf16_step_s": 0}', '{"fp32_step_s": 0.3, "bf16_step_s": -0.2}',
                                  '{"fp32_step_s": NaN, "bf16_step_s": 0.2}', '{"fp32_step_s": 0.3, "bf16_step_s": Infinity}',
                                  '{"fp32_step_s": "0.3", "bf16_step_s": true}', '[0.3, 0.2]', '{"fp32_step_s": 0.3}'])
def test_a_damaged_choice_is_measured_again_with_one_line_saying_so(kept, tmp_path, monkeypatch, capsys):
    """A zero, negative or NaN step time crashed `build` and `plan` with an internal AssertionError
    (issue 45): every damaged record is now measured again, replaced, and said so on one line."""
    from slimbench.build import autocast

    monkeypatch.delenv(autocast.ENV, raising=False)
    path = tmp_path / autocast.DECISIONS_DIR / f"{autocast.machine_key()}.json"
    path.parent.mkdir()
    path.write_text(kept)
    choice = autocast.resolve(tmp_path, lambda: (1.0, 0.5))
    assert (choice.dtype, choice.source) == ("bf16", "measured")
    assert "2.00x as fast" in choice.describe()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(path) in err[0] and "measuring again" in err[0], err
    assert autocast.resolve(tmp_path, lambda: (9.0, 9.0)).source == "cached"  # replaced by the new measurement


def test_a_choice_without_step_times_describes_itself_without_an_assertion():
    from slimbench.build.autocast import AutocastChoice

    assert "fp32" in AutocastChoice("fp32", "cached", 0.0, 0.0).describe()
