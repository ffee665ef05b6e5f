"""Post-training compression: torch dynamic INT8, onnxruntime dynamic INT8, vocabulary trimming,
PCA embedding initialisation."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np


def onnx_dynamic_int8(src: Path, dst: Path) -> None:
    """onnxruntime dynamic INT8 (MatMul weights per channel, Gather tables) of a single-file graph.

    The dynamo export carries value_info that makes ORT's quantizer fail shape inference
    (ShapeInferenceError), so it is cleared first; ORT re-infers what it needs.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = onnx.load(str(src))
    del model.graph.value_info[:]
    with tempfile.TemporaryDirectory() as tmp:
        cleared = Path(tmp) / "cleared.onnx"
        onnx.save(model, str(cleared))
        quantize_dynamic(str(cleared), str(dst), weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=["MatMul", "Gather"], extra_options={"WeightSymmetric": True})


SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def trim_vocabulary(tokenizer_json: dict, used_ids: Iterable[int]) -> tuple[dict, list[int]]:
    """A WordPiece tokenizer.json over only the used tokens (+ specials + single characters).

    Returns the rewritten tokenizer and the kept old ids in new-id order, to slice embedding rows.
    Texts made only of kept tokens tokenize exactly as before; other words fall back to the
    pieces that remain (single characters are always kept, so [UNK] stays rare).
    """
    vocab: dict[str, int] = tokenizer_json["model"]["vocab"]
    keep = set(used_ids)
    for token, idx in vocab.items():
        bare = token[2:] if token.startswith("##") else token
        if token in SPECIAL_TOKENS or len(bare) == 1:
            keep.add(idx)
    kept_old = sorted(keep)
    inverse = {idx: tok for tok, idx in vocab.items()}
    new_vocab = {inverse[old]: new for new, old in enumerate(kept_old)}
    out = json.loads(json.dumps(tokenizer_json))
    out["model"]["vocab"] = new_vocab
    for added in out.get("added_tokens", []):
        added["id"] = new_vocab[added["content"]]
    post = out.get("post_processor") or {}
    for special in (post.get("special_tokens") or {}).values():
        special["ids"] = [new_vocab[t] for t in special["tokens"]]
    if out.get("padding"):
        out["padding"]["pad_id"] = new_vocab["[PAD]"]
    return out, kept_old


def pca_projection(matrix: np.ndarray, dims: int) -> tuple[np.ndarray, np.ndarray]:
    """(mean, components[dims x d]) of the rows of `matrix`, components by explained variance."""
    mean = matrix.mean(axis=0)
    _, _, vt = np.linalg.svd(matrix - mean, full_matrices=False)
    return mean, vt[:dims]
