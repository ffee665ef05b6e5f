"""Knowledge distillation of a smaller student from a torch fp32 teacher variant (logits, optionally
the last [CLS] state or every layer's hidden states; transfer and augmented text labelled by the
teacher)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from slimbench.build.context import BuildContext
from slimbench.build.families import embedding_width, student_architecture
from slimbench.build.recipes.common import (
    check_training_rows,
    count_parameters,
    teacher_outputs,
    train_recipe,
    training_record,
)
from slimbench.errors import BuildError
from slimbench.formats.pruned import encoder_layers
from slimbench.runtimes.runners import TOKENIZER_FILE, read_manifest
from slimbench.spec.schema import VariantSpec


def distill_recipe(ctx: BuildContext, spec: VariantSpec, out: Path) -> dict[str, Any]:
    from tokenizers import Tokenizer

    from slimbench.build.train import augment, distill, encode_all
    from slimbench.formats.torch_io import save_hf

    teacher_dir = ctx.artifact_dir(str(spec.source))
    tm = read_manifest(teacher_dir)
    if tm.get("format") != "hf":
        raise BuildError(f"{spec.name}: teacher {spec.source!r} must be a torch fp32 variant, not {tm.get('format')}")
    check_training_rows(ctx, spec, "distillation")
    splits = ctx.splits
    train_texts = [e.text for e in splits.train]
    transfer = list(ctx.transfer_loader()) if spec.recipe.transfer_data else []
    copies = spec.recipe.augment_copies
    augmented = augment(train_texts, copies, seed=spec.recipe.seed) if copies else []
    texts = train_texts + transfer + augmented
    unlabelled = -1 if splits.groups is None else (-1,) * len(splits.groups.groups)
    labels = [e.target for e in splits.train] + [unlabelled] * (len(transfer) + len(augmented))
    teacher_logits, teacher_cls = teacher_outputs(ctx, teacher_dir, texts, with_cls=spec.recipe.hidden_weight > 0)

    with ctx.steps("init student"):
        student, student_tok_json = init_student(ctx, spec, teacher_dir, train_texts)
    student_tok = Tokenizer.from_str(json.dumps(student_tok_json))
    seqs = encode_all(student_tok, texts, spec.max_length, spec.truncation)
    val_seqs = encode_all(student_tok, [e.text for e in splits.val], spec.max_length, spec.truncation)
    layer_teacher = _layer_teacher(ctx, spec, teacher_dir, student, student_tok_json)
    with ctx.steps("train"):
        result = distill(student, seqs, teacher_logits, labels, val_seqs, [e.target for e in splits.val],
                         train_recipe(ctx, spec), desc=f"{spec.name} distill", teacher_cls=teacher_cls,
                         layer_teacher=layer_teacher, groups=splits.groups)
    with ctx.steps("save"):
        save_hf(student, out)
    (out / TOKENIZER_FILE).write_text(json.dumps(student_tok_json, ensure_ascii=False))
    return {"format": "hf", "model_file": "model.safetensors", "parameters": count_parameters(student),
            "teacher": spec.source, "transfer_texts": len(transfer), "augmented_texts": len(augmented),
            "vocab_size": student.config.vocab_size, "training": training_record(result, ctx, spec)}


def _layer_teacher(ctx: BuildContext, spec: VariantSpec, teacher_dir: Path, student: Any,
                   student_tok_json: dict[str, Any]) -> Any:
    """The teacher for intermediate-layer distillation (`layer_weight` > 0), with the table from the
    student's (possibly trimmed) vocabulary to the teacher's ids; None when the recipe does not ask."""
    from slimbench.build.train import LayerTeacher, layer_pairs
    from slimbench.formats.torch_io import load_hf

    if not spec.recipe.layer_weight:
        return None
    teacher = load_hf(teacher_dir)
    teacher_vocab = json.loads((teacher_dir / TOKENIZER_FILE).read_text())["model"]["vocab"]
    ids = vocabulary_table(student_tok_json["model"]["vocab"], teacher_vocab)
    pairs = layer_pairs(student.config.num_hidden_layers, teacher.config.num_hidden_layers)
    ctx.log(f"  intermediate-layer distillation (weight {spec.recipe.layer_weight}): student layer -> teacher "
            f"layer {', '.join(f'{s}->{t}' for s, t in pairs)}, the teacher run on every batch")
    return LayerTeacher(teacher, ids)


def vocabulary_table(student_vocab: dict[str, int], teacher_vocab: dict[str, int]) -> Any:
    """A tensor mapping each student token id to the teacher's id of the same token (the trimmed
    vocabulary keeps a subset of the teacher's tokens); None when the vocabularies are the same."""
    import torch

    if student_vocab == teacher_vocab:
        return None
    table = [0] * len(student_vocab)
    for token, new_id in student_vocab.items():
        table[new_id] = teacher_vocab[token]
    return torch.tensor(table, dtype=torch.long)


