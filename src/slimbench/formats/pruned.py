"""The pruned-checkpoint format ("hf-pruned"): what a physically pruned BERT looks like on disk.

A pruned model has per-layer sizes that its config.json cannot express, so it is saved with a
`structure.json` ({"heads": [...], "intermediate": [...], "head_size": d}); loading builds the model
from the original config, reshapes it with `apply_structure` (the same physical slicing that
pruning does: `prune_heads`, `prune_ffn`) and loads the weights strictly. The runtime loads this
format without knowing how the pruning was chosen (`slimbench.build.prune`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from slimbench.errors import ArtifactError

STRUCTURE_FILE = "structure.json"
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
STRUCTURE_FORMAT = "slimbench-pruned-v1"


def encoder_layers(model: nn.Module) -> nn.ModuleList:
    """The layer list of a BERT-style model: `encoder.layer` under the base model (BERT, RoBERTa, ELECTRA),
    `transformer.layer` (DistilBERT)."""
    base = getattr(model, "base_model", model)
    layers = getattr(getattr(base, "encoder", None), "layer", None)
    if layers is None:
        layers = getattr(getattr(base, "transformer", None), "layer", None)
    if not isinstance(layers, nn.ModuleList) or not all(hasattr(layer, "attention") for layer in layers):
        raise TypeError(f"{type(model).__name__} is not a BERT-style model (no encoder.layer[i].attention)")
    return layers


def _head_size(model: nn.Module) -> int:
    return int(encoder_layers(model)[0].attention.self.attention_head_size)


def _num_heads(layer: nn.Module) -> int:
    att = layer.attention.self
    return int(att.query.out_features // att.attention_head_size)


def _slice_linear(linear: nn.Linear, rows: torch.Tensor | None = None, cols: torch.Tensor | None = None) -> None:
    """Keep only `rows` (outputs) and/or `cols` (inputs) of a Linear, in place (the module object stays)."""
    if hasattr(linear, "weight_orig"):
        raise ValueError("this model carries magnitude-pruning masks; call make_permanent(model) before "
                         "structured pruning")
    with torch.no_grad():
        weight = linear.weight
        if rows is not None:
            weight = weight.index_select(0, rows.to(weight.device))
            if linear.bias is not None:
                bias = linear.bias.index_select(0, rows.to(weight.device))
                linear.bias = nn.Parameter(bias.clone(), requires_grad=linear.bias.requires_grad)
        if cols is not None:
            weight = weight.index_select(1, cols.to(weight.device))
        linear.weight = nn.Parameter(weight.clone().contiguous(), requires_grad=linear.weight.requires_grad)
    linear.out_features, linear.in_features = linear.weight.shape


def _checked_units(units: Iterable[int], available: int, what: str, layer: int) -> list[int]:
    chosen = sorted({int(u) for u in units})
    bad = [u for u in chosen if not 0 <= u < available]
    if bad:
        raise ValueError(f"layer {layer} has {available} {what}; cannot keep {bad}")
    return chosen


def prune_heads(model: nn.Module, keep: Mapping[int, Sequence[int]]) -> None:
    """Physically keep only the listed heads (current indices) of each listed layer; others untouched.

    Slices the query/key/value output rows and the attention.output.dense input columns, and sets
    `num_attention_heads` / `all_head_size` of that layer's BertSelfAttention (its forward infers the
    head count from the tensor shapes). Every layer must keep >= 1 head (ValueError otherwise).
    """
    layers = encoder_layers(model)
    for index, heads in keep.items():
        if not 0 <= index < len(layers):
            raise ValueError(f"layer {index} does not exist (the model has {len(layers)})")
        layer = layers[index]
        att = layer.attention.self
        chosen = _checked_units(heads, _num_heads(layer), "heads", index)
        if not chosen:
            raise ValueError(f"layer {index} must keep at least one head (a BERT layer cannot run without)")
        d = att.attention_head_size
        idx = torch.cat([torch.arange(h * d, (h + 1) * d) for h in chosen])
        for linear in (att.query, att.key, att.value):
            _slice_linear(linear, rows=idx)
        _slice_linear(layer.attention.output.dense, cols=idx)
        att.num_attention_heads = len(chosen)
        att.all_head_size = len(chosen) * d


def prune_ffn(model: nn.Module, keep: Mapping[int, Sequence[int]]) -> None:
    """Physically keep only the listed intermediate neurons of each listed layer (may be none).

    Slices intermediate.dense output rows (and bias) and output.dense input columns. With no neuron
    left, the layer's FFN adds just output.dense's bias, exactly as if every neuron were zero.
    """
    layers = encoder_layers(model)
    for index, neurons in keep.items():
        if not 0 <= index < len(layers):
            raise ValueError(f"layer {index} does not exist (the model has {len(layers)})")
        layer = layers[index]
        chosen = _checked_units(neurons, layer.intermediate.dense.out_features, "neurons", index)
        idx = torch.tensor(chosen, dtype=torch.long)
        _slice_linear(layer.intermediate.dense, rows=idx)
        _slice_linear(layer.output.dense, cols=idx)


def structure_of(model: nn.Module) -> dict[str, Any]:
    """Per-layer shapes of a (possibly pruned) model, JSON-serialisable: heads kept, intermediate size."""
    layers = encoder_layers(model)
    return {"format": STRUCTURE_FORMAT, "head_size": _head_size(model),
            "heads": [_num_heads(layer) for layer in layers],
            "intermediate": [layer.intermediate.dense.out_features for layer in layers]}


def apply_structure(model: nn.Module, structure: Mapping[str, Any]) -> None:
    """Reshape a model (normally fresh from its original config) to `structure`; weight values are junk.

    Keeps the first n heads / neurons of each layer: load the pruned state dict right after.
    Raises ValueError when the structure does not fit the model.
    """
    layers = encoder_layers(model)
    try:
        heads = [int(h) for h in structure["heads"]]
        inter = [int(n) for n in structure["intermediate"]]
        head_size = int(structure["head_size"])
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"structure needs 'heads', 'intermediate' and 'head_size' lists/ints ({err!r})") from None
    if len(heads) != len(layers) or len(inter) != len(layers):
        raise ValueError(f"structure describes {len(heads)} / {len(inter)} layers, the model has {len(layers)}")
    if head_size != _head_size(model):
        raise ValueError(f"structure head_size {head_size} != the model's {_head_size(model)}")
    for i, layer in enumerate(layers):
        if not 1 <= heads[i] <= _num_heads(layer):
            raise ValueError(f"layer {i}: {heads[i]} heads, the model allows 1..{_num_heads(layer)}")
        if not 0 <= inter[i] <= layer.intermediate.dense.out_features:
            raise ValueError(f"layer {i}: intermediate size {inter[i]}, the model allows "
                             f"0..{layer.intermediate.dense.out_features}")
    prune_heads(model, {i: range(h) for i, h in enumerate(heads) if h < _num_heads(layers[i])})
    prune_ffn(model, {i: range(n) for i, n in enumerate(inter) if n < layers[i].intermediate.dense.out_features})


def save_pruned(model: nn.Module, directory: Path | str) -> Path:
    """Write config.json (the original config), model.safetensors and structure.json; returns the directory.

    The model must carry no magnitude-pruning masks (call `make_permanent` first).
    """
    from safetensors.torch import save_file

    directory = Path(directory)
    state = model.state_dict()
    if any(k.endswith(("_orig", "_mask")) for k in state):
        raise ValueError("the model carries magnitude-pruning masks; call make_permanent(model) before saving")
    directory.mkdir(parents=True, exist_ok=True)
    model.config.save_pretrained(directory)
    tensors = {k: v.detach().contiguous() for k, v in state.items()}
    save_file(tensors, str(directory / WEIGHTS_FILE), metadata={"format": "pt"})
    (directory / STRUCTURE_FILE).write_text(json.dumps(structure_of(model), indent=2) + "\n")
    return directory


def load_pruned(directory: Path | str) -> nn.Module:
    """A model saved by `save_pruned`, in eval mode; ArtifactError naming the file on any problem."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModelForSequenceClassification
    from transformers.initialization import no_init_weights

    directory = Path(directory)
    config_path, weights_path, structure_path = (directory / f for f in (CONFIG_FILE, WEIGHTS_FILE, STRUCTURE_FILE))
    for path in (config_path, weights_path, structure_path):
        if not path.is_file():
            raise ArtifactError(f"{path} is missing; {directory} is not a complete pruned checkpoint -- "
                                "save it again with save_pruned (rebuild the variant)")
    try:
        structure = json.loads(structure_path.read_text())
    except (OSError, ValueError) as err:
        raise ArtifactError(f"cannot read {structure_path}: {err}; rebuild the variant") from None
    try:
        config = AutoConfig.from_pretrained(directory, local_files_only=True)
    except (OSError, ValueError) as err:
        raise ArtifactError(f"cannot read {config_path}: {err}; rebuild the variant") from None
    with no_init_weights():
        model = AutoModelForSequenceClassification.from_config(config)
    try:
        apply_structure(model, structure)
    except (ValueError, TypeError) as err:
        raise ArtifactError(f"{structure_path} does not fit {config_path}: {err}; rebuild the variant") from None
    try:
        tensors = load_file(str(weights_path))
    except (SafetensorError, OSError) as err:
        raise ArtifactError(f"cannot read {weights_path}: {err}; the file is corrupt or truncated -- rebuild") from None
    expected = model.state_dict()
    missing = [k for k in expected if k not in tensors]
    unexpected = [k for k in tensors if k not in expected]
    if missing or unexpected:
        raise ArtifactError(f"{weights_path} does not match {structure_path}: missing {missing[:3]}, "
                            f"unexpected {unexpected[:3]}; rebuild the variant")
    for key, value in tensors.items():
        if value.shape != expected[key].shape:
            raise ArtifactError(f"{weights_path}: tensor {key} has shape {tuple(value.shape)}, {structure_path} "
                                f"implies {tuple(expected[key].shape)}; the two files disagree -- rebuild the variant")
    model.load_state_dict(tensors, strict=True)
    return model.eval()
