"""Weight-only N-bit rows (onnx-int4, onnx-mixed, onnx-int4-qat) on a tiny model: the fake
quantization matches onnxruntime's, size estimates match the written graph, the mixed-precision
search picks the smallest plan within budget, sensitivity reads the validation split only, and each
row builds, checked against torch running the same quantized weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from slimbench.build.builder import BuildContext, build
from slimbench.build.nbits import estimate_bytes, unit_bytes, weight_units
from slimbench.build.qat import fake_quant_asymmetric, fake_quant_symmetric4
from slimbench.build.sensitivity import Budget, choose_plan
from slimbench.data import Splits
from slimbench.errors import SpecError
from slimbench.runtimes.runners import read_manifest
from slimbench.spec.schema import spec_from_dict
from slimbench.spec.zoo import QUANTIZATION_ZOO_DIR, Zoo
from slimbench.testing import synthetic_splits, tiny_zoo_specs, write_specs

ONNX = {"source": "standard", "runtime": "onnxruntime", "max_length": 16}
ROWS = [
    {"name": "onnx", **ONNX, "steps": ["export-onnx", "onnx-fuse"]},
    {"name": "onnx-int4", **ONNX, "steps": ["export-onnx", "onnx-fuse", "onnx-int4"], "precision": "int4"},
    {"name": "onnx-mixed", **ONNX, "steps": ["export-onnx", "onnx-fuse", "onnx-mixed"], "precision": "mixed",
     "nbits": {"min_agreement": 1.0}},
    {"name": "onnx-int4-qat", **ONNX, "steps": ["export-onnx", "onnx-fuse", "onnx-int4"], "precision": "int4",
     "train": {"method": "qat", "epochs": 2, "lr": 1e-3, "batch_size": 16}},
]


def _dequantized(bits: int, w: np.ndarray, block: int) -> np.ndarray:
    """onnxruntime's own block quantizer (its C++ kernel) on the MatMul weight w.T, unpacked."""
    from onnxruntime.quantization.matmul_nbits_quantizer import (
        DefaultWeightOnlyQuantConfig,
        DefaultWeightOnlyQuantizer,
    )

    n, k = w.shape
    packed, scales, zp = DefaultWeightOnlyQuantizer(DefaultWeightOnlyQuantConfig(block_size=block, bits=bits)) \
        .qbits_block_quant(np.ascontiguousarray(w.T))
    if bits == 4:
        codes = np.stack([packed & 0xF, packed >> 4], -1).reshape(n, -1, block)
        zp = np.stack([zp & 0xF, zp >> 4], -1).reshape(n, -1)[:, : scales.shape[1]]
    else:
        codes = packed.reshape(n, -1, block)
    return ((codes.astype(np.float32) - zp[..., None]) * scales[..., None]).reshape(n, -1)[:, :k]


@pytest.mark.parametrize("bits, k", [(4, 96), (4, 40), (8, 96)])
def test_fake_quantization_is_onnxruntimes_bit_for_bit(bits, k):
    w = (np.random.default_rng(bits + k).standard_normal((8, k)) * 0.05).astype(np.float32)
    w[0, :32] = np.abs(w[0, :32])  # a block of positive weights only: its range still includes 0
    w[1, :32] = 0.0  # an all-zero block
    ours = fake_quant_asymmetric(torch.from_numpy(w), bits, 32).numpy()
    np.testing.assert_array_equal(ours, _dequantized(bits, w, 32))


def test_embedding_fake_quantization_is_gather_block_quantized():
    from onnxruntime.quantization.matmul_nbits_quantizer import DefaultWeightOnlyQuantizer

    table = (np.random.default_rng(1).standard_normal((20, 256)) * 0.1).astype(np.float32)
    q, scales, _ = DefaultWeightOnlyQuantizer.quantize_ndarray(table, 1, 128, True)
    nibbles = np.stack([q & 0xF, q >> 4], -1).reshape(-1).astype(np.int8)  # packed two codes a byte
    codes = np.where(nibbles >= 8, nibbles - 16, nibbles).astype(np.float32)
    expected = (codes.reshape(20, 2, 128) * scales.reshape(20, 2, 1)).reshape(20, 256)
    np.testing.assert_allclose(fake_quant_symmetric4(torch.from_numpy(table)).numpy(), expected, rtol=0, atol=1e-7)