def init_student(ctx: BuildContext, spec: VariantSpec, teacher_dir: Path,
                 train_texts: list[str]) -> tuple[Any, dict[str, Any]]:
    """The untrained student (the teacher's config with the spec's architecture) and its tokenizer
    JSON: the vocabulary trimmed to the training split's tokens if asked, embeddings copied or
    PCA-projected from the teacher, and the teacher's layers copied where `init.layers` says (into a
    narrower student: inherited through the basis `init.width` names, `slimbench.build.inherit`)."""
    import torch
    from tokenizers import Tokenizer
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from slimbench.build.compress import trim_vocabulary
    from slimbench.build.train import encode_all
    from slimbench.formats.torch_io import load_hf

    teacher_tok_json = json.loads((teacher_dir / TOKENIZER_FILE).read_text())
    teacher_tok = Tokenizer.from_str(json.dumps(teacher_tok_json))
    teacher = load_hf(teacher_dir)
    kept: list[int] | None = None
    if spec.transforms.get("trim_vocab"):
        used = {i for seq in encode_all(teacher_tok, train_texts, 512) for i in seq}
        student_tok_json, kept = trim_vocabulary(teacher_tok_json, used)
        ctx.log(f"  vocabulary trimmed to {len(kept)} of {len(teacher_tok_json['model']['vocab'])} tokens")
    else:
        student_tok_json = teacher_tok_json
    config = AutoConfig.from_pretrained(teacher_dir, local_files_only=True)
    layers = spec.init.get("layers")
    architecture = student_architecture(teacher.config, spec.architecture)
    if layers:
        layers = fit_layers(list(layers), teacher.config.num_hidden_layers)
        if list(layers) != list(spec.init["layers"]):
            ctx.log(f"  init.layers {list(spec.init['layers'])} name layers {spec.source!r} does not have (it has "
                    f"{teacher.config.num_hidden_layers}): the same stride over its depth instead, layers {layers}")
            architecture["num_hidden_layers"] = len(layers)
    for key, value in architecture.items():
        setattr(config, key, value)
    if kept is not None:
        config.vocab_size = len(kept)
    torch.manual_seed(spec.recipe.seed)
    student = AutoModelForSequenceClassification.from_config(config)
    if layers and config.hidden_size != teacher.config.hidden_size:
        _inherit_narrower(ctx, spec, teacher, student, teacher_tok, train_texts, kept, layers)
        return student, student_tok_json
    if layers and not (0 <= min(layers) <= max(layers) < teacher.config.num_hidden_layers
                       and len(layers) == config.num_hidden_layers):
        raise BuildError(f"{spec.name}: init.layers {list(layers)} must name {config.num_hidden_layers} of the "
                         f"teacher's layers 0-{teacher.config.num_hidden_layers - 1}")
    with torch.no_grad():
        _init_embeddings(spec, teacher, student, kept)
        if layers:
            t_layers, s_layers = encoder_layers(teacher), encoder_layers(student)
            for k, i in enumerate(layers):
                s_layers[k].load_state_dict(t_layers[i].state_dict())
            if getattr(teacher.base_model, "pooler", None) is not None:
                student.base_model.pooler.load_state_dict(teacher.base_model.pooler.state_dict())
            for name, head in student.named_children():  # the classifier (DistilBERT: and its pre_classifier)
                if name != student.base_model_prefix and any(True for _ in head.parameters()):
                    head.load_state_dict(getattr(teacher, name).state_dict())
    return student, student_tok_json


def fit_layers(layers: list[int], depth: int) -> list[int]:
    """`init.layers` for a teacher of `depth` layers: as written when they exist; an evenly strided
    list written for a deeper teacher (the default `light` keeps every other layer of the 6-layer
    MiniLM, [0, 2, 4]) takes the same stride from the same first layer over this teacher's depth:
    [0, 2] of 4 layers, [0] of 2. Anything else is left for the caller to refuse."""
    steps = {b - a for a, b in zip(layers, layers[1:], strict=False)}
    if max(layers) < depth or len(layers) < 2 or len(steps) != 1 or min(steps) < 1 or not 0 <= layers[0] < depth:
        return layers
    return list(range(layers[0], depth, steps.pop()))


