"""Saving and loading torch classifiers as safetensors, fp32 and INT8, never through pickle.

fp32 models use the Hugging Face layout (config.json + model.safetensors). Dynamically quantized
models have no portable safetensors form, so we store each quantized Linear as its int8 weight
plus per-channel scales and zero points; loading rebuilds the module tree from config.json,
quantizes it the same way and drops the stored tensors in. The file is as small as INT8 really is.

SmoothQuant-style smoothing (`smooth_linears`) may precede quantization: each Linear's input channel
j is divided by s_j and its weight column multiplied by s_j -- exact in fp32 -- so that the few
activation channels with outliers no longer set the per-tensor INT8 range of every other channel.
BERT is post-LayerNorm (a LayerNorm's output is also the residual), so s cannot be folded into the
LayerNorm as in pre-LN models: the division is an explicit elementwise multiply (`SmoothedLinear`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection, Sequence
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


def quantize_dynamic_int8(model: nn.Module, keep_fp32: Sequence[str] = (),
                          only: Collection[str] | None = None) -> nn.Module:
    """torch dynamic INT8 (per-output-channel weight scales) for every nn.Linear except those whose
    module name starts with a prefix in `keep_fp32`; `only`: exactly these modules (a saved model's list)."""
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    chosen = [n for n in names if not n.startswith(tuple(keep_fp32))] if only is None else list(only)
    return quantize_dynamic(model, dict.fromkeys(chosen, per_channel_dynamic_qconfig), dtype=torch.qint8)


class SmoothedLinear(nn.Module):
    """`linear(x * inv_scale)`: a Linear whose weight columns were multiplied by 1 / inv_scale."""

    def __init__(self, inv_scale: torch.Tensor, linear: nn.Module):
        super().__init__()
        self.register_buffer("inv_scale", inv_scale)
        self.linear = linear

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x * self.inv_scale)


