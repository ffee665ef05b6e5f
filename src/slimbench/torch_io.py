"""Saving and loading torch classifiers as safetensors, fp32 and INT8, never through pickle.

fp32 models use the Hugging Face layout (config.json + model.safetensors). Dynamically quantized
models have no portable safetensors form, so we store each quantized Linear as its int8 weight
plus per-channel scales and zero points; loading rebuilds the module tree from config.json,
quantizes it the same way and drops the stored tensors in. The file is as small as INT8 really is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from slimbench.errors import ArtifactError

HF_WEIGHTS = "model.safetensors"
INT8_WEIGHTS = "model.int8.safetensors"


def _dynamic_linear_types() -> tuple[type, ...]:
    from torch.ao.nn.quantized.dynamic import Linear as DynLinear

    return (DynLinear,)


def quantize_dynamic_int8(model: nn.Module) -> nn.Module:
    """torch dynamic INT8 for every nn.Linear, per-output-channel weight scales."""
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    return quantize_dynamic(model, {nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8)


def save_hf(model: nn.Module, directory: Path) -> None:
    model.save_pretrained(directory, safe_serialization=True)


def save_int8(qmodel: nn.Module, config: Any, directory: Path) -> None:
    """Write config.json + model.int8.safetensors for a dynamically quantized model."""
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = {}
    dyn = _dynamic_linear_types()
    quantized_prefixes = []
    for name, module in qmodel.named_modules():
        if isinstance(module, dyn):
            weight, bias = module._weight_bias()
            quantized_prefixes.append(name)
            tensors[f"{name}.weight.int8"] = weight.int_repr().contiguous()
            tensors[f"{name}.weight.scale"] = weight.q_per_channel_scales().float().contiguous()
            tensors[f"{name}.weight.zero_point"] = weight.q_per_channel_zero_points().to(torch.int32).contiguous()
            if bias is not None:
                tensors[f"{name}.bias"] = bias.detach().contiguous()
    for key, value in qmodel.state_dict().items():
        if not isinstance(value, torch.Tensor) or value.is_quantized:
            continue
        if any(key.startswith(p + ".") for p in quantized_prefixes):
            continue
        tensors[key] = value.detach().contiguous()
    config.save_pretrained(directory)
    save_file(tensors, str(Path(directory) / INT8_WEIGHTS), metadata={"format": "slimbench-int8-v1"})


def _empty_model(config: Any) -> nn.Module:
    from transformers import AutoModelForSequenceClassification
    from transformers.initialization import no_init_weights

    with no_init_weights():
        return AutoModelForSequenceClassification.from_config(config)


def load_int8(directory: Path) -> nn.Module:
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(directory, local_files_only=True)
    path = Path(directory) / INT8_WEIGHTS
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError) as err:
        raise ArtifactError(f"cannot read {path}: {err}; the file is corrupt or truncated -- rebuild") from None
    model = quantize_dynamic_int8(_empty_model(config))
    dyn = _dynamic_linear_types()
    used: set[str] = set()
    for name, module in model.named_modules():
        if not isinstance(module, dyn):
            continue
        try:
            q = torch._make_per_channel_quantized_tensor(
                tensors[f"{name}.weight.int8"], tensors[f"{name}.weight.scale"].double(),
                tensors[f"{name}.weight.zero_point"].long(), 0)
        except KeyError as err:
            raise ArtifactError(f"{path} lacks tensor {err.args[0]} required by config.json") from None
        bias = tensors.get(f"{name}.bias")
        module.set_weight_bias(q, bias)
        used.update(k for k in tensors if k.startswith(name + ".weight.") or k == f"{name}.bias")
    # Quantized modules refuse load_state_dict without their private keys: copy the rest by name.
    params = dict(model.named_parameters())
    buffers = dict(model.named_buffers())
    unexpected = []
    for key, value in tensors.items():
        if key in used:
            continue
        target = params.get(key, buffers.get(key))
        if target is None:
            unexpected.append(key)
        elif target.shape != value.shape:
            raise ArtifactError(f"{path}: tensor {key} has shape {tuple(value.shape)}, config.json implies "
                                f"{tuple(target.shape)}")
        else:
            with torch.no_grad():
                target.copy_(value)
    missing = [k for k in params if k not in tensors]
    if missing or unexpected:
        raise ArtifactError(f"{path} does not match config.json: missing {missing[:3]}, unexpected {unexpected[:3]}")
    return model


def load_hf(directory: Path) -> nn.Module:
    from safetensors import SafetensorError
    from transformers import AutoModelForSequenceClassification

    if not (Path(directory) / "config.json").is_file():
        raise ArtifactError(f"{directory} has no config.json; it is not a Hugging Face checkpoint")
    try:
        return AutoModelForSequenceClassification.from_pretrained(directory, local_files_only=True)
    except (OSError, ValueError, RuntimeError, SafetensorError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ArtifactError(f"cannot load the model in {directory}: {first} -- the weights are corrupt, "
                            "truncated or do not match config.json; rebuild the variant") from None


def load_torch_model(directory: Path, fmt: str) -> nn.Module:
    if fmt == "hf":
        return load_hf(directory)
    if fmt == "torch-int8":
        return load_int8(directory)
    if fmt == "hf-pruned":
        from slimbench.build.prune import load_pruned

        return load_pruned(directory)
    raise ArtifactError(f"{directory}: format {fmt!r} is not a torch format")
