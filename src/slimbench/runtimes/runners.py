"""Runners: load an artifact directory and predict, tokenizer included, one public path for all.

Every measurement goes through `Runner.predict` the way a user's application would call it:
tokenize (HF `tokenizers`, the same for every runtime) -> forward -> argmax. The ONNX runner never
imports torch, so its load time and memory are what an ONNX deployment really pays.

A multi-label variant (its manifest holds `label_groups`, `slimbench.labels`) is run exactly the
same way -- every runtime returns the concatenated logits of all groups -- and decoded per group:
softmax and argmax over each group's slice.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from slimbench.errors import ArtifactError
from slimbench.formats.manifest import MANIFEST as MANIFEST  # re-exported: the runtime's readers use them
from slimbench.formats.manifest import read_manifest as read_manifest
from slimbench.formats.verify import (
    verify_artifact as verify_artifact,  # re-exported: callers verify, then open
)
from slimbench.labels import LabelGroups

TOKENIZER_FILE = "tokenizer.json"


class Runner(Protocol):
    """What every runtime offers: logits, probabilities and labels for a batch of texts."""

    name: str
    threads: int

    def predict_logits(self, texts: Sequence[str]) -> np.ndarray: ...

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray: ...

    def predict(self, texts: Sequence[str]) -> list[Any]: ...

    def close(self) -> None: ...


TRUNCATIONS = ("right", "head-tail")
PAD_TOKENS = ("[PAD]", "<pad>")


def head_tail(ids: Sequence[int], max_length: int) -> list[int]:
    """Keep [CLS] + the first quarter + the last three quarters of the budget + [SEP].

    For sentiment the verdict is often at the end of a sentence ("..., but it is dull"); Sun et
    al. (2019) found head+tail truncation beats keeping only the head.
    """
    if len(ids) <= max_length:
        return list(ids)
    body = max_length - 2
    head = body // 4
    return [ids[0], *ids[1 : 1 + head], *ids[len(ids) - 1 - (body - head) : len(ids) - 1], ids[-1]]


class Encoder:
    """The variant's own WordPiece tokenizer, truncating to its max length, padding per batch."""

    def __init__(self, tokenizer_path: Path, max_length: int, truncation: str = "right"):
        from tokenizers import Tokenizer

        if truncation not in TRUNCATIONS:
            raise ArtifactError(f"unknown truncation {truncation!r}; known: {TRUNCATIONS}")
        try:
            self.tokenizer = Tokenizer.from_file(str(tokenizer_path))
        except Exception as err:  # tokenizers raises a bare Exception on malformed JSON
            raise ArtifactError(f"cannot load tokenizer {tokenizer_path}: {err}; rebuild the variant") from None
        # BERT's [PAD]; RoBERTa's, ALBERT's and XLM-R's <pad>
        pad_token = next((t for t in PAD_TOKENS if self.tokenizer.token_to_id(t) is not None), PAD_TOKENS[0])
        self.pad_id = self.tokenizer.token_to_id(pad_token) or 0
        self.truncation = truncation
        if truncation == "right":
            self.tokenizer.enable_truncation(max_length)
            self.tokenizer.enable_padding(pad_id=self.pad_id, pad_token=pad_token)
        else:
            self.tokenizer.no_truncation()
            self.tokenizer.no_padding()
        self.max_length = max_length

    def ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Unpadded token ids per text, truncated the variant's way."""
        if self.truncation == "right":
            return [e.ids[: sum(e.attention_mask)] for e in self.tokenizer.encode_batch(list(texts))]
        return [head_tail(e.ids, self.max_length) for e in self.tokenizer.encode_batch(list(texts))]

    def __call__(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(input_ids, attention_mask), int64 arrays of shape [batch, longest-in-batch]."""
        if self.truncation == "right":
            encodings = self.tokenizer.encode_batch(list(texts))
            ids = np.array([e.ids for e in encodings], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
            return ids, mask
        seqs = self.ids(texts)
        width = max(len(s) for s in seqs)
        ids = np.full((len(seqs), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(seqs), width), dtype=np.int64)
        for row, s in enumerate(seqs):
            ids[row, : len(s)] = s
            mask[row, : len(s)] = 1
        return ids, mask


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def batch_invariant(manifest: dict[str, Any]) -> bool:
    """Whether the variant's labels do not depend on which texts share a batch: every variant but the
    INT8 ones, whose activation scales span the batch (BaseRunner.batch_invariant)."""
    return manifest.get("precision") != "int8"


def label_groups_of(manifest: dict[str, Any], where: Path) -> LabelGroups | None:
    """A multi-label artifact's label table (its manifest's `label_groups`); None for one label."""
    table = manifest.get("label_groups")
    if table is None:
        return None
    return LabelGroups.from_json(table, f"{where / MANIFEST}: label_groups", ArtifactError)


class LogitsToLabels:
    """predict_proba and predict derived from predict_logits, for every runner. `batch_invariant`:
    whether a text's label is the same whatever texts are batched with it (see predict_in_batches).
    `groups`: a multi-label variant's label table -- probabilities are then a softmax per group's
    slice and a prediction is the tuple of each group's value index."""

    batch_invariant = True
    groups: LabelGroups | None = None

    def predict_logits(self, texts: Sequence[str]) -> np.ndarray:
        raise NotImplementedError

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        if self.groups is not None:
            return self.groups.proba(self.predict_logits(texts))
        return softmax(self.predict_logits(texts))

    def predict(self, texts: Sequence[str]) -> list[Any]:
        """Each text's label index; with label groups, its tuple of per-group value indices."""
        if self.groups is not None:
            return [tuple(int(i) for i in row) for row in self.groups.decode(self.predict_logits(texts))]
        return [int(i) for i in self.predict_logits(texts).argmax(axis=-1)]


