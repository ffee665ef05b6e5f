"""Fine-tuning a base checkpoint on the training split, and seed 000's randomly initialised
architecture (for size/latency/memory studies before any training exists)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from slimbench.build.context import RANDOM_BASE, BuildContext
from slimbench.build.recipes.common import (
    check_training_rows,
    count_parameters,
    set_label_groups,
    train_recipe,
    training_record,
)
from slimbench.errors import BuildError
from slimbench.runtimes.runners import TOKENIZER_FILE
from slimbench.spec.schema import VariantSpec


def finetune_recipe(ctx: BuildContext, spec: VariantSpec, out: Path) -> dict[str, Any]:
    """Fine-tune the base on the training split -- or, when the base already is a classifier for
    these labels (the user's own fine-tuned checkpoint), take it as it is."""
    import torch
    from safetensors import SafetensorError
    from tokenizers import Tokenizer
    from transformers import AutoModelForSequenceClassification

    from slimbench.build.base_models import classification_head, tokenizer_json
    from slimbench.build.train import encode_all, finetune
    from slimbench.formats.torch_io import load_hf, save_hf

    base = ctx.resolve_base(str(spec.base))
    splits = ctx.splits
    tok_json = tokenizer_json(base)
    record: dict[str, Any] = {"format": "hf", "model_file": "model.safetensors",
                              "base": ctx.effective_base(str(spec.base))}
    groups = splits.groups.to_json() if splits.groups is not None else None
    if ctx.effective_base(str(spec.base)) != "minilm" and classification_head(base, splits.num_labels, groups):
        heads = f"head for label groups {', '.join(splits.groups.names)}" if splits.groups else \
            f"{splits.num_labels}-class head"
        ctx.log(f"  {base} already has a {heads}: used as it is, no training")
        model = load_hf(base, user_checkpoint=True)
        record["training"] = None
        record["used_as_is"] = True
    else:
        check_training_rows(ctx, spec, "fine-tuning")
        torch.manual_seed(spec.recipe.seed)
        try:
            # ignore_mismatched_sizes lets a head of another label count be replaced; any other
            # mismatch means config.json does not describe these weights, which we refuse below.
            model, info = AutoModelForSequenceClassification.from_pretrained(
                base, num_labels=splits.num_labels, id2label=dict(enumerate(splits.labels)),
                label2id={n: i for i, n in enumerate(splits.labels)}, local_files_only=True,
                ignore_mismatched_sizes=True, output_loading_info=True, use_safetensors=True)
        except (OSError, ValueError, RuntimeError, SafetensorError) as err:
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise BuildError(f"cannot load base model {base}: {first} -- the weights are corrupt, truncated "
                             "or do not match config.json") from None
        head = ("classifier", "pooler", "pre_classifier", "score")
        bad = [str(k[0] if isinstance(k, tuple) else k) for k in info.get("mismatched_keys", [])]
        bad += [str(k) for k in info.get("missing_keys", [])]
        bad = [k for k in bad if not any(part in k for part in head)]
        if bad:
            raise BuildError(f"the weights in {base} do not match its config.json ({len(bad)} tensors, e.g. "
                             f"{bad[0]}); fix config.json or re-save the checkpoint")
        try:
            tok = Tokenizer.from_str(tok_json)
        except Exception as err:  # tokenizers raises a bare Exception on malformed JSON
            raise BuildError(f"cannot load the tokenizer of {base}: {err}") from None
        train_seqs = encode_all(tok, [e.text for e in splits.train], spec.max_length)
        val_seqs = encode_all(tok, [e.text for e in splits.val], spec.max_length)
        set_label_groups(model.config, splits)
        with ctx.steps("train"):
            result = finetune(model, train_seqs, [e.target for e in splits.train], val_seqs,
                              [e.target for e in splits.val], train_recipe(ctx, spec), desc=f"{spec.name} finetune",
                              groups=splits.groups)
        record["training"] = training_record(result, ctx, spec)
    with ctx.steps("save"):
        save_hf(model, out)
    (out / TOKENIZER_FILE).write_text(tok_json, encoding="utf-8")
    record["parameters"] = count_parameters(model)
    return record


def random_init(ctx: BuildContext, spec: VariantSpec, out: Path) -> dict[str, Any]:
    """Seed 000's idea: a model defined only by its architecture, randomly initialised -- for size,
    load, latency and memory studies before any training exists. Its accuracy is chance."""
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from slimbench.build.base_models import tokenizer_json
    from slimbench.formats.torch_io import save_hf

    reference = ctx.resolve_base("minilm")  # its tokenizer and its config's defaults
    config = AutoConfig.from_pretrained(reference, local_files_only=True)
    for key, value in spec.architecture.items():
        setattr(config, key, value)
    config.num_labels = ctx.splits.num_labels
    config.id2label = dict(enumerate(ctx.splits.labels))
    config.label2id = {n: i for i, n in enumerate(ctx.splits.labels)}
    set_label_groups(config, ctx.splits)
    torch.manual_seed(spec.recipe.seed)
    model = AutoModelForSequenceClassification.from_config(config)
    save_hf(model, out)
    (out / TOKENIZER_FILE).write_text(tokenizer_json(reference), encoding="utf-8")
    return {"format": "hf", "model_file": "model.safetensors", "parameters": count_parameters(model),
            "base": RANDOM_BASE, "untrained": True, "training": None}
