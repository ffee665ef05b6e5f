"""Pruning of BERT sequence classifiers (Hugging Face `BertForSequenceClassification`), on CPU.

Structured, physical pruning: attention heads and feed-forward neurons are removed from the weight
matrices, so the model really gets smaller and faster. Head importance is the gradient criterion of
Michel, Levy & Neubig 2019, "Are Sixteen Heads Really Better than One?" (NeurIPS): a gate per head
multiplies its context output, I_h = E_x |dL(x)/d gate_h|, normalised per layer by its L2 norm. FFN
neuron importance is the first-order Taylor criterion of Molchanov et al. 2017, "Pruning
Convolutional Neural Networks for Resource Efficient Inference" (ICLR): |sum_t a_t dL/da_t| per
example, summed over examples, with the same per-layer normalisation. Gates are applied by forward
hooks, so nothing relies on `head_mask` or `prune_heads` (transformers 5 has neither).

A pruned model has per-layer sizes that its config.json cannot express, so it is saved with a
`structure.json` ({"heads": [...], "intermediate": [...], "head_size": d}); loading builds the model
from the original config, reshapes it with `apply_structure` and loads the weights strictly.

Unstructured magnitude pruning zeroes the smallest-|w| weights of the encoder's Linear layers
(Han et al. 2015, "Learning both Weights and Connections for Efficient Neural Networks"), ranked
globally or per matrix, through `torch.nn.utils.prune` so the masks persist during recovery
training; `sparsity_schedule` is the cubic gradual schedule of Zhu & Gupta 2017, "To prune, or not
to prune: exploring the efficacy of pruning for model compression". Sparse weights only shrink the
download (`compressed_size`), not the raw file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

from slimbench.formats.pruned import STRUCTURE_FORMAT as STRUCTURE_FORMAT  # the format, re-exported
from slimbench.formats.pruned import _num_heads, encoder_layers
from slimbench.formats.pruned import apply_structure as apply_structure
from slimbench.formats.pruned import load_pruned as load_pruned
from slimbench.formats.pruned import prune_ffn as prune_ffn
from slimbench.formats.pruned import prune_heads as prune_heads
from slimbench.formats.pruned import save_pruned as save_pruned
from slimbench.formats.pruned import structure_of as structure_of

MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids", "position_ids")
# The Linear layers of each encoder layer that magnitude pruning touches, relative to the layer.
PRUNABLE = ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
            "intermediate.dense", "output.dense")
DISTILBERT_PRUNABLE = ("attention.q_lin", "attention.k_lin", "attention.v_lin", "attention.out_lin", "ffn.lin1", "ffn.lin2")

Batch = Mapping[str, torch.Tensor] | Sequence[torch.Tensor]
LossFn = Callable[[torch.Tensor, Any], torch.Tensor]
GateShapes = tuple[tuple[int, ...], tuple[int, ...]]


# --- model access --------------------------------------------------------------------------------







def _model_logits(model: nn.Module, batch: Batch) -> torch.Tensor:
    """Logits for a batch: a mapping (model inputs taken by name) or a sequence (input_ids, attention_mask, ...)."""
    if isinstance(batch, Mapping):
        inputs = {k: batch[k] for k in MODEL_INPUTS if k in batch}
    else:
        inputs = {"input_ids": batch[0], "attention_mask": batch[1]}
    return model(**inputs).logits


def _gated_importance(model: nn.Module, batches: Iterable[Batch], loss_fn: LossFn,
                      targets: Sequence[nn.Module], gate_fn: Callable[[torch.Tensor, nn.Module], GateShapes],
                      sizes: Sequence[int]) -> list[np.ndarray]:
    """sum over examples of |dL/d gate| for one ones-gate per example and unit at each target's output.

    `gate_fn(output, module)` returns (view, gate): the shape to view the output as and the shape of
    the per-example gate (batch first) that multiplies that view. Parameters are frozen meanwhile
    (their .grad is never touched); hooks, requires_grad flags and train/eval mode are restored.
    """
    totals = [np.zeros(n) for n in sizes]
    gates: dict[int, torch.Tensor] = {}

    def make_hook(index: int) -> Callable[..., Any]:
        def hook(module: nn.Module, args: Any, output: Any) -> Any:
            tensor = output[0] if isinstance(output, tuple) else output
            view, shape = gate_fn(tensor, module)
            gate = torch.ones(shape, dtype=tensor.dtype, device=tensor.device, requires_grad=True)
            gates[index] = gate
            gated = (tensor.reshape(view) * gate).reshape(tensor.shape)
            return (gated, *output[1:]) if isinstance(output, tuple) else gated
        return hook

    was_training = model.training
    flags = [(p, p.requires_grad) for p in model.parameters()]
    handles = [t.register_forward_hook(make_hook(i)) for i, t in enumerate(targets)]
    try:
        model.eval()
        for p, _ in flags:
            p.requires_grad_(False)
        with torch.enable_grad():
            for batch in batches:
                gates.clear()
                loss = loss_fn(_model_logits(model, batch), batch)
                loss.backward()
                for i, gate in gates.items():
                    if gate.grad is not None:
                        per_unit = gate.grad.abs().reshape(gate.shape[0], -1).sum(0)
                        totals[i] += per_unit.double().cpu().numpy()
    finally:
        for h in handles:
            h.remove()
        for p, flag in flags:
            p.requires_grad_(flag)
        model.train(was_training)
    return totals


def _normalise(values: np.ndarray) -> np.ndarray:
    norm = float(np.sqrt(np.sum(values**2)))
    return values / norm if norm > 0 else values


def head_importance(model: nn.Module, batches: Iterable[Batch], loss_fn: LossFn,
                    normalize: bool = True) -> np.ndarray:
    """Gradient head importance of Michel et al. 2019: [num_layers, num_heads], >= 0.

    I_h = sum over examples x of |dL(x)/d xi_h|, xi_h a gate (1.0) on head h's context output, added
    by forward hooks on `attention.self`. `batches` yields mappings with input_ids/attention_mask
    (+ whatever `loss_fn` needs, e.g. labels) or tuples (input_ids, attention_mask, ...);
    `loss_fn(logits, batch)` returns a scalar (reduction="sum" weighs examples exactly; "mean" is
    fine for equal batch sizes). With `normalize`, each layer is divided by its L2 norm (as in the
    paper) so heads can be ranked globally. Layers with fewer heads (a pruned model) are padded
    with NaN. The model is left as it was: no hooks, no grads, same train/eval mode.
    """
    layers = encoder_layers(model)
    sizes = [_num_heads(layer) for layer in layers]

    def gate_shape(context: torch.Tensor, module: nn.Module) -> GateShapes:
        b, t, width = context.shape  # [B, T, H*d] -> [B, T, H, d], one gate per example and head
        d = module.attention_head_size
        return (b, t, width // d, d), (b, 1, width // d, 1)

    totals = _gated_importance(model, batches, loss_fn, [layer.attention.self for layer in layers], gate_shape, sizes)
    out = np.full((len(layers), max(sizes)), np.nan)
    for i, values in enumerate(totals):
        out[i, : len(values)] = _normalise(values) if normalize else values
    return out


def ffn_importance(model: nn.Module, batches: Iterable[Batch], loss_fn: LossFn,
                   normalize: bool = True) -> list[np.ndarray]:
    """First-order Taylor importance of each FFN neuron (Molchanov et al. 2017), per layer [intermediate].

    For neuron j with activation a_t (after GELU) at token t: |sum_t a_t * dL/da_t| per example --
    the first-order estimate of the loss change when the neuron is removed for that example --
    summed over examples. Computed as the gradient of a ones-gate per example and neuron on the
    `intermediate` output. Padding tokens contribute nothing (their gradient is zero). Batches and
    `loss_fn` as in `head_importance`; `normalize` divides each layer by its L2 norm.
    """
    layers = encoder_layers(model)
    sizes = [layer.intermediate.dense.out_features for layer in layers]

    def gate_shape(act: torch.Tensor, module: nn.Module) -> GateShapes:
        b, t, width = act.shape
        return (b, t, width), (b, 1, width)

    totals = _gated_importance(model, batches, loss_fn, [layer.intermediate for layer in layers], gate_shape, sizes)
    return [_normalise(v) if normalize else v for v in totals]


# --- selection -----------------------------------------------------------------------------------

def _select(scores: Sequence[np.ndarray], n_remove: int, min_per_layer: int, what: str) -> dict[int, list[int]]:
    """Keep-lists after removing the n_remove lowest scores overall, never going below min_per_layer."""
    entries = [(float(s), layer, unit) for layer, row in enumerate(scores) for unit, s in enumerate(row)
               if np.isfinite(s)]
    entries.sort()
    kept = {layer: {unit for unit, s in enumerate(row) if np.isfinite(s)} for layer, row in enumerate(scores)}
    removed = 0
    for _, layer, unit in entries:
        if removed == n_remove:
            break
        if len(kept[layer]) > min_per_layer:
            kept[layer].discard(unit)
            removed += 1
    if removed < n_remove:
        raise ValueError(f"cannot remove {n_remove} {what} while keeping at least {min_per_layer} per layer "
                         f"(at most {removed} can go)")
    return {layer: sorted(units) for layer, units in kept.items()}


def select_heads(importance: np.ndarray, fraction: float, min_per_layer: int = 1) -> dict[int, list[int]]:
    """Heads to KEEP per layer after removing `fraction` of all heads, least important first (global ranking).

    round(fraction * heads) heads go; a layer never drops below `min_per_layer` (>= 1: a BERT layer
    cannot run without heads). NaN entries (absent heads) are ignored. Feed the result to `prune_heads`.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    if min_per_layer < 1:
        raise ValueError("min_per_layer must be >= 1: every layer needs at least one head")
    scores = [np.asarray(row, dtype=float) for row in np.asarray(importance, dtype=float)]
    total = sum(int(np.isfinite(row).sum()) for row in scores)
    return _select(scores, round(fraction * total), min_per_layer, "heads")


