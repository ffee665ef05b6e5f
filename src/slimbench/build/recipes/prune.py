"""Pruning a source variant -- structured (heads, FFN neurons) or magnitude -- each stage followed by
recovery distillation from the source when the recipe says so."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from slimbench.build.context import BuildContext
from slimbench.build.recipes.common import (
    check_training_rows,
    count_parameters,
    load_tokenizer,
    teacher_outputs,
    train_recipe,
    training_record,
)
from slimbench.errors import BuildError
from slimbench.runtime import TOKENIZER_FILE, progress_bar, read_manifest
from slimbench.zoo import VariantSpec


def prune_recipe(ctx: BuildContext, spec: VariantSpec, out: Path) -> dict[str, Any]:
    """Prune the source (structured: heads and FFN neurons removed physically; unstructured:
    magnitude, progressively over `rounds`), each stage followed by recovery distillation from the
    source when train.method is "distill"."""
    from slimbench.build import prune as P
    from slimbench.build.train import accuracy, distill, encode_all, predict_logits
    from slimbench.torch_io import load_hf

    src_dir = ctx.artifact_dir(str(spec.source))
    sm = read_manifest(src_dir)
    if sm.get("format") != "hf":
        raise BuildError(f"{spec.name}: source {spec.source!r} must be a plain torch fp32 variant")
    cfg = spec.pruning
    recover = spec.method == "distill"
    needs_train = recover or cfg.structured  # one-shot magnitude pruning reads no training text
    if needs_train:
        check_training_rows(ctx, spec, "pruning (importance scoring and recovery)")
    shutil.copyfile(src_dir / TOKENIZER_FILE, out / TOKENIZER_FILE)
    tok = load_tokenizer(src_dir)
    splits = ctx.splits
    train_texts, train_labels = [e.text for e in splits.train], [e.label for e in splits.train]
    seqs = encode_all(tok, train_texts, spec.max_length, spec.truncation) if needs_train else []
    val_seqs = encode_all(tok, [e.text for e in splits.val], spec.max_length, spec.truncation)
    val_labels = [e.label for e in splits.val]
    model = load_hf(src_dir).eval()
    params_before = count_parameters(model)
    teacher_logits = teacher_outputs(ctx, src_dir, train_texts)[0] if recover else None
    stages: list[dict[str, Any]] = []

    def val_accuracy() -> float:
        with ctx.steps("val check"):
            return accuracy(predict_logits(model, val_seqs), val_labels)

    def recover_stage(stage: dict[str, Any], label: str) -> None:
        """Distil the pruned model from its source (when the recipe says so) and record the stage."""
        stage["recovery"] = None
        if recover:
            assert teacher_logits is not None
            with ctx.steps("train"):
                result = distill(model, seqs, teacher_logits, train_labels, val_seqs, val_labels, train_recipe(ctx, spec),
                                 desc=f"{spec.name} {label}")
            stage["recovery"] = training_record(result, ctx, spec)
            # fit() restored the best epoch's weights, whose validation accuracy it just measured with
            # this same predict_logits pass: measuring again gives the same figure
            stage["val_accuracy"] = result.best_val_accuracy
        elif "val_accuracy_pruned" in stage:
            stage["val_accuracy"] = stage["val_accuracy_pruned"]  # nothing changed since
        stages.append(stage)

    def last_one_shot(k: int, rounds: int) -> bool:
        """The final magnitude stage of a recipe without recovery: the model published as it is, so
        the build's own evaluation (the manifest's val_accuracy) is this stage's; not checked twice."""
        return not recover and k == rounds

    structured = cfg.structured
    if structured:
        with ctx.steps("importance"):
            _prune_structure(ctx, spec, model, seqs, train_labels)
        stage = {"stage": "structured", "structure": P.structure_of(model), "val_accuracy_pruned": val_accuracy()}
        ctx.log(f"  structured pruning: {params_before:,} -> {count_parameters(model):,} parameters, "
                f"val accuracy before recovery {stage['val_accuracy_pruned']:.4f}")
        recover_stage(stage, "recover")
    if cfg.sparsity > 0:
        scope = cfg.scope
        for k, target in enumerate(P.sparsity_schedule(cfg.sparsity, cfg.rounds), 1):
            with ctx.steps("prune"):
                P.magnitude_prune(model, target, scope)
            stage = {"stage": f"magnitude {k}", "target_sparsity": target, "scope": scope}
            if last_one_shot(k, cfg.rounds):
                ctx.log(f"  magnitude pruning round {k}: {target:.0%} of encoder weights zeroed (no recovery: "
                        "the evaluation below is this model's)")
            else:
                stage["val_accuracy_pruned"] = val_accuracy()
                ctx.log(f"  magnitude pruning round {k}: {target:.0%} of encoder weights zeroed, val accuracy "
                        f"{'before recovery ' if recover else ''}{stage['val_accuracy_pruned']:.4f}")
            recover_stage(stage, f"recover {k}")
        P.make_permanent(model)
    return _pruned_record(ctx, spec, model, out, structured, recover, params_before, stages)


def _pruned_record(ctx: BuildContext, spec: VariantSpec, model: Any, out: Path, structured: bool, recover: bool, params_before: int,
                   stages: list[dict[str, Any]]) -> dict[str, Any]:
    """Save the pruned model (physically smaller: its own format; zeroed: plain HF) and describe it."""
    from slimbench.build import prune as P
    from slimbench.torch_io import save_hf

    record: dict[str, Any] = {"model_file": "model.safetensors", "source_variant": spec.source,
                              "teacher": spec.source if recover else None, "training": None}
    with ctx.steps("save"):
        if structured:
            P.save_pruned(model, out)
            record["format"] = "hf-pruned"
        else:
            save_hf(model, out)
            record["format"] = "hf"
    stats = P.sparsity_stats(model)
    record["parameters"] = count_parameters(model)
    with ctx.steps("gzip"):
        compressed = P.compressed_size(out / "model.safetensors")
    record["pruning"] = {"config": dict(spec.prune), "parameters_before": params_before, "stages": stages,
                         "sparsity": stats, "compressed_bytes": compressed}
    return record


def _prune_structure(ctx: BuildContext, spec: VariantSpec, model: Any, seqs: list[list[int]],
                     train_labels: list[int]) -> None:
    """Remove the least important heads and FFN neurons (Michel et al. 2019 gradient importance on
    a seeded sample of training texts)."""
    import torch

    from slimbench.build import prune as P
    from slimbench.build.train import collate

    cfg = spec.pruning
    n = min(cfg.importance_texts, len(seqs))
    pick = np.random.default_rng(spec.recipe.seed).choice(len(seqs), size=n, replace=False)
    batches = []
    for start in range(0, n, 32):
        idx = pick[start : start + 32]
        ids, mask = collate(seqs, idx)
        batches.append({"input_ids": ids, "attention_mask": mask,
                        "labels": torch.tensor([train_labels[i] for i in idx])})

    def loss_fn(logits: Any, batch: dict[str, Any]) -> Any:
        return torch.nn.functional.cross_entropy(logits, batch["labels"])

    ctx.log(f"  scoring heads and FFN neurons on {n} training texts (Michel et al. 2019 gradient importance)")
    if cfg.heads > 0:
        keep = P.select_heads(P.head_importance(model, progress_bar(batches, "  head importance"), loss_fn), cfg.heads)
        P.prune_heads(model, keep)
    if cfg.ffn > 0:
        keep = P.select_neurons(P.ffn_importance(model, progress_bar(batches, "  FFN neuron importance"), loss_fn),
                                cfg.ffn)
        P.prune_ffn(model, keep)
