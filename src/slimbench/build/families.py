"""Encoder families: what each default recipe needs of a checkpoint's architecture, checked before
any work, and the module layout the recipes reach into.

A base checkpoint's `model_type` (config.json) names its family. The recipes were written against
BERT's module names (`encoder.layer[i].attention.self.query`, `intermediate.dense`, a pooler);
DistilBERT, RoBERTa (and XLM-R, the same code), ELECTRA and ALBERT hold the same computation under
other names, with other embeddings (RoBERTa's positions start after its padding id; ELECTRA and
ALBERT project a narrower embedding into the hidden width; DistilBERT has no token types) and other
classification heads. What this module cannot map -- ALBERT's one set of layer weights shared by
every layer, say, has no layer to copy or prune on its own -- is refused by `check`, before a build
starts, with one line naming the variant, the recipe, the family and why (`UnsupportedRecipe`).
docs/families.md is the table of every family through every default recipe (tests/test_families.py
builds it and checks the file).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slimbench.errors import BuildError
from slimbench.spec.schema import RUNTIMES, VariantSpec


class UnsupportedRecipe(BuildError):
    """A variant's recipe cannot be applied to its base checkpoint's architecture (refused before any work)."""


_ALBERT_SHARED = "ALBERT's layers share one set of weights"


@dataclass(frozen=True)
class Family:
    """One encoder family: its name, model types, the prefix of its layer list under the base model,
    the names of its Linear modules in BERT's terms, and the recipes it refuses (recipe -> why)."""

    name: str
    model_types: tuple[str, ...]
    layers: str = "encoder.layer"  # the ModuleList of layers, relative to the base model
    bert_names: tuple[tuple[str, str], ...] = ()  # (regex, replacement): a module name in BERT's terms
    refuses: Mapping[str, str] = field(default_factory=dict)
    position_offset: bool = False  # positions start at padding_idx + 1 (RoBERTa)


FAMILIES: tuple[Family, ...] = (
    Family("BERT", ("bert",)),
    Family("DistilBERT", ("distilbert",), layers="transformer.layer",
           bert_names=((r"\.transformer\.layer\.", ".encoder.layer."), (r"\.attention\.q_lin$", ".attention.self.query"),
                       (r"\.attention\.k_lin$", ".attention.self.key"), (r"\.attention\.v_lin$", ".attention.self.value"),
                       (r"\.attention\.out_lin$", ".attention.output.dense"), (r"\.ffn\.lin1$", ".intermediate.dense"),
                       (r"\.ffn\.lin2$", ".output.dense")),
           refuses={"prune-heads": "structured pruning slices BERT's attention modules (attention.self.query/key/"
                                   "value); DistilBERT's q_lin/k_lin/v_lin attention is not supported yet",
                    "prune-ffn": "structured pruning slices BERT's intermediate/output modules; DistilBERT's "
                                 "ffn.lin1/lin2 are not supported yet"}),
    Family("RoBERTa", ("roberta", "xlm-roberta", "camembert"), position_offset=True),
    Family("ELECTRA", ("electra",)),
    Family("ALBERT", ("albert",), layers="encoder.albert_layer_groups",
           bert_names=((r"\.albert_layer_groups\.(\d+)\.albert_layers\.(\d+)\.", r".layer.\1."),
                       (r"\.attention\.(query|key|value)$", r".attention.self.\1"),
                       (r"\.attention\.dense$", ".attention.output.dense"), (r"\.ffn$", ".intermediate.dense"),
                       (r"\.ffn_output$", ".output.dense")),
           refuses={"init-layers": f"{_ALBERT_SHARED} (one layer group applied num_hidden_layers times): there "
                                   "is no layer of its own to copy into a shallower student",
                    "prune-heads": f"{_ALBERT_SHARED}: removing a head removes it from every layer, and the "
                                   "pruned format describes per-layer BERT attention",
                    "prune-ffn": f"{_ALBERT_SHARED}: the pruned format describes per-layer BERT FFNs",
                    "magnitude": f"{_ALBERT_SHARED} in albert_layer_groups, which magnitude pruning does not "
                                 "walk (it prunes BERT-style encoder.layer[i] Linear modules)",
                    "onnx-fuse": "onnxruntime's transformer optimizer fuses only the first of ALBERT's "
                                 "shared-weight attention blocks (1 of num_hidden_layers)",
                    "numpy-reference": f"the NumPy runtime implements per-layer encoders; {_ALBERT_SHARED} "
                                       "behind an embedding projection, which it does not implement"}),
)