def select_neurons(importances: Sequence[np.ndarray], fraction: float, scope: str = "global",
                   min_per_layer: int = 1) -> dict[int, list[int]]:
    """FFN neurons to KEEP per layer after removing `fraction` of them, least important first.

    scope="global" ranks all neurons together (layers normalised by `ffn_importance` are
    comparable; layers end up with different widths, as in Michel et al.'s global head ranking);
    scope="layer" removes round(fraction * width) from every layer. `min_per_layer` may be 0 (a
    layer's FFN then reduces to its output bias). Feed the result to `prune_ffn`.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    scores = [np.asarray(row, dtype=float) for row in importances]
    if scope == "global":
        return _select(scores, round(fraction * sum(len(r) for r in scores)), min_per_layer, "neurons")
    if scope == "layer":
        keep: dict[int, list[int]] = {}
        for layer, row in enumerate(scores):
            keep[layer] = _select([row], round(fraction * len(row)), min_per_layer, "neurons")[0]
        return keep
    raise ValueError(f"unknown scope {scope!r}; use 'global' or 'layer'")


# --- physical pruning ----------------------------------------------------------------------------

















# --- unstructured magnitude pruning --------------------------------------------------------------

def prunable_weights(model: nn.Module) -> list[tuple[str, nn.Linear]]:
    """(module name, Linear) of the encoder's query/key/value/attention-output/intermediate/output layers."""
    names = {id(m): n for n, m in model.named_modules()}
    out: list[tuple[str, nn.Linear]] = []
    for layer in encoder_layers(model):
        for path in DISTILBERT_PRUNABLE if hasattr(layer.attention, "q_lin") else PRUNABLE:
            module = layer.get_submodule(path)
            out.append((names[id(module)], module))
    return out


