"""Quantization-aware training for weight-only N-bit rows: the Linear weights (and embedding tables)
are fake-quantized in the forward pass exactly as onnxruntime will store them (`slimbench.build.nbits`:
MatMulNBits asymmetric blocks along the input axis, GatherBlockQuantized symmetric 4-bit blocks
along the hidden axis), with a straight-through estimator for the gradient. After training the
fake-quantized values are baked into the weights, so the export's re-quantization finds them
already on its grid and keeps them.

`simulate` (no training) gives the torch model a post-training quantized row runs: the reference its
ONNX graph is checked against.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from slimbench.build.nbits import BLOCK_SIZE
from slimbench.build.train import TrainResult, collate, distillation_loss, fit, predict_logits
from slimbench.build.train import accuracy as accuracy_of
from slimbench.errors import BuildError
from slimbench.spec.schema import TrainRecipe

EMBEDDING_BLOCK = 128  # compress.INT4_EMBEDDING_BLOCK (not imported: compress pulls in onnx at import)


def _blocks(w: torch.Tensor, block: int) -> tuple[torch.Tensor, int]:
    """[rows, K] -> [rows, K/block, block], K zero-padded to whole blocks (as MatMulNBits pads)."""
    rows, k = w.shape
    pad = -k % block
    if pad:
        w = torch.nn.functional.pad(w, (0, pad))
    return w.reshape(rows, -1, block), k


def fake_quant_asymmetric(w: torch.Tensor, bits: int, block: int = BLOCK_SIZE) -> torch.Tensor:
    """A torch Linear weight [out, in] quantized and dequantized as MatMulNBits stores it: per block
    of `block` inputs of one output, range [min(w, 0), max(w, 0)] in 2^bits - 1 steps, zero point
    rounded (onnxruntime's quant_slice_asymmetric, the same as its C++ kernel)."""
    top = 2**bits - 1
    b, k = _blocks(w, block)
    lo = b.amin(-1, keepdim=True).clamp(max=0)
    hi = b.amax(-1, keepdim=True).clamp(min=0)
    scale = (hi - lo) / top
    safe = torch.where(scale == 0, torch.ones_like(scale), scale)
    zero = torch.round(-lo / safe).clamp(0, top)
    q = torch.clamp(torch.round(b / safe + zero), 0, top)
    out = torch.where(scale == 0, torch.zeros_like(b), (q - zero) * scale)
    return out.reshape(w.shape[0], -1)[:, :k]


def fake_quant_symmetric4(w: torch.Tensor, block: int = EMBEDDING_BLOCK) -> torch.Tensor:
    """An embedding table [rows, hidden] as 4-bit GatherBlockQuantized stores it: per block along the
    hidden axis, scale = (the signed value of largest magnitude) / -8, codes in -8..7
    (onnxruntime's quant_slice_symmetric)."""
    b, k = _blocks(w, block)
    hi, lo = b.amax(-1, keepdim=True), b.amin(-1, keepdim=True)
    scale = torch.where(hi.abs() > lo.abs(), hi, lo) / -8.0
    safe = torch.where(scale == 0, torch.ones_like(scale), scale)
    q = torch.clamp(torch.round(b / safe), -8, 7)
    out = torch.where(scale == 0, torch.zeros_like(b), q * scale)
    return out.reshape(w.shape[0], -1)[:, :k]


class FakeQuant(nn.Module):
    """A parametrization: the weight as the runtime will hold it, gradient passed straight through."""

    def __init__(self, bits: int | None, embedding: bool = False):
        super().__init__()
        self.bits, self.embedding = bits, embedding

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        q = fake_quant_symmetric4(w) if self.embedding else fake_quant_asymmetric(w, int(self.bits or 0))
        return w + (q - w).detach()


def attach(model: nn.Module, plan: Mapping[str, int | None], embeddings: bool) -> list[str]:
    """Fake quantizers on the Linear modules of `plan` (unit -> bits; None: stays fp32) and, with
    `embeddings`, on every nn.Embedding. Returns the modules changed."""
    from torch.nn.utils import parametrize

    modules = dict(model.named_modules())
    missing = [u for u in plan if not isinstance(modules.get(u), nn.Linear)]
    if missing:
        raise BuildError(f"quantization-aware training: no Linear module named {missing[0]!r} in the model")
    done = []
    for unit, bits in plan.items():
        if bits is not None:
            parametrize.register_parametrization(modules[unit], "weight", FakeQuant(bits))
            done.append(unit)
    if embeddings:
        for name, module in modules.items():
            if isinstance(module, nn.Embedding):
                parametrize.register_parametrization(module, "weight", FakeQuant(None, embedding=True))
                done.append(name)
    return done


def bake(model: nn.Module) -> None:
    """Replace every fake-quantized weight by its quantized value and drop the quantizers."""
    from torch.nn.utils import parametrize

    for module in list(model.modules()):
        if parametrize.is_parametrized(module, "weight"):
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)


def simulate(model: nn.Module, plan: Mapping[str, int | None], embeddings: bool) -> nn.Module:
    """`model` with the quantized weights the runtime will use, baked in (post-training)."""
    with torch.no_grad():
        attach(model, plan, embeddings)
        bake(model)
    return model


def train(model: nn.Module, plan: Mapping[str, int | None], embeddings: bool, seqs: Sequence[Sequence[int]],
          teacher_logits: np.ndarray, labels: Sequence[int], val_seqs: Sequence[Sequence[int]],
          val_labels: Sequence[int], recipe: TrainRecipe, desc: str = "qat") -> TrainResult:
    """Distil the fp32 model's own logits (and the labels) into its fake-quantized copy; keeps the
    best validation epoch, measured with the quantized weights; bakes them in."""
    attach(model, plan, embeddings)
    soft = torch.from_numpy(np.asarray(teacher_logits, dtype=np.float32))
    hard = torch.tensor(list(labels), dtype=torch.long)

    def loss_on(idx: np.ndarray) -> torch.Tensor:
        ids, mask = collate(seqs, idx)
        logits = model(input_ids=ids, attention_mask=mask).logits
        return distillation_loss(logits, soft[idx], hard[idx], recipe.temperature, recipe.alpha)

    result = fit(model, [len(s) for s in seqs], loss_on,
                 lambda: accuracy_of(predict_logits(model, val_seqs), val_labels), recipe, desc)
    with torch.no_grad():
        bake(model)
    return result


def history_record(result: TrainResult) -> dict[str, Any]:
    return {"best_epoch": result.best_epoch, "best_val_accuracy": result.best_val_accuracy,
            "history": result.history, "seconds": result.seconds, "steps": result.steps,
            "autocast": result.autocast}