# What every recipe needs of the layout; refused for a model_type no family knows.
LAYOUT_RECIPES = ("distill", "init-layers", "inherit-width", "narrow-student", "prune-heads", "prune-ffn", "magnitude", "smooth", "onnx-fuse",
                  "numpy-reference")


def family_of(model_type: str) -> Family | None:
    return next((f for f in FAMILIES if model_type in f.model_types), None)


def known_types() -> str:
    return ", ".join(t for f in FAMILIES for t in f.model_types)


def requirements(spec: VariantSpec) -> list[str]:
    """The recipe steps of `spec` itself (its sources are checked as variants of their own)."""
    needs: list[str] = []
    if spec.runtime not in RUNTIMES:  # a runtime extension builds from its own table: no recipe steps
        return needs
    prune = spec.pruning
    if spec.prune:
        needs += ["prune-heads"] * (prune.heads > 0) + ["prune-ffn"] * (prune.ffn > 0) + ["magnitude"] * (prune.sparsity > 0)
    elif spec.method == "distill":
        needs.append("distill")
        if spec.init.get("layers"):
            needs.append("init-layers")
            if spec.architecture.get("hidden_size") is not None:
                needs.append("inherit-width")
        if spec.architecture.get("hidden_size") is not None:
            needs.append("narrow-student")
    elif spec.method == "finetune":
        needs.append("finetune")
    if spec.transforms.get("trim_vocab"):
        needs.append("trim-vocab")
    if "smooth_alpha" in spec.quantize:
        needs.append("smooth")
    needs += list(spec.steps)
    return needs


def root_base(ctx: Any, name: str) -> str | None:
    """The base (as the spec names it) at the root of `name`'s source chain."""
    for spec in ctx.zoo.ancestors(name):
        if spec.base:
            return str(spec.base)
    return None


def model_type_of(directory: Path) -> str:
    config = json.loads((Path(directory) / "config.json").read_text())
    return str(config.get("model_type", ""))


def tokenizer_model(directory: Path) -> str:
    """The tokenizer.json model type (WordPiece, BPE, Unigram, WordLevel) of a checkpoint; WordPiece when
    only a vocab.txt is there."""
    path = Path(directory) / "tokenizer.json"
    if not path.is_file():
        return "WordPiece"
    try:
        return str(json.loads(path.read_text(encoding="utf-8"))["model"]["type"])
    except (OSError, ValueError, KeyError, TypeError):
        return "unknown"


TRIMMABLE_TOKENIZERS = ("WordPiece", "BPE", "Unigram")


def refusal(spec: VariantSpec, model_type: str, tokenizer: str) -> str | None:
    """Why `spec` cannot be built from a base of `model_type` with a `tokenizer` tokenizer, or None."""
    family = family_of(model_type)
    for need in requirements(spec):
        if family is None and need in LAYOUT_RECIPES:
            return (f"{spec.name}: {need} is not supported for model_type {model_type!r}: slimbench knows the module "
                    f"layout of {known_types()} only")
        if family is not None and need in family.refuses:
            return f"{spec.name}: {need} is not supported for {family.name} ({model_type}): {family.refuses[need]}"
        if need == "inherit-width" and family is not None and family.name != "BERT":
            return (f"{spec.name}: inherit-width is not supported for {family.name} ({model_type}): init.layers into a "
                    "narrower student maps BERT's modules through a basis (slimbench.build.inherit), BERT only")
        if need == "trim-vocab" and tokenizer not in TRIMMABLE_TOKENIZERS:
            return (f"{spec.name}: trim-vocab is not supported for a {tokenizer} tokenizer (model_type "
                    f"{model_type}): vocabulary trimming rewrites {', '.join(TRIMMABLE_TOKENIZERS)} tokenizers")
    return None