def _current_weight(module: nn.Module) -> torch.Tensor:
    """The weight as the next forward will see it (`module.weight` of a masked module is only refreshed
    by a forward pass, so after an optimizer step it is stale)."""
    mask = getattr(module, "weight_mask", None)
    return (module.weight_orig * mask).detach() if mask is not None else module.weight.detach()


def _masked_zeros(module: nn.Module) -> int:
    mask = getattr(module, "weight_mask", None)
    return int((mask == 0).sum()) if mask is not None else 0


def magnitude_prune(model: nn.Module, sparsity: float, scope: str = "global") -> float:
    """Mask the smallest-|w| encoder Linear weights so `sparsity` of them is zero; returns the sparsity reached.

    scope="global" ranks all prunable weights together (round(sparsity * total) go); "layer" prunes
    each matrix to round(sparsity * its size). Biases, embeddings, pooler and classifier are never
    touched. Masks are torch.nn.utils.prune reparametrisations, so they hold during further training;
    pruning again to a higher sparsity keeps the old mask and adds to it (the amount is computed so
    the TOTAL reaches the target). Lowering the sparsity of a masked model raises ValueError.
    """
    if not 0.0 <= sparsity <= 1.0:
        raise ValueError(f"sparsity must be in [0, 1], got {sparsity}")
    targets = prunable_weights(model)
    if scope == "global":
        total = sum(m.weight.numel() for _, m in targets)
        already = sum(_masked_zeros(m) for _, m in targets)
        extra = round(sparsity * total) - already
        if extra < 0:
            raise ValueError(f"the model is already {already / total:.4f} sparse, above the target {sparsity}")
        torch_prune.global_unstructured([(m, "weight") for _, m in targets], pruning_method=torch_prune.L1Unstructured,
                                        importance_scores={(m, "weight"): _current_weight(m) for _, m in targets},
                                        amount=extra)
    elif scope == "layer":
        for name, module in targets:
            already = _masked_zeros(module)
            extra = round(sparsity * module.weight.numel()) - already
            if extra < 0:
                raise ValueError(f"{name} is already {already / module.weight.numel():.4f} sparse, above the "
                                 f"target {sparsity}")
            torch_prune.l1_unstructured(module, "weight", amount=extra, importance_scores=_current_weight(module))
    else:
        raise ValueError(f"unknown scope {scope!r}; use 'global' or 'layer'")
    return float(sparsity_stats(model)["prunable"]["sparsity"])


