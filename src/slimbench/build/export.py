"""ONNX export of a torch sequence classifier (dynamic batch and sequence).

Two exporters, because they serve two ends:
- `dynamo` (torch.export): the maintained path; its graph runs as is.
- `fusable` (the TorchScript exporter over eager attention): the graph that onnxruntime's transformer
  optimizer recognises (`slimbench.build.fuse`); on the dynamo graph it finds no Attention block
  (SDPA is exported as IsNaN/Where guards around the softmax), so fused rows need this one.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import torch
from torch import nn


class LogitsOnly(nn.Module):
    """Positional (input_ids, attention_mask) -> logits, the graph signature ONNX users expect."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits


def _sample_inputs(max_length: int, vocab_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, vocab_size, (2, min(16, max_length)), generator=gen)
    return ids, torch.ones_like(ids)


def export_onnx(model: nn.Module, path: Path, max_length: int, vocab_size: int, fusable: bool = False) -> None:
    """Write a single-file ONNX graph; batch and sequence length are dynamic (seq <= max_length).

    fusable: export eager attention with the TorchScript exporter, the form onnxruntime's
    transformer optimizer fuses (see the module docstring). The model is switched to eager
    attention for the export; its weights and outputs are unchanged.
    """
    model.eval()
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    if fusable:
        _export_torchscript(model, path, max_length, vocab_size)
    else:
        _export_dynamo(model, path, max_length, vocab_size)


def _export_dynamo(model: nn.Module, path: Path, max_length: int, vocab_size: int) -> None:
    import onnx

    wrapped = LogitsOnly(model).eval()
    batch = torch.export.Dim("batch", min=1, max=1024)
    seq = torch.export.Dim("sequence", min=2, max=max_length)
    ids, mask = _sample_inputs(max_length, vocab_size)
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            wrapped, (ids, mask), dynamo=True, input_names=["input_ids", "attention_mask"],
            output_names=["logits"], dynamic_shapes=({0: batch, 1: seq}, {0: batch, 1: seq}),
            optimize=True, verbose=False,
        )
    onnx.save(program.model_proto, str(path), save_as_external_data=False)


def _export_torchscript(model: nn.Module, path: Path, max_length: int, vocab_size: int) -> None:
    model.set_attn_implementation("eager")
    ids, mask = _sample_inputs(max_length, vocab_size)
    axes = {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"},
            "logits": {0: "batch"}}
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(LogitsOnly(model).eval(), (ids, mask), str(path), dynamo=False,
                          input_names=["input_ids", "attention_mask"], output_names=["logits"],
                          dynamic_axes=axes, opset_version=17)