def refusals(ctx: Any, names: Iterable[str]) -> dict[str, str]:
    """{variant: one-line reason} for every variant of `names` (and the sources they need) whose recipe
    its base checkpoint's family cannot take; nothing is loaded but config.json and tokenizer.json."""
    out: dict[str, str] = {}
    bases: dict[str, tuple[str, str]] = {}
    for spec in ctx.zoo.build_order(list(names)):
        blocked = [p for p in spec.parents() if p in out]
        if blocked:
            out[spec.name] = (f"{spec.name}: needs {blocked[0]!r}, which cannot be built "
                              f"({out[blocked[0]].split(': ', 1)[1]})")
            continue
        base = root_base(ctx, spec.name)
        if base is None or not requirements(spec):
            continue
        if base not in bases:
            from slimbench.build.context import RANDOM_BASE

            directory = ctx.resolve_base("minilm" if base == RANDOM_BASE else base)
            bases[base] = (model_type_of(directory), tokenizer_model(directory))
        why = refusal(spec, *bases[base])
        if why is not None:
            out[spec.name] = why
    return out


def check(ctx: Any, names: Iterable[str]) -> None:
    """Refuse, before any work, the variants of `names` (and their sources) the base cannot take."""
    refused = refusals(ctx, names)
    if refused:
        raise UnsupportedRecipe(f"nothing was built: {len(refused)} variant(s) cannot be built from this base "
                                f"checkpoint (leave them out with --variants): " + "; ".join(refused.values()))


# --- the module layout the recipes reach into -----------------------------------------------------


def model_family(model: Any) -> Family:
    model_type = str(getattr(model.config, "model_type", ""))
    family = family_of(model_type)
    if family is None:
        raise UnsupportedRecipe(f"model_type {model_type!r}: slimbench knows the module layout of {known_types()} only")
    return family


def bert_name(model: Any, name: str) -> str:
    """A module name of `model` in BERT's terms (`...encoder.layer.3.intermediate.dense`), so that
    module patterns written for BERT (a spec's smooth_modules) match every family's modules."""
    for pattern, replacement in model_family(model).bert_names:
        name = re.sub(pattern, replacement, name)
    return name


def embedding_width(config: Any) -> int:
    """The width of the embedding tables: ELECTRA's and ALBERT's embedding_size (projected into the
    hidden width), the hidden size elsewhere."""
    return int(getattr(config, "embedding_size", None) or config.hidden_size)


def student_architecture(teacher_config: Any, architecture: Mapping[str, int]) -> dict[str, int]:
    """A spec's [architecture] overrides (written in BERT's config keys) for a student of the teacher's
    family: DistilBERT's FFN width is `hidden_dim`; RoBERTa's positions start after its padding id,
    so it needs padding_idx + 1 more position embeddings than tokens; an ELECTRA or ALBERT student
    keeps its embedding no wider than its hidden size."""
    out = dict(architecture)
    model_type = getattr(teacher_config, "model_type", "")
    if model_type == "distilbert" and "intermediate_size" in out:
        out["hidden_dim"] = out.pop("intermediate_size")
    family = family_of(model_type)
    if family is not None and family.position_offset and "max_position_embeddings" in out:
        out["max_position_embeddings"] += int(teacher_config.pad_token_id) + 1
    if getattr(teacher_config, "embedding_size", None) and "hidden_size" in out:
        out["embedding_size"] = min(int(teacher_config.embedding_size), out["hidden_size"])
    return out


def position_rows(config: Any, max_length: int) -> int:
    """Position embeddings a sequence of `max_length` tokens reads (RoBERTa: after padding_idx + 1)."""
    family = family_of(str(getattr(config, "model_type", "")))
    return max_length + (int(config.pad_token_id) + 1 if family is not None and family.position_offset else 0)