def make_permanent(model: nn.Module) -> int:
    """Fold every torch pruning mask into its weight (plain Parameters with exact zeros); returns how many."""
    count = 0
    for module in model.modules():
        names = [hook._tensor_name for hook in list(module._forward_pre_hooks.values())
                 if isinstance(hook, torch_prune.BasePruningMethod)]
        for name in names:
            torch_prune.remove(module, name)
            count += 1
    return count


def _effective_parameters(model: nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    """(name, tensor) of every parameter as the forward sees it: masked weights instead of weight_orig."""
    for prefix, module in model.named_modules():
        for pname, param in module.named_parameters(recurse=False):
            base = pname.removesuffix("_orig")
            if pname.endswith("_orig") and hasattr(module, base + "_mask"):
                param = param.detach() * getattr(module, base + "_mask")
                pname = base
            yield (f"{prefix}.{pname}" if prefix else pname), param


def _count(tensors: Iterable[torch.Tensor]) -> dict[str, Any]:
    zeros = total = 0
    for t in tensors:
        zeros += int((t.detach() == 0).sum())
        total += t.numel()
    return {"zeros": zeros, "total": total, "sparsity": zeros / total if total else 0.0}


def sparsity_stats(model: nn.Module) -> dict[str, Any]:
    """Exact zero counts: {"tensors": {name.weight: {...}}, "layers": [{...}], "prunable": {...}, "all": {...}}.

    Each entry is {"zeros", "total", "sparsity"}; "tensors" and "layers" cover the prunable weights
    (per matrix, per encoder layer), "prunable" their union, "all" every parameter of the model.
    Masked weights are counted as the forward sees them.
    """
    targets = prunable_weights(model)
    per_layer = len(PRUNABLE)
    weights = [(f"{name}.weight", _current_weight(m)) for name, m in targets]
    tensors = {name: _count([w]) for name, w in weights}
    layers = [_count(w for _, w in weights[i : i + per_layer]) for i in range(0, len(weights), per_layer)]
    return {"tensors": tensors, "layers": layers, "prunable": _count(w for _, w in weights),
            "all": _count(t for _, t in _effective_parameters(model))}


def compressed_size(path: Path | str, level: int = 6) -> int:
    """Bytes of the file after gzip -6: what a download costs (the size benchmark's own measure)."""
    from slimbench.cache.memo import gzip_size

    return gzip_size(Path(path), level)


def sparsity_schedule(target: float, steps: int, initial: float = 0.0) -> list[float]:
    """Cubic gradual schedule of Zhu & Gupta 2017: s_t = s_f + (s_i - s_f)(1 - t/n)^3 for t = 1..n.

    Increasing, front-loaded (prunes fast while many redundant weights remain), ends exactly at target.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if not 0.0 <= initial <= target <= 1.0:
        raise ValueError(f"need 0 <= initial <= target <= 1, got initial={initial}, target={target}")
    out = [target + (initial - target) * (1.0 - t / steps) ** 3 for t in range(1, steps + 1)]
    out[-1] = target
    return out