def test_unit_bytes():
    assert unit_bytes([384, 1536], None) == 4 * 384 * 1536
    # 12 blocks of 32 per output: 16 bytes of codes + 4 of scale each, 6 bytes of zero points per output
    assert unit_bytes([384, 1536], 4) == 1536 * (12 * 20 + 6)
    assert unit_bytes([40, 2], 8) == 2 * (2 * (32 + 4) + 2)  # K padded to 2 blocks


def _units(n: int) -> dict[str, dict]:
    return {f"u{i}": {"node": f"n{i}", "shape": [64, 64]} for i in range(n)}


def test_plan_promotes_the_fewest_most_sensitive_layers():
    units = _units(8)
    order = [f"u{i}" for i in range(8)]
    # accuracy recovers 1 point per promoted layer of the 5 most sensitive: 4 must move for 1 point
    def evaluate(plan):
        lost = sum(1 for u in order[:5] if plan[u] == 4)
        return {"accuracy": 0.9 - lost / 100, "loss": 0.3, "agreement": 1.0 - lost / 100}

    out = choose_plan(order, units, Budget(max_drop=1.0), {"accuracy": 0.9}, evaluate, log=lambda s: None)
    assert out["promoted"] == 4
    assert [out["plan"][u] for u in order] == ["int8"] * 4 + ["int4"] * 4
    assert all(t["estimated_bytes"] > 0 for t in out["tried"]) and len(out["tried"]) <= 2 + 3  # bisection
    assert out["estimated_bytes"] == estimate_bytes(units, {u: (8 if k < 4 else 4) for k, u in enumerate(order)})


def test_plan_moves_layers_to_fp32_when_int8_everywhere_misses_the_budget():
    units = _units(4)
    order = list(units)

    def evaluate(plan):
        lost = sum(1 for u in order[:2] if plan[u] is not None)  # the first two need fp32
        return {"accuracy": 0.9 - lost / 100, "loss": 0.3, "agreement": 1.0}

    out = choose_plan(order, units, Budget(max_drop=0.0), {"accuracy": 0.9}, evaluate, log=lambda s: None)
    assert [out["plan"][u] for u in order] == ["fp32", "fp32", "int8", "int8"]


def test_plan_top_k_needs_no_search():
    units = _units(5)
    out = choose_plan(list(units), units, Budget(top_k=2), {"accuracy": 0.9},
                      lambda plan: {"accuracy": 0.5, "loss": 1.0, "agreement": 0.5}, log=lambda s: None)
    assert list(out["plan"].values()) == ["int8", "int8", "int4", "int4", "int4"] and len(out["tried"]) == 1


class Guarded(tuple):
    """The test split, refusing to be read while `Guarded.armed`."""

    armed = False

    def _check(self):
        if Guarded.armed:
            raise AssertionError("the test split was read during the sensitivity analysis")

    def __iter__(self):
        self._check()
        return super().__iter__()

    def __getitem__(self, i):
        self._check()
        return super().__getitem__(i)

    def __len__(self):
        self._check()
        return super().__len__()


