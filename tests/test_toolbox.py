"""The compression toolbox end to end on the tiny zoo: pruned variants (structured, progressive
magnitude), onnxruntime static INT8, the NumPy reference runtime and the sparsity sweep."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from slimbench.build.builder import build
from slimbench.build.prune import compressed_size, sparsity_schedule
from slimbench.errors import SlimbenchError
from slimbench.runtimes.runners import open_runner, read_manifest
from slimbench.spec.schema import spec_from_dict
from slimbench.spec.zoo import Zoo
from slimbench.testing import tiny_zoo_specs

RECIPE = {"epochs": 2, "lr": 3e-3, "batch_size": 16, "warmup": 0.1, "seed": 0}
TOOLBOX = [
    {"name": "pruned-heads", "source": "standard", "max_length": 16,
     "prune": {"heads": 0.5, "ffn": 0.25, "importance_texts": 64}, "train": {"method": "distill", **RECIPE}},
    {"name": "sparse", "source": "standard", "max_length": 16, "prune": {"sparsity": 0.5, "rounds": 2},
     "train": {"method": "distill", **dict(RECIPE, epochs=1)}},
    {"name": "standard-numpy", "source": "standard", "steps": ["numpy-reference"], "runtime": "numpy",
     "max_length": 16},
    {"name": "pruned-heads-numpy", "source": "pruned-heads", "steps": ["numpy-reference"], "runtime": "numpy",
     "max_length": 16},
    {"name": "pruned-heads-onnx", "source": "pruned-heads", "steps": ["export-onnx"], "runtime": "onnxruntime",
     "max_length": 16},
    {"name": "onnx-static-int8", "source": "standard", "steps": ["export-onnx", "onnx-static-int8"],
     "runtime": "onnxruntime", "precision": "int8", "max_length": 16, "calibrate": {"texts": 64}},
    {"name": "quantized-keep-0", "source": "standard", "steps": ["torch-dynamic-int8"], "precision": "int8",
     "max_length": 16, "quantize": {"keep_fp32": ["bert.encoder.layer.0."]}},
    {"name": "quantized-smooth", "source": "standard", "steps": ["torch-dynamic-int8"], "precision": "int8",
     "max_length": 16, "quantize": {"smooth_alpha": 0.8, "smooth_modules": r"(intermediate|layer\.\d+\.output)\.dense$"}},
    {"name": "onnx-static-hybrid", "source": "standard", "steps": ["export-onnx", "onnx-static-int8"],
     "runtime": "onnxruntime", "precision": "int8", "max_length": 16,
     "calibrate": {"texts": 64, "dynamic_after_gelu": True}},
    {"name": "onnx-fused", "source": "standard", "steps": ["export-onnx", "onnx-fuse"], "runtime": "onnxruntime",
     "max_length": 16},
    {"name": "onnx-fused-static", "source": "standard", "steps": ["export-onnx", "onnx-fuse", "onnx-static-int8"],
     "runtime": "onnxruntime", "precision": "int8", "max_length": 16,
     "calibrate": {"texts": 64, "dynamic_after_gelu": True}},
    {"name": "onnx-fused-int8-int4", "source": "standard",
     "steps": ["export-onnx", "onnx-fuse", "onnx-dynamic-int8", "onnx-int4-embeddings"],
     "runtime": "onnxruntime", "precision": "int8", "max_length": 16},
]


@pytest.fixture(scope="module")
def toolbox(tiny_base, tiny_ctx, context_for):
    """The toolbox variants over the tiny zoo's standard (reused from the shared tiny cache)."""
    zoo = Zoo([spec_from_dict(d) for d in tiny_zoo_specs(tiny_base) + TOOLBOX])
    ctx = context_for(zoo, tiny_ctx.root)
    return ctx, build(ctx, [d["name"] for d in TOOLBOX] + ["standard"])


def _weights(path: Path) -> Path:
    return path / read_manifest(path)["model_file"]