CALIBRATION_TEXTS = 512


def _inherit_narrower(ctx: BuildContext, spec: VariantSpec, teacher: Any, student: Any,
                      teacher_tok: Any, train_texts: list[str], kept: list[int] | None, layers: list[int]) -> None:
    """`init.layers` into a student narrower than its teacher: through the basis `init.width` says,
    keeping each layer's most important heads and FFN neurons (measured on the first
    CALIBRATION_TEXTS training texts)."""
    import torch

    from slimbench.build import inherit
    from slimbench.build.train import encode_all

    how = spec.init.get("width")
    if how is None:
        raise BuildError(f"{spec.name}: init.layers into a narrower student needs init.width "
                         f"({', '.join(inherit.BASES)}): how the teacher's width maps to the student's")
    if not 0 <= min(layers) <= max(layers) < teacher.config.num_hidden_layers or len(layers) != student.config.num_hidden_layers:
        raise BuildError(f"{spec.name}: init.layers {layers} must name {student.config.num_hidden_layers} of the "
                         f"teacher's layers 0-{teacher.config.num_hidden_layers - 1}")
    seqs = encode_all(teacher_tok, train_texts[:CALIBRATION_TEXTS], spec.max_length, spec.truncation)
    imp = inherit.importance(teacher, seqs, states=how == "states")
    rows = torch.tensor(kept) if kept is not None else torch.arange(student.config.vocab_size)
    word = teacher.base_model.embeddings.word_embeddings.weight.detach()[rows]
    u = inherit.basis(how, teacher.config.hidden_size, student.config.hidden_size, word=word, imp=imp)
    record = inherit.inherit(teacher, student, layers, u, imp, rows)
    ctx.log(f"  teacher layers {layers} inherited through the {how} basis: heads "
            + "; ".join(",".join(map(str, r["heads"])) for r in record) + f", {record[0]['neurons']} FFN neurons each")


def _init_embeddings(spec: VariantSpec, teacher: Any, student: Any, kept: list[int] | None) -> None:
    """Student embeddings from the teacher's (rows of the kept vocabulary): copied when the widths
    match, PCA-projected to the student's width, or left random (`init.embeddings`)."""
    import torch

    from slimbench.build.compress import pca_projection

    t_emb, s_emb, config = teacher.base_model.embeddings, student.base_model.embeddings, student.config
    rows = torch.tensor(kept) if kept is not None else torch.arange(config.vocab_size)
    word = t_emb.word_embeddings.weight[rows]
    npos = s_emb.position_embeddings.weight.shape[0]
    width, t_width = embedding_width(config), embedding_width(teacher.config)
    types = getattr(t_emb, "token_type_embeddings", None)  # DistilBERT has none
    how = spec.init.get("embeddings", "copy" if width == t_width else "random")
    if how == "copy":
        s_emb.word_embeddings.weight.copy_(word)
        s_emb.position_embeddings.weight.copy_(t_emb.position_embeddings.weight[:npos])
        if types is not None:
            s_emb.token_type_embeddings.weight.copy_(types.weight)
        s_emb.LayerNorm.load_state_dict(t_emb.LayerNorm.state_dict())
        project = getattr(teacher.base_model, "embeddings_project", None)  # ELECTRA: embedding -> hidden width
        if project is not None and config.hidden_size == teacher.config.hidden_size:
            student.base_model.embeddings_project.load_state_dict(project.state_dict())
    elif how == "pca":
        _, comps = pca_projection(word.numpy(), width)
        proj = torch.zeros(word.shape[1], width)  # [teacher width, student width]
        proj[:, : comps.shape[0]] = torch.from_numpy(comps.T.copy())  # zero-padded if the student is wider
        s_emb.word_embeddings.weight.copy_(word @ proj)
        s_emb.position_embeddings.weight.copy_(t_emb.position_embeddings.weight[:npos] @ proj)
        if types is not None:
            s_emb.token_type_embeddings.weight.copy_(types.weight @ proj)
    elif how != "random":
        raise BuildError(f"{spec.name}: init.embeddings must be copy, pca or random, got {how!r}")
