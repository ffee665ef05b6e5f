"""Helpers the recipes share: tokenizer and parameter counts, training records, the teacher's cached
outputs, a source's truncation, and logits through the public runner."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from slimbench.build.autocast import AUTO
from slimbench.build.context import BuildContext
from slimbench.data import Splits, check_trainable
from slimbench.errors import BuildError
from slimbench.runtimes.runners import MANIFEST, TOKENIZER_FILE, open_runner, progress_bar, read_manifest
from slimbench.spec.schema import TrainRecipe, VariantSpec


def load_tokenizer(directory: Path) -> Any:
    from tokenizers import Tokenizer

    path = directory / TOKENIZER_FILE
    if not path.is_file():
        raise BuildError(f"{directory} has no {TOKENIZER_FILE}; a fast (Rust) tokenizer file is required")
    return Tokenizer.from_file(str(path))


def count_parameters(model: Any) -> int:
    return int(sum(p.numel() for p in model.parameters()))


def check_training_rows(ctx: BuildContext, spec: VariantSpec, what: str) -> None:
    """Refuse a recipe the training split is too small for, naming the numbers (see data.check_trainable)."""
    check_trainable(ctx.splits, spec.recipe.batch_size, f"{spec.name} ({what})")


LABEL_GROUPS_KEY = "label_groups"  # config.json's copy of a multi-label checkpoint's label table


def set_label_groups(config: Any, splits: Splits) -> None:
    """Write a multi-label dataset's label table into a model's config (saved in its config.json,
    inherited by every variant made from it); a single-label config is left as it is."""
    if splits.groups is not None:
        setattr(config, LABEL_GROUPS_KEY, splits.groups.to_json())


def refuse_label_groups(ctx: BuildContext, spec: VariantSpec, what: str) -> None:
    """Refuse a recipe that does not handle label groups yet, before any work."""
    if ctx.splits.groups is not None:
        raise BuildError(f"{spec.name}: {what} does not handle multi-label datasets yet ({ctx.splits.name!r} has label "
                         f"groups {', '.join(ctx.splits.groups.names)}); build the variants without it "
                         "(docs/multilabel.md lists what does)")


def train_recipe(ctx: BuildContext, spec: VariantSpec) -> TrainRecipe:
    """The spec's [train] recipe with `autocast = "auto"` replaced by the dtype chosen for this
    machine (the one its spec hash was computed with)."""
    recipe = spec.recipe
    if recipe.autocast == AUTO:
        recipe = replace(recipe, autocast=ctx.train_autocast().dtype)
    return recipe


def training_record(result: Any, ctx: BuildContext, spec: VariantSpec) -> dict[str, Any]:
    """The manifest's record of a training run; with the spec's `autocast = "auto"`, also how the
    dtype was chosen."""
    out = {"best_epoch": result.best_epoch, "best_val_accuracy": result.best_val_accuracy,
           "history": result.history, "seconds": result.seconds, "steps": result.steps,
           "autocast": result.autocast}
    if spec.recipe.epochs_run != spec.recipe.epochs:
        out["schedule_epochs"] = spec.recipe.epochs  # the learning-rate schedule's length; history: the epochs run
    if spec.recipe.autocast == AUTO:
        out["autocast_choice"] = ctx.train_autocast().record()
    return out


def teacher_outputs(ctx: BuildContext, teacher_dir: Path, texts: Sequence[str],
                    with_cls: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """Teacher logits for `texts` (and, with_cls, its last-layer [CLS] states), computed once and
    cached on disk by teacher hash, text hash and pass (students of the same teacher share them).
    Logits alone come from the teacher's ONNX graph in onnxruntime (`slimbench.build.teacher_pass`);
    [CLS] states need torch."""
    from slimbench.build.teacher_pass import cached_outputs, teacher_logits
    from slimbench.build.train import encode_all, predict_logits_and_cls
    from slimbench.formats.torch_io import load_hf

    m = read_manifest(teacher_dir)
    key = hashlib.sha256(("\n".join(texts)).encode()).hexdigest()[:16]
    kind = "cls" if with_cls else "logits"
    cache = ctx.root / ".teacher-outputs" / f"{m['spec_hash'][:12]}-{key}-{kind}.npz"

    def compute() -> tuple[np.ndarray, np.ndarray | None]:
        teacher = load_hf(teacher_dir)
        seqs = encode_all(load_tokenizer(teacher_dir), texts, int(m["max_length"]))
        ctx.log(f"  computing teacher outputs for {len(texts)} texts (cached for later students)")
        with ctx.steps("teacher pass"):
            if with_cls:
                return predict_logits_and_cls(teacher, seqs, batch_size=64, desc="  teacher outputs")
            logits, _ = teacher_logits(teacher, seqs, int(m["max_length"]), batch_size=64,
                                       desc="  teacher outputs", log=ctx.log)
            return logits, None

    # a damaged file (a kill mid-write on another filesystem, a truncated copy) is computed again
    return cached_outputs(cache, len(texts), with_cls, compute, log=ctx.log)


def truncation_of(ctx: BuildContext, spec: VariantSpec) -> str:
    """A post-training step keeps its source's truncation: the model was trained with it."""
    while spec.steps and spec.source:
        spec = ctx.zoo.get(spec.source)
    return spec.truncation


def write_probe_manifest(ctx: BuildContext, directory: Path, spec: VariantSpec, record: dict[str, Any]) -> None:
    (directory / MANIFEST).write_text(json.dumps({"format": record["format"], "model_file": record["model_file"],
                                                  "max_length": spec.max_length,
                                                  "truncation": truncation_of(ctx, spec)}))


def logits_of(directory: Path, texts: Sequence[str], threads: int, desc: str | None = None) -> np.ndarray:
    """Logits of `texts` through the public runner, in batches of 64 in the given order; with `desc`,
    a progress bar."""
    runner = open_runner(directory, threads=threads)
    try:
        starts = progress_bar(range(0, len(texts), 64), desc)
        return np.concatenate([runner.predict_logits(texts[i : i + 64]) for i in starts])
    finally:
        runner.close()


def torch_logits(ctx: BuildContext, spec: VariantSpec, model: Any, out: Path, texts: Sequence[str]) -> np.ndarray:
    """Logits of an in-memory torch model, in batches of 64, encoded as the runtime will (the
    tokenizer in `out`, the spec's length and truncation)."""
    import torch

    from slimbench.runtimes.runners import Encoder

    encoder = Encoder(out / TOKENIZER_FILE, spec.max_length, truncation_of(ctx, spec))
    model.eval()
    parts = []
    with torch.inference_mode():
        for i in range(0, len(texts), 64):
            ids, mask = encoder(texts[i : i + 64])
            parts.append(model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)).logits.numpy())
    return np.concatenate(parts)