@pytest.mark.slow
def test_structured_pruning_removes_heads_and_neurons_physically(toolbox):
    ctx, built = toolbox
    m, std = read_manifest(built["pruned-heads"]), read_manifest(built["standard"])
    assert m["format"] == "hf-pruned"
    structure = m["pruning"]["stages"][0]["structure"]
    # tiny standard: 2 layers x 2 heads of size 16, hidden 32, FFN 64 per layer
    assert sum(structure["heads"]) == 2 and min(structure["heads"]) >= 1
    assert sum(structure["intermediate"]) == 96  # 25 % of 128 neurons removed
    hidden, head = 32, 16
    per_head = 3 * (hidden * head + head) + head * hidden  # q, k, v rows + biases, output columns
    per_neuron = hidden + 1 + hidden  # intermediate row + bias, output column
    assert std["parameters"] - m["parameters"] == 2 * per_head + 32 * per_neuron
    saved = _weights(built["standard"]).stat().st_size - _weights(built["pruned-heads"]).stat().st_size
    assert abs(saved - 4 * (2 * per_head + 32 * per_neuron)) < 1024  # fp32 bytes, headers aside
    assert m["test_accuracy"] >= 0.85
    with open_runner(built["pruned-heads"]) as runner:
        assert len(runner.predict(["a good film", "a dull film"])) == 2


@pytest.mark.slow
def test_pruned_model_exports_to_onnx_and_runs_in_numpy(toolbox):
    _, built = toolbox
    assert read_manifest(built["pruned-heads-onnx"])["checks"]["export_max_abs_logit_diff"] < 1e-4
    assert read_manifest(built["pruned-heads-numpy"])["checks"]["max_abs_logit_diff_vs_source"] < 1e-4


@pytest.mark.slow
def test_progressive_magnitude_pruning_reaches_the_target_and_compresses(toolbox):
    _, built = toolbox
    m, std = read_manifest(built["sparse"]), read_manifest(built["standard"])
    pruning = m["pruning"]
    assert [s["target_sparsity"] for s in pruning["stages"]] == sparsity_schedule(0.5, 2)
    assert all(s["recovery"] is not None for s in pruning["stages"])
    prunable = pruning["sparsity"]["prunable"]
    assert abs(prunable["zeros"] - round(0.5 * prunable["total"])) <= 1
    # the saved file really holds those zeros, and only they became zero
    from safetensors.numpy import load_file

    tensors = load_file(str(_weights(built["sparse"])))
    zeros = sum(int((v == 0).sum()) for k, v in tensors.items()
                if ".encoder." in k and k.endswith("weight") and "LayerNorm" not in k)
    assert zeros == prunable["zeros"]
    assert _weights(built["sparse"]).stat().st_size == _weights(built["standard"]).stat().st_size  # dense file
    assert pruning["compressed_bytes"] < compressed_size(_weights(built["standard"]))
    assert m["parameters"] == std["parameters"] and m["format"] == "hf"
    assert m["test_accuracy"] >= 0.85


@pytest.mark.slow
def test_numpy_runtime_matches_torch_on_the_test_split(toolbox):
    ctx, built = toolbox
    checks = read_manifest(built["standard-numpy"])["checks"]
    assert checks["max_abs_logit_diff_vs_source"] < 1e-4 and checks["n"] == len(ctx.splits.test)
    texts = [e.text for e in ctx.splits.test]
    with open_runner(built["standard-numpy"]) as a, open_runner(built["standard"]) as b:
        assert a.name == "numpy"
        np.testing.assert_allclose(a.predict_logits(texts), b.predict_logits(texts), atol=1e-4)