@pytest.fixture(scope="module")
def nbits_built(tiny_base: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from slimbench.build.recipes import int4

    plain = synthetic_splits()
    splits = Splits(plain.name, plain.labels, plain.train, plain.val, Guarded(plain.test))
    zoo = Zoo.load(write_specs(tmp_path_factory.mktemp("nbits-models"), tiny_zoo_specs(tiny_base)[:1] + ROWS))
    ctx = BuildContext(zoo=zoo, root=tmp_path_factory.mktemp("nbits"), splits_loader=lambda: splits, threads=2,
                       log=lambda s: None)
    original = int4._mixed_plan

    def guarded(*args, **kwargs):  # sensitivity and the plan search, with the test split armed
        Guarded.armed = True
        try:
            return original(*args, **kwargs)
        finally:
            Guarded.armed = False

    int4._mixed_plan = guarded
    try:
        return build(ctx, zoo.names)
    finally:
        int4._mixed_plan = original


def _ops(path: Path) -> set[str]:
    import onnx

    return {n.op_type for n in onnx.load(str(path / "model.onnx")).graph.node}


@pytest.mark.slow  # builds a tiny N-bit zoo (about a minute)
def test_int4_row_is_checked_against_torch_and_smaller(nbits_built):
    m = read_manifest(nbits_built["onnx-int4"])
    assert m["precision"] == "int4" and m["nbits"]["layers"] == {"fp32": 1, "int4": 13, "int8": 0}
    assert m["nbits"]["plan"]["classifier"] == "fp32" and m["nbits"]["embeddings"] == "int4"
    assert m["checks"]["nbits_max_abs_logit_diff_vs_torch_quantized"] <= m["checks"]["nbits_tolerance"]
    assert m["checks"]["export_max_abs_logit_diff"] <= 1e-3 and "agreement_vs_source" in m["checks"]
    assert {"MatMulNBits", "GatherBlockQuantized", "MultiHeadAttention"} <= _ops(nbits_built["onnx-int4"])
    assert m["files"]["model.onnx"] < 0.5 * read_manifest(nbits_built["onnx"])["files"]["model.onnx"]


@pytest.mark.slow  # builds a tiny N-bit zoo (about a minute)
def test_mixed_row_records_sensitivity_on_validation_and_its_plan(nbits_built):
    m = read_manifest(nbits_built["onnx-mixed"])
    table = m["nbits"]["sensitivity"]
    assert table["split"] == "val" and table["texts"] == len(synthetic_splits().val)
    assert len(table["layers"]) == 13 and "classifier" not in {r["unit"] for r in table["layers"]}
    losses = [r["loss_increase"] for r in table["layers"]]
    assert losses == sorted(losses, reverse=True)  # most sensitive first
    search = m["nbits"]["search"]
    assert search["tried"] and search["tried"][-1]["meets_budget"] in (True, False)
    met = [t for t in search["tried"] if t["meets_budget"]]
    assert met and all(t["agreement"] >= 1.0 for t in met)
    assert set(m["nbits"]["plan"].values()) <= {"int4", "int8", "fp32"}


@pytest.mark.slow  # builds a tiny N-bit zoo (about a minute)
def test_sensitivity_never_reads_the_test_split(nbits_built):
    # nbits_built armed the guard around the sensitivity analysis and plan search: they ran...
    assert "sensitivity" in read_manifest(nbits_built["onnx-mixed"])["nbits"]
    Guarded.armed = True  # ...and the guard does fire on a read
    try:
        with pytest.raises(AssertionError, match="test split was read"):
            list(Guarded((1, 2)))
    finally:
        Guarded.armed = False


@pytest.mark.slow  # builds a tiny N-bit zoo (about a minute)
def test_qat_row_trains_with_history_and_exports_its_grid(nbits_built):
    m = read_manifest(nbits_built["onnx-int4-qat"])
    history = m["training"]["history"]
    assert len(history) == 2 and all({"train_loss", "val_accuracy"} <= set(h) for h in history)
    assert m["nbits"]["layers"]["int4"] == 13
    # trained weights on the INT4 grid: onnxruntime reproduces torch's fake-quantized model
    assert m["checks"]["nbits_max_abs_logit_diff_vs_torch_quantized"] <= 1e-3
    assert m["files"]["model.onnx"] == read_manifest(nbits_built["onnx-int4"])["files"]["model.onnx"]


@pytest.mark.slow  # builds a tiny N-bit zoo (about a minute)
def test_weight_units_name_the_torch_modules(nbits_built):
    import onnx

    from slimbench.build.nbits import gemm_to_matmul

    model = onnx.load(str(nbits_built["onnx"] / "model.onnx"))  # fused Attention: Q, K, V inside it
    assert gemm_to_matmul(model) == 2  # the pooler and the head
    units = weight_units(model)
    assert "bert.encoder.layer.0.attention.output.dense" in units and "bert.pooler.dense" in units
    assert units["classifier"]["shape"] == [32, 2]
    plan = read_manifest(nbits_built["onnx-int4"])["nbits"]["plan"]  # MultiHeadAttention: Q, K, V apart
    assert plan["bert.encoder.layer.1.attention.self.value"] == "int4"


@pytest.mark.parametrize("change, message", [
    ({"precision": "int8"}, "makes precision 'int4'"),
    ({"steps": ["export-onnx", "onnx-int4", "onnx-dynamic-int8"]}, "is the last step"),
    ({"steps": ["export-onnx", "onnx-dynamic-int8", "onnx-int4"]}, "alone after"),
    ({"nbits": {"max_drop": 0.5}}, "goes with 'onnx-mixed'"),
    ({"nbits": {"block_size": 48}}, "power of two"),
    ({"train": {"method": "distill"}}, "takes method"),
])
def test_int4_spec_mistakes_are_named(change, message):
    spec = {"name": "q", **ONNX, "steps": ["export-onnx", "onnx-fuse", "onnx-int4"], "precision": "int4", **change}
    with pytest.raises(SpecError, match=message):
        spec_from_dict(spec)


def test_mixed_needs_a_budget_and_qat_needs_int4():
    mixed = {"name": "m", **ONNX, "steps": ["export-onnx", "onnx-mixed"], "precision": "mixed"}
    with pytest.raises(SpecError, match="needs a budget"):
        spec_from_dict(mixed)
    with pytest.raises(SpecError, match="trains for the 'onnx-int4' step"):
        spec_from_dict({**mixed, "nbits": {"top_k": 2}, "train": {"method": "qat"}})
    with pytest.raises(SpecError, match="method \"qat\" trains for an 'onnx-int4' step"):
        spec_from_dict({"name": "t", **ONNX, "steps": ["export-onnx"], "train": {"method": "qat"}})


def test_the_quantization_zoo_extends_the_default_zoo_without_changing_it():
    default = Zoo.load()
    extended = Zoo.load(QUANTIZATION_ZOO_DIR)
    assert extended.names[: len(default.names)] == default.names
    assert extended.names[len(default.names):] == ["onnx-int4", "onnx-int4-qat", "onnx-mixed"]
    assert all(extended.spec_hash(n) == default.spec_hash(n) for n in default.names)


def test_an_extends_file_must_name_the_default_zoo(tmp_path):
    (tmp_path / "a.toml").write_text('name = "a"\nbase = "minilm"\n[train]\nmethod = "finetune"\n')
    (tmp_path / "EXTENDS").write_text("other\n")
    with pytest.raises(SpecError, match="reads \"default\""):
        Zoo.load(tmp_path)


@pytest.mark.slow  # builds a tiny N-bit zoo (about a minute)
def test_report_draws_training_curves_and_sensitivity_from_manifests(nbits_built, tmp_path):
    from slimbench.render.command import _manifest_section
    from slimbench.render.plots import SENSITIVITY_PLOT, TRAINING_PLOT, draw_manifest_plots

    manifests = {name: read_manifest(path) for name, path in nbits_built.items()}
    files = draw_manifest_plots(manifests, tmp_path)
    assert list(files) == [TRAINING_PLOT, SENSITIVITY_PLOT]
    assert all((tmp_path / rel).stat().st_size > 5000 for rel in files.values())
    section = _manifest_section(files, manifests)
    assert "plots/training_curves.png" in section and "`onnx-mixed`: budget labels agreeing" in section
    assert draw_manifest_plots({"onnx": manifests["onnx"]}, tmp_path / "none") == {}  # nothing trained or searched
