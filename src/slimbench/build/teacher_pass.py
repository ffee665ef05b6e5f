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

The outputs are kept on disk (`cached_outputs`, under the artifact root's .teacher-outputs/) and
validated whenever they are read: a damaged file is computed again, with one line naming it.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
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
    from slimbench.runtimes.runners import onnx_session

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


Outputs = tuple[np.ndarray, np.ndarray | None]  # logits [rows, labels], [CLS] states [rows, hidden] or None


def cached_outputs(cache: Path, rows: int, with_cls: bool, compute: Callable[[], Outputs],
                   log: Callable[[str], None] = print) -> Outputs:
    """The teacher outputs kept in `cache` (an .npz) when they are sound for `rows` texts, else
    `compute()`'s, written there atomically. A damaged file (truncated, not a zip, wrong shapes,
    NaN, the [CLS] states missing) is computed again, and `log` says so on one line naming it."""
    kept = read_outputs(cache, rows, with_cls)
    if isinstance(kept, tuple):
        return kept
    if kept:
        log(f"  teacher outputs {cache} are damaged ({kept}): computing them again")
    logits, cls = compute()
    write_outputs(cache, logits, cls)
    return logits, cls


def read_outputs(cache: Path, rows: int, with_cls: bool) -> Outputs | str:
    """(logits, cls) kept in `cache`, or why they cannot be used ("" when there is no file)."""
    if not cache.is_file():
        return ""
    try:
        with np.load(cache, allow_pickle=False) as data:
            arrays = {name: np.asarray(data[name]) for name in ("logits", "cls") if name in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as err:
        return f"unreadable: {type(err).__name__}: {str(err)[:120]}"
    wanted = ("logits", "cls") if with_cls else ("logits",)
    for name in wanted:
        array = arrays.get(name)
        if array is None:
            return f"no {name!r} array"
        if array.ndim != 2 or array.shape[0] != rows or array.shape[1] == 0:
            return f"{name} has shape {array.shape}, not ({rows}, n) for {rows} texts"
        if array.dtype.kind != "f" or not np.isfinite(array).all():
            return f"{name} is not all finite numbers"
    return arrays["logits"], (arrays["cls"] if with_cls else None)


def write_outputs(cache: Path, logits: np.ndarray, cls: np.ndarray | None) -> None:
    """Keep the outputs in `cache`, atomically (a reader sees the old file or the new one); an
    OSError (a full disk) names `cache`, not the partial file beside it."""
    part = cache.with_name(f".{cache.stem}.partial-{os.getpid()}.npz")
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        if cls is None:
            np.savez(part, logits=logits)
        else:
            np.savez(part, logits=logits, cls=cls)
        os.replace(part, cache)
    except OSError as err:
        if err.errno is None:
            raise
        raise type(err)(err.errno, err.strerror, str(cache)) from None
    finally:
        part.unlink(missing_ok=True)
