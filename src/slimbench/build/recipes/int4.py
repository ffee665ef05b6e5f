"""The weight-only N-bit steps of the derive recipe: `onnx-int4` (every Linear weight 4-bit) and
`onnx-mixed` (a per-layer INT4 / INT8 / fp32 plan chosen by budget from the layers' sensitivity on
the validation split), and quantization-aware training for `onnx-int4` (`[train] method = "qat"`).

Each N-bit graph is checked against torch running the same quantized weights (`build.qat.simulate`):
the runtime and torch then compute with identical weights, so the tolerance stays tight; the labels'
agreement with the fp32 source is recorded beside it (derive's generic check).
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from slimbench.build.context import BuildContext
from slimbench.build.recipes.common import (
    check_training_rows,
    load_tokenizer,
    refuse_label_groups,
    teacher_outputs,
    torch_logits,
    train_recipe,
    training_record,
    truncation_of,
)
from slimbench.errors import BuildError
from slimbench.runtimes.runners import TOKENIZER_FILE, Encoder
from slimbench.spec.schema import NBITS_STEPS, VariantSpec

NBITS_TOLERANCE = 1e-2  # max |logit diff| onnxruntime N-bit graph vs torch with the same quantized weights
DEFAULT_KEEP = ("classifier",)


def nbits_step(spec: VariantSpec) -> str | None:
    return next((s for s in spec.steps if s in NBITS_STEPS), None)


def keep_fp32(spec: VariantSpec) -> tuple[str, ...]:
    return tuple(spec.nbits.get("keep_fp32", DEFAULT_KEEP))


def torch_units(model: Any) -> list[str]:
    """The model's Linear modules: the units its exported graph's MatMuls map to."""
    from torch import nn

    return [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]


def uniform(units: list[str], spec: VariantSpec, bits: int = 4) -> dict[str, int | None]:
    keep = keep_fp32(spec)
    return {u: (None if u.startswith(keep) else bits) for u in units}


def qat(ctx: BuildContext, spec: VariantSpec, model: Any, src_dir: Path) -> dict[str, Any]:
    """Fine-tune `model` (in place) with its weights fake-quantized as the `onnx-int4` step will store
    them, distilling the fp32 source's logits on the training split; returns the training record."""
    from slimbench.build import qat as fake
    from slimbench.build.train import encode_all

    refuse_label_groups(ctx, spec, "quantization-aware training")
    check_training_rows(ctx, spec, "quantization-aware training")
    splits = ctx.splits
    texts = [e.text for e in splits.train]
    tok = load_tokenizer(src_dir)
    truncation = truncation_of(ctx, spec)
    seqs = encode_all(tok, texts, spec.max_length, truncation)
    val_seqs = encode_all(tok, [e.text for e in splits.val], spec.max_length, truncation)
    soft, _ = teacher_outputs(ctx, src_dir, texts)
    plan = uniform(torch_units(model), spec)
    embeddings = bool(spec.nbits.get("embeddings", True))
    recipe = train_recipe(ctx, spec)
    ctx.log(f"  quantization-aware training: {sum(b is not None for b in plan.values())} Linear layers at INT4"
            + (" and the embedding tables" if embeddings else "") + f", {recipe.epochs_run} epoch(s)")
    model.train()
    with ctx.steps("train"):
        result = fake.train(model, plan, embeddings, seqs, soft, [e.label for e in splits.train], val_seqs,
                            [e.label for e in splits.val], recipe, desc=f"{spec.name} qat")
    return training_record(result, ctx, spec)