def linear_input_absmax(model: nn.Module, batches: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """Per input channel, the largest |activation| each nn.Linear of `model` sees over `batches`
    (dicts of numpy input_ids / attention_mask) -- at every position, padding included: dynamic INT8
    takes one range over the whole batch tensor, padded rows too. Calibrated on real tokens only, the
    smoothed model's padded rows set that range (validation agreement with fp32 in batches of 64
    fell to 0.94-0.95, against 0.985 calibrated as here; the same 0.984 at batch 1)."""
    absmax: dict[str, torch.Tensor] = {}

    def hook(name: str) -> Any:
        def record(_module: nn.Module, inputs: tuple[torch.Tensor, ...], _out: Any) -> None:
            x = inputs[0].detach()
            peak = x.abs().reshape(-1, x.shape[-1]).amax(0)
            absmax[name] = torch.maximum(absmax[name], peak) if name in absmax else peak
        return record

    handles = [m.register_forward_hook(hook(n)) for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    try:
        with torch.inference_mode():
            for feed in batches:
                model(input_ids=torch.from_numpy(feed["input_ids"]), attention_mask=torch.from_numpy(feed["attention_mask"]))
    finally:
        for h in handles:
            h.remove()
    return absmax


SMOOTH_ALL = r"encoder\."  # every Linear of the transformer blocks (not the pooler, not the head)


def smooth_linears(model: nn.Module, input_absmax: dict[str, torch.Tensor], alpha: float,
                   modules: str = SMOOTH_ALL, alias: Callable[[str], str] | None = None) -> list[str]:
    """SmoothQuant scaling, in place, of every nn.Linear in `input_absmax` whose name matches the
    regular expression `modules` (re.search): s_j = max|x_j|**alpha / max|W_:,j|**(1 - alpha); the
    weight's column j is multiplied by s_j and the module replaced by a SmoothedLinear dividing input
    j by s_j. The model computes the same function in fp32; returns the names of the replaced modules.
    Each costs one elementwise multiply per call (measured: all 36 of MiniLM-L6's encoder Linears
    ~8-11 % of quantized batch-1 latency). `alias`: the name `modules` is matched against (a module
    name in BERT's terms, for other encoder families: slimbench.build.families.bert_name)."""
    done = []
    for name, module in list(model.named_modules()):
        if not isinstance(module, nn.Linear) or name not in input_absmax or not re.search(modules, alias(name) if alias else name):
            continue
        with torch.no_grad():
            w = module.weight.abs().amax(0).clamp(min=1e-5)
            s = (input_absmax[name].float().clamp(min=1e-5) ** alpha / w ** (1 - alpha)).clamp(min=1e-5)
            module.weight.mul_(s)
        _replace(model, name, SmoothedLinear(1 / s, module))
        done.append(name)
    return done


def _wrap_smoothed(model: nn.Module, names: Sequence[str]) -> None:
    """Replace the named Linear modules by SmoothedLinear with a placeholder scale (loaded later)."""
    for name in names:
        module = model.get_submodule(name)
        if not isinstance(module, nn.Linear):
            raise ArtifactError(f"smoothed module {name!r} is not a Linear of the model config.json describes")
        _replace(model, name, SmoothedLinear(torch.ones(module.in_features), module))


def _replace(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent), child, module)


def save_hf(model: nn.Module, directory: Path) -> None:
    model.save_pretrained(directory, safe_serialization=True)


def save_int8(qmodel: nn.Module, config: Any, directory: Path) -> None:
    """Write config.json + model.int8.safetensors for a dynamically quantized model (smoothed
    modules' input scales included)."""
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = {}
    dyn = _dynamic_linear_types()
    quantized_prefixes = []
    for name, module in qmodel.named_modules():
        if isinstance(module, dyn):
            weight, bias = module._weight_bias()  # type: ignore[attr-defined]
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
    metadata = {"format": "slimbench-int8-v1", "quantized_modules": json.dumps(quantized_prefixes)}
    smoothed = [name for name, module in qmodel.named_modules() if isinstance(module, SmoothedLinear)]
    if smoothed:
        metadata["smoothed_modules"] = json.dumps(smoothed)
    save_file(tensors, str(Path(directory) / INT8_WEIGHTS), metadata=metadata)


def _empty_model(config: Any) -> nn.Module:
    from transformers import AutoModelForSequenceClassification
    from transformers.initialization import no_init_weights

    with no_init_weights():
        return AutoModelForSequenceClassification.from_config(config)


def load_int8(directory: Path) -> nn.Module:
    """The torch dynamic-INT8 model saved in `directory` (INT8_WEIGHTS), checked against its config."""
    path = Path(directory) / INT8_WEIGHTS
    config = _int8_config(directory)
    tensors, listed, smoothed = _read_int8_file(path)
    try:  # files written before the list was stored quantized every Linear
        model = _empty_model(config)
        _wrap_smoothed(model, smoothed)
        model = quantize_dynamic_int8(model, only=None if listed is None else json.loads(listed))
    except ArtifactError:
        raise
    except Exception as err:  # config.json values the model classes cannot build from
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ArtifactError(f"cannot build the model config.json in {directory} describes: {first}; "
                            f"{ARTIFACT_FIX}") from None
    used = _set_quantized_weights(model, tensors, path)
    _copy_the_rest(model, tensors, used, smoothed, path)
    return model


def _int8_config(directory: Path) -> Any:
    from transformers import AutoConfig

    _require_config(directory, user_checkpoint=False)
    try:
        return AutoConfig.from_pretrained(directory, local_files_only=True)
    except Exception as err:  # a malformed config.json: any exception type
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ArtifactError(f"cannot read {Path(directory) / 'config.json'}: {first}; {ARTIFACT_FIX}") from None


def _read_int8_file(path: Path) -> tuple[dict[str, torch.Tensor], str | None, list[str]]:
    """(tensors, the quantized modules' JSON list or None, the smoothed modules) of an INT8 file."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            smoothed = json.loads(metadata.get("smoothed_modules", "[]"))
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118  (the handle is not iterable)
            return tensors, metadata.get("quantized_modules"), smoothed
    except (SafetensorError, OSError, ValueError) as err:
        raise ArtifactError(f"cannot read {path}: {err}; the file is corrupt or truncated -- rebuild") from None


def _set_quantized_weights(model: nn.Module, tensors: dict[str, torch.Tensor], path: Path) -> set[str]:
    """Give every dynamic-quantized Linear its saved INT8 weight and bias; the tensor names used."""
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
        module.set_weight_bias(q, bias)  # type: ignore[attr-defined]
        used.update(k for k in tensors if k.startswith(name + ".weight.") or k == f"{name}.bias")
    return used


def _copy_the_rest(model: nn.Module, tensors: dict[str, torch.Tensor], used: set[str], smoothed: list[str],
                   path: Path) -> None:
    """Quantized modules refuse load_state_dict without their private keys: copy the rest by name,
    refusing a file whose tensors do not match the model config.json describes."""
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
    missing += [f"{name}.inv_scale" for name in smoothed if f"{name}.inv_scale" not in tensors]
    if missing or unexpected:
        raise ArtifactError(f"{path} does not match config.json: missing {missing[:3]}, unexpected {unexpected[:3]}")


PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
ARTIFACT_FIX = "the artifact is corrupt or incomplete: delete it and rebuild the variant"
CHECKPOINT_FIX = "fix config.json or re-save the checkpoint with save_pretrained(..., safe_serialization=True)"


def pickled_files(directory: Path) -> list[str]:
    """Names of pickled-weight files in `directory` (never loaded: a pickle can run code)."""
    return sorted(p.name for p in Path(directory).iterdir() if p.is_file() and p.suffix in PICKLE_SUFFIXES)


def _fix(user_checkpoint: bool) -> str:
    return CHECKPOINT_FIX if user_checkpoint else ARTIFACT_FIX


def _require_config(directory: Path, user_checkpoint: bool) -> None:
    if not (Path(directory) / "config.json").is_file():
        raise ArtifactError(f"{directory} has no config.json; it is not a Hugging Face checkpoint -- "
                            f"{_fix(user_checkpoint)}")


def load_hf(directory: Path, user_checkpoint: bool = False) -> nn.Module:
    """A transformers classifier from config.json + model.safetensors, refused unless every weight
    matches config.json. Only safetensors are read: pickled weights are never passed to a loader."""
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    directory = Path(directory)
    _require_config(directory, user_checkpoint)
    if not (directory / HF_WEIGHTS).is_file():
        found = pickled_files(directory)
        hint = f" (found {found}: pickled weights are never loaded; convert them to safetensors)" if found else ""
        raise ArtifactError(f"{directory} has no {HF_WEIGHTS}{hint} -- {_fix(user_checkpoint)}")
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # our one line replaces transformers' load report
    try:
        # ignore_mismatched_sizes + output_loading_info: transformers would otherwise either raise
        # ("look at the above report!") or silently initialise weights the file lacks; we judge instead.
        model, info = AutoModelForSequenceClassification.from_pretrained(
            directory, local_files_only=True, use_safetensors=True, ignore_mismatched_sizes=True,
            output_loading_info=True)
    except Exception as err:  # any exception type: the bytes are the user's, not ours
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ArtifactError(f"cannot load the model in {directory}: {first} -- the weights are corrupt, truncated "
                            f"or do not match config.json; {_fix(user_checkpoint)}") from None
    finally:
        hf_logging.set_verbosity(verbosity)
    bad = [str(k[0] if isinstance(k, tuple) else k) for k in info.get("mismatched_keys", [])]
    bad += [str(k) for k in info.get("missing_keys", [])]
    if not user_checkpoint:  # a checkpoint may carry extra heads (pre-training); an artifact may not
        bad += [str(k) for k in info.get("unexpected_keys", [])]
    if bad:
        raise ArtifactError(f"cannot load the model in {directory}: its weights do not match config.json "
                            f"({len(bad)} tensors, e.g. {sorted(bad)[0]}); {_fix(user_checkpoint)}")
    return model


def load_torch_model(directory: Path, fmt: str) -> nn.Module:
    if fmt == "hf":
        return load_hf(directory)
    if fmt == "torch-int8":
        return load_int8(directory)
    if fmt == "hf-pruned":
        from slimbench.formats.pruned import load_pruned

        return load_pruned(directory)
    raise ArtifactError(f"{directory}: format {fmt!r} is not a torch format")