class BaseRunner(LogitsToLabels):
    name = "base"

    def __init__(self, artifact_dir: Path, threads: int, manifest: dict[str, Any]):
        self.artifact_dir = Path(artifact_dir)
        self.threads = threads
        self.manifest = manifest
        self.encoder = Encoder(self.artifact_dir / TOKENIZER_FILE, int(manifest["max_length"]),
                               str(manifest.get("truncation", "right")))
        # INT8 variants quantize activations dynamically (torch dynamic INT8; onnxruntime dynamic INT8,
        # and the fused Attention of static INT8): one scale per tensor, over every text of the batch
        # and its padding, so a text's label can depend on its neighbours -- 18-28 of the 1,109 test
        # sentences did (reports/evidence/recipes/int8-batching.md). fp32 runtimes: none did.
        self.batch_invariant = batch_invariant(manifest)
        self.groups = label_groups_of(manifest, self.artifact_dir)

    def close(self) -> None:
        pass

    def __enter__(self) -> BaseRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class TorchRunner(BaseRunner):
    """A transformers model in torch: fp32 safetensors, or our INT8 safetensors format."""

    name = "torch"

    def __init__(self, artifact_dir: Path, threads: int, manifest: dict[str, Any]):
        super().__init__(artifact_dir, threads, manifest)
        import torch

        torch.set_num_threads(threads)
        self._torch = torch
        from slimbench.formats.torch_io import load_torch_model

        self.model = load_torch_model(self.artifact_dir, manifest["format"])
        self.model.eval()

    def predict_logits(self, texts: Sequence[str]) -> np.ndarray:
        ids, mask = self.encoder(texts)
        with self._torch.inference_mode():
            out = self.model(input_ids=self._torch.from_numpy(ids), attention_mask=self._torch.from_numpy(mask))
        return out.logits.float().numpy()


def onnx_session(path: Path, threads: int) -> Any:
    """An onnxruntime CPU session over `path`: `threads` intra-op threads, sequential, quiet."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


class OnnxRunner(BaseRunner):
    """An ONNX graph in onnxruntime's CPU provider, with a fixed intra-op thread count."""

    name = "onnxruntime"

    def __init__(self, artifact_dir: Path, threads: int, manifest: dict[str, Any]):
        super().__init__(artifact_dir, threads, manifest)
        path = self.artifact_dir / manifest.get("model_file", "model.onnx")
        if not path.is_file():
            raise ArtifactError(f"{path} is missing; rebuild the variant")
        try:
            self.session = onnx_session(path, threads)
        except Exception as err:  # onnxruntime raises its own exception types
            raise ArtifactError(f"onnxruntime cannot load {path}: {str(err).splitlines()[0]}; "
                                "the file is corrupt or truncated -- rebuild the variant") from None
        self.input_names = {i.name for i in self.session.get_inputs()}

    def predict_logits(self, texts: Sequence[str]) -> np.ndarray:
        ids, mask = self.encoder(texts)
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self.input_names:
            feed["token_type_ids"] = np.zeros_like(ids)
        return self.session.run(None, {k: v for k, v in feed.items() if k in self.input_names})[0]


