"""Post-training compression: torch dynamic INT8, onnxruntime dynamic and static INT8, vocabulary
trimming, PCA embedding initialisation."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np


def onnx_dynamic_int8(src: Path, dst: Path, gather: bool = True) -> None:
    """onnxruntime dynamic INT8 of a single-file graph: MatMul weights and fused Attention's QKV
    weights per channel (symmetric int8); Gather tables (the embeddings) too unless `gather` is False
    (when a later step quantizes them to INT4 instead).

    The dynamo export carries value_info that makes ORT's quantizer fail shape inference
    (ShapeInferenceError), so it is cleared first; ORT re-infers what it needs. Fused contrib ops
    (com.microsoft) have no shape inference, hence the float default for their outputs.
    """
    ops = ["MatMul", "Attention"] + (["Gather"] if gather else [])
    with tempfile.TemporaryDirectory() as tmp:
        _quantize_dynamic(_cleared_copy(src, Path(tmp))[0], dst, ops)


def _quantize_dynamic(src: Path, dst: Path, ops: Sequence[str], nodes: Sequence[str] | None = None) -> None:
    """ORT dynamic INT8, weights symmetric per channel, of `ops` (only `nodes` if given)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=True, op_types_to_quantize=list(ops),
                     nodes_to_quantize=list(nodes or []),
                     extra_options={"WeightSymmetric": True, "DefaultTensorType": onnx.TensorProto.FLOAT})


# One scale per 128 weights along the hidden axis. Chosen on the validation split for
# ultra-light-onnx-int8 (hidden 128, i.e. one scale per embedding row): blocks of 32 / 64 / 128 kept
# 0.983 / 0.990 / 0.992 agreement with fp32, and 128 is also the smallest file.
INT4_EMBEDDING_BLOCK = 128


def onnx_int4_embeddings(src: Path, dst: Path, block_size: int = INT4_EMBEDDING_BLOCK) -> None:
    """Embedding tables (constant Gather inputs) to symmetric INT4 in blocks along the hidden axis,
    as onnxruntime's GatherBlockQuantized contrib op: half the bytes of INT8 tables, dequantized per
    gathered row at run time."""
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import (
        DefaultWeightOnlyQuantConfig,
        MatMulNBitsQuantizer,
    )
    from onnxruntime.quantization.quant_utils import QuantFormat

    config = DefaultWeightOnlyQuantConfig(block_size=block_size, is_symmetric=True, quant_format=QuantFormat.QOperator,
                                          op_types_to_quantize=("Gather",), quant_axes=(("Gather", 1),))
    quantizer = MatMulNBitsQuantizer(onnx.load(str(src)), algo_config=config)
    with np.errstate(invalid="ignore"):  # an all-zero row (e.g. [PAD]) has scale 0; ORT writes zeros for it
        quantizer.process()
    quantizer.model.save_model_to_file(str(dst), use_external_data_format=False)


def _cleared_copy(src: Path, tmp: Path, typed: bool = False) -> tuple[Path, Any]:
    """`src` without its value_info, saved in `tmp`, and the loaded model; `typed`: re-typed by
    onnxruntime's symbolic shape inference when the graph holds contrib (com.microsoft) ops, which
    ONNX's shape inference cannot type."""
    import onnx

    model = onnx.load(str(src))
    del model.graph.value_info[:]
    if typed and any(n.domain == "com.microsoft" for n in model.graph.node):
        from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

        model = SymbolicShapeInference.infer_shapes(model, auto_merge=True)
    cleared = tmp / "cleared.onnx"
    onnx.save(model, str(cleared))
    return cleared, model


# Not Add/Mul: the attention-mask Add carries float32-min for padded keys, and a calibrated range
# that includes -3.4e38 quantizes every real activation to zero (agreement fell to chance).
STATIC_OPS = ["MatMul", "Gemm", "Gather"]


GELU_OPS = ("Gelu", "BiasGelu", "FastGelu")  # the fused graph's GELU is BiasGelu (bias folded in)


def matmuls_after_gelu(graph: Any) -> list[str]:
    """Names of the MatMul nodes of an onnx GraphProto whose input is a GELU's output: the FFN
    output projections."""
    producer = {out: node.op_type for node in graph.node for out in node.output}
    return [n.name for n in graph.node if n.op_type == "MatMul" and any(producer.get(i) in GELU_OPS for i in n.input)]


def onnx_static_int8(src: Path, dst: Path, calibration: Sequence[Mapping[str, np.ndarray]],
                     method: str = "minmax", dynamic_after_gelu: bool = False) -> list[str]:
    """onnxruntime static INT8 in QDQ form: weights per channel (symmetric int8) AND activations
    quantized with ranges calibrated beforehand on `calibration` feeds (training sentences).

    Unlike dynamic INT8, no activation range is computed at run time; the price is that the
    calibration must cover the activations the model will see. `method`: minmax | percentile | entropy.

    dynamic_after_gelu: the FFN output projections, whose inputs are GELU outputs with a long tail
    that one calibrated range serves badly, are quantized dynamically instead (range per call).
    On standard's validation split this took agreement with fp32 from 0.934 to 0.966.

    A fused graph (onnx-fuse) is typed by onnxruntime's symbolic shape inference first: ONNX's own
    does not know the contrib ops, and the quantizer skips every tensor whose type it cannot infer
    (it then left the MatMuls fp32 behind per-call weight dequantization, slower than fp32). ORT's
    quantizer has no static form of the fused Attention, so its QKV projection is quantized
    dynamically (QAttention, as in dynamic INT8). Returns the names of the nodes quantized dynamically.
    """
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    methods = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
               "entropy": CalibrationMethod.Entropy}
    if method not in methods:
        raise ValueError(f"calibration method must be one of {sorted(methods)}, got {method!r}")
    if not calibration:
        raise ValueError("static quantization needs at least one calibration batch")

    class Feeds(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter(calibration)

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self.it, None)
            return None if batch is None else dict(batch)

    extra: dict[str, bool | float] = {"WeightSymmetric": True, "ActivationSymmetric": False}
    if method == "percentile":
        extra["CalibPercentile"] = 99.99
    with tempfile.TemporaryDirectory() as tmp:
        cleared, model = _cleared_copy(src, Path(tmp), typed=True)
        dynamic = (matmuls_after_gelu(model.graph) if dynamic_after_gelu else []) + _contrib_nodes(model.graph, "Attention")
        static_out = Path(tmp) / "static.onnx" if dynamic else dst
        quantize_static(str(cleared), str(static_out), Feeds(), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        op_types_to_quantize=STATIC_OPS, nodes_to_exclude=dynamic, calibrate_method=methods[method],
                        extra_options=extra)
        if dynamic:
            _quantize_dynamic(static_out, dst, ["MatMul", "Attention"], dynamic)
    return dynamic


