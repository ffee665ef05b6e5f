"""Post-training steps on a source variant: torch dynamic INT8, ONNX export, ONNX Runtime dynamic or
static INT8, weight-only INT4 / mixed precision (recipes.int4, with optional quantization-aware
training), the NumPy reference runtime -- each checked against its source before publishing."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from slimbench.build.context import BuildContext
from slimbench.build.recipes.common import logits_of, torch_logits, truncation_of, write_probe_manifest
from slimbench.errors import BuildError
from slimbench.labels import LabelGroups
from slimbench.runtimes.runners import TOKENIZER_FILE, read_manifest
from slimbench.spec.schema import VariantSpec

EXPORT_TOLERANCE = 1e-3  # max |logit diff| torch fp32 vs ONNX fp32 before a build is refused
CHECK_TEXTS = 256
CALIBRATION_BATCH = 32
T = TypeVar("T")
FP32_TORCH_FORMATS = ("hf", "hf-pruned")
NUMPY_TOLERANCE = 1e-4  # max |logit diff| torch fp32 vs the NumPy reference runtime, on the whole test split

def derive(ctx: BuildContext, spec: VariantSpec, out: Path) -> dict[str, Any]:
    """Post-training steps on the source variant: torch INT8, ONNX export, ORT dynamic or static INT8,
    weight-only INT4 or mixed precision (after quantization-aware training with method "qat"), the
    NumPy reference runtime."""
    from slimbench.formats.torch_io import load_torch_model, quantize_dynamic_int8, save_int8

    src_dir = ctx.artifact_dir(str(spec.source))
    sm = read_manifest(src_dir)
    if sm.get("format") not in FP32_TORCH_FORMATS:
        raise BuildError(f"{spec.name}: source {spec.source!r} must be a torch fp32 variant")
    shutil.copyfile(src_dir / TOKENIZER_FILE, out / TOKENIZER_FILE)
    record: dict[str, Any] = {"parameters": sm["parameters"], "source_variant": spec.source, "checks": {}}
    if spec.steps == ("numpy-reference",):
        return {**record, **numpy_reference(ctx, spec, src_dir, out)}
    model = load_torch_model(src_dir, sm["format"]).eval()
    check_texts = [e.text for e in ctx.splits.val[:CHECK_TEXTS]]
    with ctx.steps("check"):
        reference = logits_of(src_dir, check_texts, ctx.threads)
    if spec.steps == ("torch-dynamic-int8",):
        if sm["format"] != "hf":
            raise BuildError(f"{spec.name}: torch dynamic INT8 needs a plain (unpruned) fp32 source")
        keep = spec.quantize.get("keep_fp32", [])
        if "smooth_alpha" in spec.quantize:
            with ctx.steps("smooth"):
                record["smoothing"] = smooth(ctx, spec, model, out)
        with ctx.steps("quantize"):
            save_int8(quantize_dynamic_int8(model, keep), model.config, out)
        record.update(format="torch-int8", model_file="model.int8.safetensors")
        if keep:
            record["kept_fp32"] = keep
    elif spec.steps and spec.steps[0] == "export-onnx":
        exported = reference
        if spec.method == "qat":
            from slimbench.build.recipes.int4 import qat

            record["training"] = qat(ctx, spec, model, src_dir)
            with ctx.steps("check"):  # the export is checked against the trained model, not the source
                exported = torch_logits(ctx, spec, model, out, check_texts)
        onnx_steps(ctx, spec, model, out, record, lambda: logits_of(out, check_texts, ctx.threads) - exported,
                   check_texts)
    else:
        raise BuildError(f"{spec.name}: unsupported steps {spec.steps}")
    write_probe_manifest(ctx, out, spec, record)
    with ctx.steps("check"):
        q = logits_of(out, check_texts, ctx.threads)
    record["checks"]["max_abs_logit_diff_vs_source"] = float(np.abs(q - reference).max())
    record["checks"].update(agreement(q, reference, ctx.splits.groups))
    record["checks"]["n"] = len(check_texts)
    return record


def agreement(logits: np.ndarray, reference: np.ndarray, groups: LabelGroups | None) -> dict[str, Any]:
    """How often two variants' logits give the same prediction: the argmax, or with label groups
    every group's value (and each group's alone)."""
    if groups is None:
        return {"agreement_vs_source": float((logits.argmax(-1) == reference.argmax(-1)).mean())}
    same = groups.decode(logits) == groups.decode(reference)
    return {"agreement_vs_source": float(same.all(axis=1).mean()),
            "agreement_vs_source_per_group": {n: float(x) for n, x in zip(groups.names, same.mean(axis=0), strict=True)}}


def onnx_steps(ctx: BuildContext, spec: VariantSpec, model: Any, out: Path, record: dict[str, Any],
               logit_error: Callable[[], np.ndarray], check_texts: list[str] | None = None) -> None:
    """export-onnx, then onnx-fuse, then one INT8 step, then onnx-int4-embeddings, each optional after
    the export; or, after export and fusion, one weight-only N-bit step (onnx-int4, onnx-mixed). The
    fp32 graph (exported, then fused) is checked against torch before quantizing."""
    from slimbench.build.compress import onnx_dynamic_int8, onnx_int4_embeddings, onnx_static_int8
    from slimbench.build.export import export_onnx
    from slimbench.build.fuse import fuse_transformer
    from slimbench.build.recipes.int4 import nbits_step

    graph = out / "model.onnx"
    fused = "onnx-fuse" in spec.steps
    nbits = nbits_step(spec)
    with ctx.steps("onnx export"):  # an N-bit step names its units by the TorchScript export's scopes
        export_onnx(model, graph, spec.max_length, model.config.vocab_size, fusable=fused or nbits is not None)
    if fused:
        cfg = model.config
        with ctx.steps("fuse"):
            record["fused_operators"] = _rewrite(graph, lambda src: fuse_transformer(
                src, graph, cfg.num_attention_heads, cfg.hidden_size, cfg.num_hidden_layers,
                separate_qkv=nbits is not None))
    if nbits:
        record["gemm_as_matmul"] = _rewrite(graph, lambda src: _gemm_to_matmul(src, graph))
    record.update(format="onnx", model_file="model.onnx")
    write_probe_manifest(ctx, out, spec, record)
    with ctx.steps("check"):
        diff = float(np.abs(logit_error()).max())
    record["checks"]["export_max_abs_logit_diff"] = diff
    if diff > EXPORT_TOLERANCE:
        raise BuildError(f"{spec.name}: the ONNX graph disagrees with torch (max |Δlogit| {diff:.2e} > "
                         f"{EXPORT_TOLERANCE:g}); refusing to publish it")
    if nbits:
        from slimbench.build.recipes.int4 import quantize

        quantize(ctx, spec, model, graph, out, record, list(check_texts or []))
        return
    int4 = "onnx-int4-embeddings" in spec.steps
    if "onnx-dynamic-int8" in spec.steps:
        with ctx.steps("quantize"):
            _rewrite(graph, lambda src: onnx_dynamic_int8(src, graph, gather=not int4))
    elif "onnx-static-int8" in spec.steps:
        feeds, n = calibration_feeds(ctx, spec, out)
        method = spec.static_int8.method
        ctx.log(f"  static INT8: calibrating activation ranges ({method}) on {n} training texts")
        with ctx.steps("calibrate and quantize"):
            dynamic = _rewrite(graph, lambda src: onnx_static_int8(src, graph, feeds, method,
                                                                   spec.static_int8.dynamic_after_gelu))
        record["calibration"] = {"texts": n, "method": method, "split": "train"}
        if dynamic:
            record["calibration"]["dynamic_nodes"] = dynamic
    if int4:
        _rewrite(graph, lambda src: onnx_int4_embeddings(src, graph))


def _gemm_to_matmul(src: Path, dst: Path) -> int:
    import onnx

    from slimbench.build.nbits import gemm_to_matmul

    model = onnx.load(str(src))
    n = gemm_to_matmul(model)
    onnx.save(model, str(dst))
    return n


def smooth(ctx: BuildContext, spec: VariantSpec, model: Any, out: Path) -> dict[str, Any]:
    """SmoothQuant scaling of the model's encoder Linear modules (in place, exact in fp32), with
    per-channel input maxima calibrated on training texts as static INT8 calibrates."""
    from slimbench.build.families import bert_name
    from slimbench.formats.torch_io import SMOOTH_ALL, linear_input_absmax, smooth_linears

    alpha = float(spec.quantize["smooth_alpha"])
    pattern = spec.quantize.get("smooth_modules", SMOOTH_ALL)
    feeds, n = calibration_feeds(ctx, spec, out)
    ctx.log(f"  smoothing: input channel maxima of the Linear modules matching {pattern!r} on {n} training "
            f"texts, alpha {alpha}")
    modules = smooth_linears(model, linear_input_absmax(model, feeds), alpha, pattern, alias=lambda n: bert_name(model, n))
    if not modules:
        raise BuildError(f"{spec.name}: [quantize] smooth_modules {pattern!r} matches no Linear module")
    return {"alpha": alpha, "modules": pattern, "smoothed": len(modules), "texts": n, "split": "train"}


def _rewrite(graph: Path, step: Callable[[Path], T]) -> T:
    """Run `step(previous)` that writes `graph` anew from its previous version; the previous file is
    removed afterwards."""
    previous = graph.with_name(graph.stem + ".previous.onnx")
    os.replace(graph, previous)
    try:
        return step(previous)
    finally:
        previous.unlink(missing_ok=True)


def calibration_feeds(ctx: BuildContext, spec: VariantSpec, out: Path) -> tuple[list[dict[str, np.ndarray]], int]:
    """Batches of training texts, encoded exactly as the runtime will (the variant's own Encoder)."""
    from slimbench.runtimes.runners import Encoder

    n = min(spec.static_int8.texts, len(ctx.splits.train))
    if n < min(CALIBRATION_BATCH, spec.static_int8.texts):
        raise BuildError(f"{spec.name}: static INT8 calibration needs at least {CALIBRATION_BATCH} training texts, "
                         f"the training split has {len(ctx.splits.train)}; give a larger dataset")
    pick = np.random.default_rng(0).choice(len(ctx.splits.train), size=n, replace=False)
    texts = sorted((ctx.splits.train[int(i)].text for i in pick), key=len)
    encoder = Encoder(out / TOKENIZER_FILE, spec.max_length, truncation_of(ctx, spec))
    # The histogram calibrators (percentile, entropy) stack every batch's tensors, so they need one
    # shape: pad those batches to max_length. MinMax takes each batch as it comes.
    fixed = spec.static_int8.method != "minmax"
    feeds = []
    for start in range(0, n, CALIBRATION_BATCH):
        ids, mask = encoder(texts[start : start + CALIBRATION_BATCH])
        if fixed:
            width = ((0, 0), (0, spec.max_length - ids.shape[1]))
            ids, mask = np.pad(ids, width, constant_values=encoder.pad_id), np.pad(mask, width)
        feeds.append({"input_ids": ids, "attention_mask": mask})
    return feeds, n


def numpy_reference(ctx: BuildContext, spec: VariantSpec, src_dir: Path, out: Path) -> dict[str, Any]:
    """The source's fp32 weights, unchanged, for the NumPy runtime -- checked against torch on the
    whole test split."""
    for name in ("config.json", "model.safetensors"):
        if not (src_dir / name).is_file():
            raise BuildError(f"{spec.name}: source {spec.source!r} has no {name}; the NumPy runtime reads "
                             "Hugging Face safetensors checkpoints")
        shutil.copyfile(src_dir / name, out / name)
    record: dict[str, Any] = {"format": "numpy-bert", "model_file": "model.safetensors", "checks": {}}
    write_probe_manifest(ctx, out, spec, record)
    texts = [e.text for e in ctx.splits.test]
    with ctx.steps("check"):
        ours = logits_of(out, texts, ctx.threads, desc="  check: NumPy runtime")
        theirs = logits_of(src_dir, texts, ctx.threads, desc="  check: torch")
    diff = float(np.abs(ours - theirs).max())
    record["checks"].update(max_abs_logit_diff_vs_source=diff, n=len(texts), split="test")
    if ctx.splits.groups is not None:  # (a single-label record stays as it was)
        record["checks"].update(agreement(ours, theirs, ctx.splits.groups))
    if diff > NUMPY_TOLERANCE:
        raise BuildError(f"{spec.name}: the NumPy runtime disagrees with torch (max |Δlogit| {diff:.2e} > "
                         f"{NUMPY_TOLERANCE:g} on the test split); refusing to publish it")
    return record