@pytest.mark.slow
def test_numpy_runner_imports_no_framework(toolbox):
    _, built = toolbox
    code = ("import sys; from slimbench.runtimes.runners import open_runner; r = open_runner(sys.argv[1]); "
            "r.predict(['a good film']); print(sorted(m for m in ('torch', 'onnxruntime', 'transformers') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code, str(built["standard-numpy"])], capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.slow
def test_static_int8_quantizes_activations_and_agrees(toolbox, tiny_built):
    import onnx

    _, built = toolbox
    m = read_manifest(built["onnx-static-int8"])
    assert m["calibration"] == {"texts": 64, "method": "minmax", "split": "train"}
    assert m["checks"]["agreement_vs_source"] >= 0.9 and m["precision"] == "int8"
    graph = onnx.load(str(_weights(built["onnx-static-int8"]))).graph
    initializers = {i.name for i in graph.initializer}
    ops = [n.op_type for n in graph.node]
    # static: activations pass through QuantizeLinear with fixed scales; no run-time range computation
    assert any(n.op_type == "QuantizeLinear" and n.input[0] not in initializers for n in graph.node)
    assert "DynamicQuantizeLinear" not in ops
    dynamic_ops = [n.op_type for n in onnx.load(str(_weights(tiny_built["onnx-int8"]))).graph.node]
    assert "DynamicQuantizeLinear" in dynamic_ops


def _ops(path: Path) -> list[str]:
    import onnx

    return [n.op_type for n in onnx.load(str(_weights(path))).graph.node]


@pytest.mark.slow
def test_fused_graph_has_one_attention_kernel_per_layer_and_matches_torch(toolbox, tiny_built):
    _, built = toolbox
    m = read_manifest(built["onnx-fused"])
    assert m["fused_operators"]["Attention"] == 2  # the tiny standard's 2 layers
    assert m["checks"]["export_max_abs_logit_diff"] < 1e-4
    ops = _ops(built["onnx-fused"])
    assert ops.count("Attention") == 2 and "SkipLayerNormalization" in ops and "Softmax" not in ops
    assert "Attention" not in _ops(tiny_built["onnx"])  # the plain (dynamo) export is left unfused


@pytest.mark.slow
def test_int4_embeddings_halve_the_embedding_bytes_and_agree(toolbox, tiny_built):
    import onnx

    _, built = toolbox
    m = read_manifest(built["onnx-fused-int8-int4"])
    assert m["checks"]["agreement_vs_source"] >= 0.9 and m["precision"] == "int8"
    ops = _ops(built["onnx-fused-int8-int4"])
    assert "QAttention" in ops and "MatMulInteger" in ops and "GatherBlockQuantized" in ops
    graph = onnx.load(str(_weights(built["onnx-fused-int8-int4"]))).graph
    word = next(i for i in graph.initializer if "word_embeddings" in i.name and i.data_type == onnx.TensorProto.INT4)
    vocab, hidden = word.dims
    assert len(word.raw_data) == vocab * hidden // 2  # two weights a byte


@pytest.mark.slow
def test_dynamic_int8_keeps_the_named_layers_fp32_through_save_and_load(toolbox, tiny_built):
    from torch import nn

    from slimbench.formats.torch_io import _dynamic_linear_types, load_int8

    _, built = toolbox
    model = load_int8(built["quantized-keep-0"])
    linear = {n: type(m) for n, m in model.named_modules() if isinstance(m, (nn.Linear, *_dynamic_linear_types()))}
    kept = {n for n, t in linear.items() if t is nn.Linear}
    assert kept and all(n.startswith("bert.encoder.layer.0.") for n in kept)
    assert all(t is not nn.Linear for n, t in linear.items() if not n.startswith("bert.encoder.layer.0."))
    m = read_manifest(built["quantized-keep-0"])
    assert m["kept_fp32"] == ["bert.encoder.layer.0."] and m["checks"]["agreement_vs_source"] >= 0.9
    assert _weights(built["quantized-keep-0"]).stat().st_size > _weights(tiny_built["quantized"]).stat().st_size
    assert len(load_int8(tiny_built["quantized"]).bert.encoder.layer[0].attention.self.query.weight()) > 0


@pytest.mark.slow
def test_smoothing_is_exact_in_fp32_and_survives_save_and_load(toolbox, tiny_built):
    import copy

    import torch

    from slimbench.build.recipes.derive import calibration_feeds
    from slimbench.formats.torch_io import (
        SmoothedLinear,
        linear_input_absmax,
        load_hf,
        load_int8,
        smooth_linears,
    )

    ctx, built = toolbox
    model = load_hf(tiny_built["standard"]).eval()
    spec = ctx.zoo.get("quantized-smooth")
    feeds, n = calibration_feeds(ctx, spec, built["quantized-smooth"])
    absmax = linear_input_absmax(model, feeds)
    assert n >= 32 and len(absmax) == 2 * 6 + 2  # q, k, v, attention output, FFN in, FFN out per layer; pooler, head
    smoothed = copy.deepcopy(model)
    names = smooth_linears(smoothed, absmax, 0.8)  # default: every encoder Linear
    assert len(names) == 2 * 6 and all(n.startswith("bert.encoder.") for n in names)
    ids, mask = (torch.from_numpy(feeds[0][k]) for k in ("input_ids", "attention_mask"))
    with torch.inference_mode():
        before, after = (m(input_ids=ids, attention_mask=mask).logits for m in (model, smoothed))
    assert torch.allclose(before, after, atol=1e-5)  # the same function in fp32

    m = read_manifest(built["quantized-smooth"])
    assert m["smoothing"] == {"alpha": 0.8, "modules": spec.quantize["smooth_modules"], "smoothed": 2 * 2,
                              "texts": n, "split": "train"}  # FFN in and out of each layer
    assert m["checks"]["agreement_vs_source"] >= 0.9
    loaded = load_int8(built["quantized-smooth"])
    layer = loaded.bert.encoder.layer[0]
    assert not isinstance(layer.attention.self.query, SmoothedLinear)
    ffn_in = layer.intermediate.dense
    assert isinstance(ffn_in, SmoothedLinear)  # its scale read from the file, not the placeholder ones
    assert torch.allclose(ffn_in.inv_scale, smoothed.get_submodule("bert.encoder.layer.0.intermediate.dense").inv_scale)


def test_quantize_table_goes_with_torch_int8():
    with pytest.raises(SlimbenchError, match="goes with the 'torch-dynamic-int8' step"):
        spec_from_dict({"name": "x", "source": "standard", "quantize": {"keep_fp32": ["bert."]}})
    with pytest.raises(SlimbenchError, match="module-name prefixes"):
        spec_from_dict({"name": "x", "source": "standard", "steps": ["torch-dynamic-int8"], "precision": "int8",
                        "quantize": {"keep_fp32": [""]}})
    with pytest.raises(SlimbenchError, match="smooth_alpha is between 0 and 1"):
        spec_from_dict({"name": "x", "source": "standard", "steps": ["torch-dynamic-int8"], "precision": "int8",
                        "quantize": {"smooth_alpha": 1.5}})
    with pytest.raises(SlimbenchError, match="not a regular expression"):
        spec_from_dict({"name": "x", "source": "standard", "steps": ["torch-dynamic-int8"], "precision": "int8",
                        "quantize": {"smooth_alpha": 0.5, "smooth_modules": "("}})


@pytest.mark.parametrize("steps, message", [
    (["export-onnx", "onnx-dynamic-int8", "onnx-fuse"], "right after 'export-onnx'"),
    (["export-onnx", "onnx-int4-embeddings"], "follows 'onnx-dynamic-int8'"),
    (["export-onnx", "onnx-dynamic-int8", "onnx-int4-embeddings", "onnx-fuse"], "right after"),
])
def test_onnx_step_order_is_checked(steps, message):
    with pytest.raises(SlimbenchError, match=message):
        spec_from_dict({"name": "x", "source": "standard", "steps": steps, "runtime": "onnxruntime",
                        "precision": "int8"})


@pytest.mark.slow
def test_static_int8_can_leave_the_ffn_output_projections_dynamic(toolbox):
    _, built = toolbox
    m = read_manifest(built["onnx-static-hybrid"])
    dynamic = m["calibration"]["dynamic_nodes"]
    assert len(dynamic) == 2  # one FFN output projection per layer of the tiny standard
    assert m["checks"]["agreement_vs_source"] >= 0.9
    ops = _ops(built["onnx-static-hybrid"])
    assert ops.count("MatMulInteger") == 2 and "DynamicQuantizeLinear" in ops and "QuantizeLinear" in ops


@pytest.mark.slow
def test_static_int8_of_the_fused_graph(toolbox):
    """On the fused graph (contrib ops, which ONNX shape inference does not know): every MatMul but the
    FFN output projections static, those (after BiasGelu) and the fused Attention's QKV dynamic."""
    _, built = toolbox
    m = read_manifest(built["onnx-fused-static"])
    assert len(m["calibration"]["dynamic_nodes"]) == 2 + 2  # per layer: the FFN output projection, the Attention
    assert m["checks"]["agreement_vs_source"] >= 0.9
    ops = _ops(built["onnx-fused-static"])
    assert ops.count("QAttention") == 2 and ops.count("MatMulInteger") == 2 and "Attention" not in ops
    # the attention output and FFN input projections take statically quantized activations
    assert ops.count("QuantizeLinear") >= 4 and ops.count("MatMul") >= 4


@pytest.mark.slow
def test_histogram_calibration_gets_fixed_shape_batches(toolbox):
    """percentile/entropy calibrators stack batches: a variable-length batch used to crash them."""
    ctx, built = toolbox
    spec = spec_from_dict({"name": "onnx-static-pct", "source": "standard", "runtime": "onnxruntime",
                           "steps": ["export-onnx", "onnx-static-int8"], "precision": "int8", "max_length": 16,
                           "calibrate": {"texts": 64, "method": "percentile"}})
    ctx.zoo = Zoo([*ctx.zoo.specs.values(), spec])
    m = read_manifest(build(ctx, ["onnx-static-pct"])["onnx-static-pct"])
    assert m["calibration"]["method"] == "percentile" and m["checks"]["agreement_vs_source"] >= 0.9


@pytest.mark.slow
def test_sweep_ladder_and_its_report_section(toolbox, tmp_path):
    from slimbench.commands.sweep import load_sweep, parse_levels, run_sweep
    from slimbench.render.command import cmd_report  # noqa: F401  (the CLI path is tested below)

    ctx, _ = toolbox
    doc = run_sweep(ctx, "standard", parse_levels("0,50,90"))
    rows = doc["levels"]
    assert [r["target_sparsity"] for r in rows] == [0.0, 0.5, 0.9]
    assert [round(r["encoder_sparsity"], 3) for r in rows] == [0.0, 0.5, 0.9]
    assert rows[0]["variant"] == "standard" and rows[1]["variant"] == "standard-sparse-50"
    assert rows[0]["compressed_bytes"] > rows[1]["compressed_bytes"] > rows[2]["compressed_bytes"]
    assert len({r["file_bytes"] for r in rows}) == 1  # zeros don't shrink a dense file
    assert all(0.0 <= r["test_accuracy"] <= 1.0 for r in rows)
    # a one-shot rung is evaluated once, by the build's evaluation of the published model; its
    # stage record carries that figure, and its gzip size is measured once and memoised
    from slimbench.cache import memo

    rung = ctx.artifact_dir("standard-sparse-50")
    m = read_manifest(rung)
    assert "val check" not in m["build_steps_s"] and "evaluate" in m["build_steps_s"]
    assert m["pruning"]["stages"][-1]["recovery"] is None and "val_accuracy_pruned" not in m["pruning"]["stages"][-1]
    weights = _weights(rung)
    assert rows[1]["compressed_bytes"] == memo.gzip_size(weights) == memo.gzip_size_memo(weights)
    path = tmp_path / "sweep.json"
    path.write_text(json.dumps(doc))
    assert load_sweep(path)["source"] == "standard"

    from slimbench.cli import main

    results = Path(__file__).parent / "golden" / "report" / "machine_a.json"
    assert main(["report", str(results), "--out", str(tmp_path / "out"), "--sweep", str(path)]) == 0
    text = (tmp_path / "out" / "REPORT.md").read_text()
    assert "## Accuracy vs sparsity" in text and "`standard-sparse-90`" in text
    assert "plots/accuracy_vs_sparsity.png" in text
    assert (tmp_path / "out" / "plots" / "accuracy_vs_sparsity.png").stat().st_size > 1000


def test_bad_sweep_input_is_a_clear_error(tmp_path):
    from slimbench.commands.sweep import load_sweep, parse_levels

    with pytest.raises(SlimbenchError, match="--levels must be sparsities"):
        parse_levels("0,150")
    with pytest.raises(SlimbenchError, match="comma-separated numbers"):
        parse_levels("ten")
    assert parse_levels("0,0.5") == parse_levels("0,50") == [0.0, 0.5]
    bad = tmp_path / "sweep.json"
    bad.write_text("{\"schema\": 99}")
    with pytest.raises(SlimbenchError, match="not a slimbench sweep file"):
        load_sweep(bad)
