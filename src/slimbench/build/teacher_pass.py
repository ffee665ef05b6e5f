"""The teacher's logits over a student's distillation texts, through onnxruntime.

A distilled student learns from the teacher's logits on its training texts, their augmented copies
and (ultra-light) the transfer texts: 52,863 texts for ultra-light, the longest inference pass of a
fresh build. torch eager labels ~390 texts/s on the project's 2-core VM; the teacher's fused fp32
graph in onnxruntime ~735/s with the same logits to 6e-6 (max |Δ|; every argmax the same;
`reports/evidence/first-report/teacher-pass.md`). So the pass exports the teacher once to a
temporary directory (the exporter and fusion the `onnx` variant uses), checks the graph against
torch on the first batch, and runs it. When the teacher does not export or fuse (a model of your
own with an architecture the optimizer does not know), or the graph disagrees with torch, the pass
runs in torch instead and says why: the labels are the same either way, only the time differs.

The [CLS]-state loss (`hidden_weight`) needs hidden states the exported graph does not give; those
recipes use torch (`slimbench.build.train.predict_logits_and_cls`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from slimbench.build.train import collate, length_ordered_batches, predict_logits_and_cls

GRAPH_TOLERANCE = 1e-4  # max |logit diff| torch vs the teacher's graph on the first batch


def teacher_logits(model: Any, seqs: Sequence[Sequence[int]], max_length: int, batch_size: int = 64,
                   desc: str | None = None, log: Callable[[str], None] = print) -> tuple[np.ndarray, str]:
    """The teacher's logits for every sequence, in input order, and the runtime that computed them
    ("onnxruntime", or "torch" when the graph could not be used; `log` says why)."""
    model.eval()
    batches = length_ordered_batches(seqs, batch_size)
    with tempfile.TemporaryDirectory(prefix="slimbench-teacher-") as tmp:
        session, why = _teacher_session(model, Path(tmp), max_length, seqs, batches[:1])
        if session is None:
            log(f"  teacher pass in torch: {why}")
            return predict_logits_and_cls(model, seqs, batch_size=batch_size, with_cls=False, desc=desc)[0], "torch"
        out = np.zeros((len(seqs), model.config.num_labels), dtype=np.float32)
        for idx in tqdm(batches, desc=desc, unit="batch", leave=False, mininterval=2.0, disable=desc is None):
            out[idx] = _run(session, seqs, idx)
    return out, "onnxruntime"


def _run(session: Any, seqs: Sequence[Sequence[int]], idx: np.ndarray) -> np.ndarray:
    ids, mask = collate(seqs, idx)
    return np.asarray(session.run(None, {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})[0])


def _teacher_session(model: Any, tmp: Path, max_length: int, seqs: Sequence[Sequence[int]],
                     check: list[np.ndarray]) -> tuple[Any, str]:
    """An onnxruntime session over the teacher's fused graph, checked against torch on the `check`
    batches; (None, why) when any of that fails."""
    from slimbench.build.export import export_onnx
    from slimbench.build.fuse import fuse_transformer
    from slimbench.runtime import onnx_session

    cfg = model.config
    graph = tmp / "teacher.onnx"
    try:
        export_onnx(model, graph, max_length, cfg.vocab_size, fusable=True)
        fuse_transformer(graph, tmp / "teacher-fused.onnx", cfg.num_attention_heads, cfg.hidden_size,
                         cfg.num_hidden_layers)
        session = onnx_session(tmp / "teacher-fused.onnx", torch.get_num_threads())
    except Exception as err:  # the exporter, the optimizer and onnxruntime raise many types
        return None, f"its ONNX graph could not be exported and fused ({type(err).__name__}: {str(err).splitlines()[0][:200]})"
    with torch.inference_mode():
        for idx in check:
            ids, mask = collate(seqs, idx)
            want = model(input_ids=ids, attention_mask=mask).logits.float().numpy()
            diff = float(np.abs(_run(session, seqs, idx) - want).max())
            if not diff <= GRAPH_TOLERANCE:
                return None, f"its ONNX graph disagrees with torch (max |Δlogit| {diff:.1e} > {GRAPH_TOLERANCE:g})"
    return session, ""
