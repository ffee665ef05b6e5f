"""Pruning a source variant -- structured (heads, FFN neurons) or magnitude -- each stage followed by
recovery distillation from the source when the recipe says so."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
from slimbench.runtimes.runners import TOKENIZER_FILE, progress_bar, read_manifest
from slimbench.spec.schema import VariantSpec

if TYPE_CHECKING:  # build.train imports torch: the recipes import it when they run
    from slimbench.build.train import Target


def prune_recipe(ctx: BuildContext, spec: VariantSpec, out: Path) -> dict[str, Any]:
    """Prune the source (structured: heads and FFN neurons removed physically; unstructured:
    magnitude, progressively over `rounds`), each stage followed by recovery distillation from the
    source when train.method is "distill"."""
    from slimbench.build import prune as P
    from slimbench.build.train import encode_all
    from slimbench.formats.torch_io import load_hf

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
    # a multi-label text's target is its tuple of per-group values: every loss and check below is per group
    train_texts, train_labels = [e.text for e in splits.train], [e.target for e in splits.train]
    seqs = encode_all(tok, train_texts, spec.max_length, spec.truncation) if needs_train else []
    val_seqs = encode_all(tok, [e.text for e in splits.val], spec.max_length, spec.truncation)
    val_labels = [e.target for e in splits.val]
    model = load_hf(src_dir).eval()
    params_before = count_parameters(model)
    run = _PruneRun(ctx, spec, model, seqs, train_labels, val_seqs, val_labels,
                    teacher_outputs(ctx, src_dir, train_texts)[0] if recover else None)
    structured = cfg.structured
    if structured:
        run.structured(params_before)
    if cfg.sparsity > 0:
        run.magnitude(cfg.sparsity, cfg.rounds, cfg.scope)
        P.make_permanent(model)
    stages = run.stages
    return _pruned_record(ctx, spec, model, out, structured, recover, params_before, stages)


@dataclass
class _PruneRun:
    """One pruning build's model and data, and the stages it has recorded: each pruning stage, then
    recovery distillation from the source when the recipe asks for it (teacher_logits given)."""

    ctx: BuildContext
    spec: VariantSpec
    model: Any
    seqs: list[list[int]]
    train_labels: list[Target]
    val_seqs: list[list[int]]
    val_labels: list[Target]
    teacher_logits: Any
    stages: list[dict[str, Any]] = field(default_factory=list)

    @property
    def recover(self) -> bool:
        return self.teacher_logits is not None

    def val_accuracy(self) -> float:
        from slimbench.build.train import accuracy, predict_logits

        with self.ctx.steps("val check"):
            return accuracy(predict_logits(self.model, self.val_seqs), self.val_labels, self.ctx.splits.groups)

    def recover_stage(self, stage: dict[str, Any], label: str) -> None:
        """Distil the pruned model from its source (when the recipe says so) and record the stage."""
        from slimbench.build.train import distill

        stage["recovery"] = None
        if self.recover:
            with self.ctx.steps("train"):
                result = distill(self.model, self.seqs, self.teacher_logits, self.train_labels, self.val_seqs,
                                 self.val_labels, train_recipe(self.ctx, self.spec), desc=f"{self.spec.name} {label}",
                                 groups=self.ctx.splits.groups)
            stage["recovery"] = training_record(result, self.ctx, self.spec)
            # fit() restored the best epoch's weights, whose validation accuracy it just measured with
            # this same predict_logits pass: measuring again gives the same figure
            stage["val_accuracy"] = result.best_val_accuracy
        elif "val_accuracy_pruned" in stage:
            stage["val_accuracy"] = stage["val_accuracy_pruned"]  # nothing changed since
        self.stages.append(stage)

    def structured(self, params_before: int) -> None:
        from slimbench.build import prune as P

        with self.ctx.steps("importance"):
            _prune_structure(self.ctx, self.spec, self.model, self.seqs, self.train_labels)
        stage = {"stage": "structured", "structure": P.structure_of(self.model),
                 "val_accuracy_pruned": self.val_accuracy()}
        self.ctx.log(f"  structured pruning: {params_before:,} -> {count_parameters(self.model):,} parameters, "
                     f"val accuracy before recovery {stage['val_accuracy_pruned']:.4f}")
        self.recover_stage(stage, "recover")

    def magnitude(self, sparsity: float, rounds: int, scope: str) -> None:
        from slimbench.build import prune as P

        for k, target in enumerate(P.sparsity_schedule(sparsity, rounds), 1):
            with self.ctx.steps("prune"):
                P.magnitude_prune(self.model, target, scope)
            stage: dict[str, Any] = {"stage": f"magnitude {k}", "target_sparsity": target, "scope": scope}
            if not self.recover and k == rounds:
                # the final stage of a recipe without recovery is published as it is: the build's own
                # evaluation (the manifest's val_accuracy) is this stage's; not checked twice
                self.ctx.log(f"  magnitude pruning round {k}: {target:.0%} of encoder weights zeroed (no recovery: "
                             "the evaluation below is this model's)")
            else:
                stage["val_accuracy_pruned"] = self.val_accuracy()
                self.ctx.log(f"  magnitude pruning round {k}: {target:.0%} of encoder weights zeroed, val accuracy "
                             f"{'before recovery ' if self.recover else ''}{stage['val_accuracy_pruned']:.4f}")
            self.recover_stage(stage, f"recover {k}")


def _pruned_record(ctx: BuildContext, spec: VariantSpec, model: Any, out: Path, structured: bool, recover: bool, params_before: int,
                   stages: list[dict[str, Any]]) -> dict[str, Any]:
    """Save the pruned model (physically smaller: its own format; zeroed: plain HF) and describe it."""
    from slimbench.build import prune as P
    from slimbench.formats.torch_io import save_hf

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
                     train_labels: list[Target]) -> None:
    """Remove the least important heads and FFN neurons (Michel et al. 2019 gradient importance on
    a seeded sample of training texts; with label groups, of the sum of the groups' losses)."""
    import torch

    from slimbench.build import prune as P
    from slimbench.build.train import classification_loss, collate

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
        return classification_loss(logits, batch["labels"], ctx.splits.groups)

    ctx.log(f"  scoring heads and FFN neurons on {n} training texts (Michel et al. 2019 gradient importance)")
    if cfg.heads > 0:
        keep = P.select_heads(P.head_importance(model, progress_bar(batches, "  head importance"), loss_fn), cfg.heads)
        P.prune_heads(model, keep)
    if cfg.ffn > 0:
        keep = P.select_neurons(P.ffn_importance(model, progress_bar(batches, "  FFN neuron importance"), loss_fn),
                                cfg.ffn)
        P.prune_ffn(model, keep)