class NumpyRunner(BaseRunner):
    """The NumPy reference runtime (slimbench.runtimes.numpy_bert): an fp32 BERT read from model.safetensors
    by tensor name and run in plain NumPy -- no torch, no onnxruntime. It shows what the frameworks
    cost in import time and memory. NumPy's BLAS thread count is fixed at process start
    (OPENBLAS_NUM_THREADS / OMP_NUM_THREADS); the probes set it to `threads`."""

    name = "numpy"

    def __init__(self, artifact_dir: Path, threads: int, manifest: dict[str, Any]):
        super().__init__(artifact_dir, threads, manifest)
        from slimbench.runtimes.numpy_bert import NumpyBert

        self.model = NumpyBert.load(self.artifact_dir)

    def predict_logits(self, texts: Sequence[str]) -> np.ndarray:
        ids, mask = self.encoder(texts)
        return self.model.logits(ids, mask)


def busy_spin(seconds: float) -> None:
    """Busy CPU work for `seconds` (no sleep: it holds a core, as real work would)."""
    import time

    until = time.perf_counter() + seconds
    while time.perf_counter() < until:
        pass


class ExtraWorkRunner(LogitsToLabels):
    """Wraps a runner so every predict does `fraction` more CPU work (a busy spin proportional to
    the call's own duration): a real, controlled slowdown for A/B tests of the regression gate."""

    def __init__(self, inner: BaseRunner, fraction: float):
        self.inner, self.fraction = inner, fraction
        self.name, self.threads = inner.name, inner.threads
        self.batch_invariant = getattr(inner, "batch_invariant", True)
        self.groups = getattr(inner, "groups", None)

    def predict_logits(self, texts: Sequence[str]) -> np.ndarray:
        import time

        t = time.perf_counter()
        out = self.inner.predict_logits(texts)
        busy_spin(self.fraction * (time.perf_counter() - t))
        return out

    def close(self) -> None:
        self.inner.close()


RUNNERS: dict[str, type[BaseRunner]] = {
    "hf": TorchRunner, "hf-pruned": TorchRunner, "torch-int8": TorchRunner, "onnx": OnnxRunner,
    "numpy-bert": NumpyRunner,
}


def runner_class(fmt: str) -> Any:
    """The runner of an artifact format: slimbench's own, else a registered runtime extension's
    (its format is the runtime's name); None if neither knows it."""
    if fmt in RUNNERS:
        return RUNNERS[fmt]
    from slimbench.extensions import extension

    ext = extension(fmt)
    return ext.runner if ext else None


def progress_bar(items: Any, desc: str | None) -> Any:
    """`items` with a progress bar when `desc` is given (tqdm imported only then: runners stay light)."""
    if desc is None:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="batch", leave=False, mininterval=2.0)


def predict_in_batches(runner: LogitsToLabels, texts: Sequence[str], batch_size: int = 64,
                       desc: str | None = None) -> list[Any]:
    """Labels of every text as each would be predicted alone (order of `texts` kept); with `desc`, a
    progress bar. A batch-invariant runner predicts them in length-sorted batches of `batch_size`,
    which give the same labels faster; any other (the INT8 runtimes, whose activation scales span
    the batch) predicts one text at a time, so its accuracy is what a batch-1 deployment -- the
    latency column's setting -- gets, not an artefact of which sentences were batched together."""
    if not getattr(runner, "batch_invariant", True):
        batch_size = 1
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    pred: list[Any] = [0] * len(texts)
    for start in progress_bar(range(0, len(order), batch_size), desc):
        idx = order[start : start + batch_size]
        for i, p in zip(idx, runner.predict([texts[i] for i in idx]), strict=True):
            pred[i] = p
    return pred


def open_runner(artifact_dir: Path, threads: int = 1) -> BaseRunner:
    """Load a built variant for prediction, once `verify_artifact` accepts it; the manifest says which
    runtime it needs."""
    verify_artifact(artifact_dir)
    manifest = read_manifest(artifact_dir)
    return runner_class(manifest["format"])(Path(artifact_dir), threads, manifest)