def quantize(ctx: BuildContext, spec: VariantSpec, model: Any, graph: Path, out: Path,
             record: dict[str, Any], texts: list[str]) -> None:
    """Rewrite the checked fp32 `graph` with the step's N-bit weights, recording the plan (and, for
    onnx-mixed, the sensitivity table and every plan tried), then check it against torch."""
    import onnx

    from slimbench.build.nbits import estimate_bytes, quantize_weights, weight_units

    step = nbits_step(spec)
    units = weight_units(onnx.load(str(graph)))
    missing = sorted(set(units) - set(torch_units(model)))
    if missing:
        raise BuildError(f"{spec.name}: graph MatMul {missing[0]!r} maps to no Linear module of the source")
    block = int(spec.nbits.get("block_size", 32))
    embeddings = bool(spec.nbits.get("embeddings", True))
    info: dict[str, Any] = {"block_size": block, "embeddings": "int4" if embeddings else "fp32",
                            "accuracy_level": "fp32 compute (weight-only)"}
    if step == "onnx-int4":
        plan = uniform(list(units), spec)
    else:
        plan, chosen = _mixed_plan(ctx, spec, graph, out, units, embeddings, block)
        info.update(chosen)
    info["estimated_weight_bytes"] = estimate_bytes(units, plan, block)
    ctx.log(f"  {step}: {sum(b == 4 for b in plan.values())} Linear layers INT4, {sum(b == 8 for b in plan.values())} "
            f"INT8, {sum(b is None for b in plan.values())} fp32; estimated {info['estimated_weight_bytes'] / 1e6:.1f} MB "
            "of Linear weights")
    with ctx.steps("quantize"):
        previous = graph.with_name(graph.stem + ".previous.onnx")
        graph.rename(previous)
        try:
            info["layers"] = quantize_weights(previous, graph, plan, embeddings, block)
        finally:
            previous.unlink(missing_ok=True)
    info["plan"] = {u: ("fp32" if b is None else f"int{b}") for u, b in plan.items()}
    record["nbits"] = info
    # the check: torch with the same quantized weights, on the validation texts derive checks with
    simulated = _simulated_logits(model, plan, embeddings, out, spec, ctx, texts)
    from slimbench.build.recipes.common import logits_of, write_probe_manifest

    write_probe_manifest(ctx, out, spec, record)
    with ctx.steps("check"):
        ours = logits_of(out, texts, ctx.threads)
    diff = float(np.abs(ours - simulated).max())
    record["checks"]["nbits_max_abs_logit_diff_vs_torch_quantized"] = diff
    record["checks"]["nbits_tolerance"] = NBITS_TOLERANCE
    if diff > NBITS_TOLERANCE:
        raise BuildError(f"{spec.name}: the N-bit graph disagrees with torch running the same quantized weights "
                         f"(max |Δlogit| {diff:.2e} > {NBITS_TOLERANCE:g}); refusing to publish it")


def _simulated_logits(model: Any, plan: dict[str, int | None], embeddings: bool, out: Path, spec: VariantSpec,
                      ctx: BuildContext, texts: list[str]) -> np.ndarray:
    from slimbench.build import qat as fake

    return torch_logits(ctx, spec, fake.simulate(copy.deepcopy(model).eval(), plan, embeddings), out, texts)


def _mixed_plan(ctx: BuildContext, spec: VariantSpec, graph: Path, out: Path, units: dict[str, Any],
                embeddings: bool, block: int) -> tuple[dict[str, int | None], dict[str, Any]]:
    """Sensitivity of each searchable layer at INT4 on the validation split, then the plan by budget."""
    from slimbench.build.nbits import quantize_weights
    from slimbench.build.sensitivity import Budget, ValidationSet, bits_of, choose_plan, layer_sensitivity

    refuse_label_groups(ctx, spec, "the INT4 sensitivity search")
    keep = keep_fp32(spec)
    searched = {u: v for u, v in units.items() if not u.startswith(keep)}
    encoder = Encoder(out / TOKENIZER_FILE, spec.max_length, truncation_of(ctx, spec))
    val = ValidationSet.encode(ctx.splits.val, encoder, ctx.threads)
    ctx.log(f"  sensitivity: {len(searched)} Linear layers, each alone at INT4, on {len(val.labels)} validation texts")
    with ctx.steps("sensitivity"):
        table = layer_sensitivity(graph, searched, val, 4, block, log=ctx.log)
    fp32 = table["fp32"]
    reference = val.logits(graph)
    nb = spec.nbits
    budget = Budget(max_drop=nb.get("max_drop"), min_agreement=nb.get("min_agreement"), top_k=nb.get("top_k"))

    def evaluate(plan: dict[str, int | None]) -> dict[str, float]:
        with tempfile.TemporaryDirectory() as tmp:
            candidate = Path(tmp) / "plan.onnx"
            quantize_weights(graph, candidate, plan, embeddings, block)
            return val.score(val.logits(candidate), reference)

    with ctx.steps("plan"):
        chosen = choose_plan([r["unit"] for r in table["layers"]], searched, budget, fp32, evaluate, block_size=block,
                             log=ctx.log)
    plan = {u: (None if u.startswith(keep) else bits_of(chosen["plan"][u])) for u in units}
    chosen.pop("plan")
    return plan, {"sensitivity": table, "search": chosen}
