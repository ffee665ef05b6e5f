"""ONNX export of a torch sequence classifier (dynamo exporter, dynamic batch and sequence)."""

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


def export_onnx(model: nn.Module, path: Path, max_length: int, vocab_size: int) -> None:
    """Write a single-file ONNX graph; batch and sequence length are dynamic (seq <= max_length)."""
    import onnx

    model.eval()
    wrapped = LogitsOnly(model).eval()
    batch = torch.export.Dim("batch", min=1, max=1024)
    seq = torch.export.Dim("sequence", min=2, max=max_length)
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, vocab_size, (2, min(16, max_length)), generator=gen)
    mask = torch.ones_like(ids)
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            wrapped, (ids, mask), dynamo=True, input_names=["input_ids", "attention_mask"],
            output_names=["logits"], dynamic_shapes=({0: batch, 1: seq}, {0: batch, 1: seq}),
            optimize=True, verbose=False,
        )
    proto = program.model_proto
    onnx.save(proto, str(path), save_as_external_data=False)