def _contrib_nodes(graph: Any, op_type: str) -> list[str]:
    """Names of the com.microsoft `op_type` nodes (not ONNX's own op of that name, e.g. opset 23's Attention)."""
    return [n.name for n in graph.node if n.op_type == op_type and n.domain == "com.microsoft"]


SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def trim_vocabulary(tokenizer_json: dict, used_ids: Iterable[int]) -> tuple[dict, list[int]]:
    """A tokenizer.json over only the used tokens (+ specials + single characters), for a WordPiece
    (BERT), byte-level BPE (RoBERTa) or Unigram (ALBERT, XLM-R) model.

    Returns the rewritten tokenizer and the kept old ids in new-id order, to slice embedding rows.
    Texts made only of kept tokens tokenize exactly as before: a BPE keeps every merge that can build
    a kept token (and the tokens those merges join); a Unigram keeps its pieces' scores, so the best
    segmentation over the smaller vocabulary is the one it chose before. Other words fall back to the
    pieces that remain (single characters are always kept, so the unknown token stays rare).
    """
    model = tokenizer_json["model"]
    kind = model.get("type", "WordPiece")
    if kind == "Unigram":
        vocab: dict[str, int] = {piece: i for i, (piece, _) in enumerate(model["vocab"])}
    else:
        vocab = model["vocab"]
    specials = set(SPECIAL_TOKENS) | {a["content"] for a in tokenizer_json.get("added_tokens", []) if a.get("special")}
    keep = set(used_ids)
    for token, idx in vocab.items():
        bare = token[2:] if token.startswith("##") else token
        if token in specials or len(bare) == 1:
            keep.add(idx)
    inverse = {idx: tok for tok, idx in vocab.items()}
    out = json.loads(json.dumps(tokenizer_json))
    if kind == "BPE":
        merges = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in model["merges"]]
        keep |= {vocab[t] for t in _merge_closure({inverse[i] for i in keep}, merges)}
        kept_tokens = {inverse[i] for i in keep}
        out["model"]["merges"] = [m for m, (a, b) in zip(model["merges"], merges, strict=True)
                                  if a in kept_tokens and b in kept_tokens and a + b in kept_tokens]
    kept_old = sorted(keep)
    new_vocab = {inverse[old]: new for new, old in enumerate(kept_old)}
    if kind == "Unigram":
        out["model"]["vocab"] = [model["vocab"][old] for old in kept_old]
        if model.get("unk_id") is not None:
            out["model"]["unk_id"] = new_vocab[inverse[model["unk_id"]]]
    else:
        out["model"]["vocab"] = new_vocab
    for added in out.get("added_tokens", []):
        added["id"] = new_vocab[added["content"]]
    _remap_post_processor(out.get("post_processor") or {}, new_vocab)
    if out.get("padding"):
        out["padding"]["pad_id"] = new_vocab[out["padding"].get("pad_token", "[PAD]")]
    return out, kept_old


def _merge_closure(tokens: set[str], merges: Sequence[tuple[str, ...]]) -> set[str]:
    """`tokens` and every token a BPE merge joins on the way to one of them."""
    producers: dict[str, list[tuple[str, ...]]] = {}
    for a, b in merges:
        producers.setdefault(a + b, []).append((a, b))
    closed, todo = set(tokens), list(tokens)
    while todo:
        for pair in producers.get(todo.pop(), ()):
            for part in pair:
                if part not in closed:
                    closed.add(part)
                    todo.append(part)
    return closed


def _remap_post_processor(post: dict, new_vocab: dict[str, int]) -> None:
    """The special-token ids a post-processor inserts ([CLS]/[SEP], <s>/</s>), in the new vocabulary."""
    for special in (post.get("special_tokens") or {}).values():
        special["ids"] = [new_vocab[t] for t in special["tokens"]]
    for key in ("sep", "cls"):  # RobertaProcessing / BertProcessing: [token, id]
        if isinstance(post.get(key), list):
            post[key][1] = new_vocab[post[key][0]]
    for inner in post.get("processors") or []:  # a Sequence of processors
        _remap_post_processor(inner, new_vocab)


def pca_projection(matrix: np.ndarray, dims: int) -> tuple[np.ndarray, np.ndarray]:
    """(mean, components[dims x d]) of the rows of `matrix`, components by explained variance."""
    mean = matrix.mean(axis=0)
    _, _, vt = np.linalg.svd(matrix - mean, full_matrices=False)
    return mean, vt[:dims]
