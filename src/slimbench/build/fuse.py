"""onnxruntime's transformer optimizer on an exported BERT graph: Attention, SkipLayerNormalization
and BiasGelu fused into single kernels, before any quantization (INT8 of the fused graph quantizes
the fused Attention's QKV weights as one QAttention)."""

from __future__ import annotations

from pathlib import Path

from slimbench.errors import BuildError


def fuse_transformer(src: Path, dst: Path, num_heads: int, hidden_size: int, num_layers: int,
                     separate_qkv: bool = False) -> dict[str, int]:
    """Write the fused graph of `src` to `dst`; returns the fused operator counts.

    separate_qkv: fuse each attention block as MultiHeadAttention, which keeps the query, key and
    value projections as three MatMuls (weight-only N-bit quantization, `slimbench.build.nbits`,
    quantizes MatMul weights; the Attention op holds all three in one input it cannot reach).

    The embedding fusion (EmbedLayerNormalization) is left out on purpose: that kernel takes the
    whole embedding table as one input, so INT8/INT4 embeddings would have to be dequantized in full
    on every call (measured 1.5x slower than unfused); unfused, the quantized Gather dequantizes only
    the rows it reads. Raises BuildError when not every layer's attention was fused (an export form the
    optimizer does not recognise), rather than publish a half-fused graph under a fused name.
    """
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    options = FusionOptions("bert")
    options.enable_embed_layer_norm = False
    options.use_multi_head_attention = separate_qkv
    attention = "MultiHeadAttention" if separate_qkv else "Attention"
    optimized = optimize_model(str(src), model_type="bert", num_heads=num_heads, hidden_size=hidden_size,
                               opt_level=0, optimization_options=options)
    counts = {k: int(v) for k, v in optimized.get_fused_operator_statistics().items() if v}
    if counts.get(attention, 0) != num_layers:
        raise BuildError(f"onnx-fuse: the transformer optimizer fused {counts.get(attention, 0)} of {num_layers} "
                         "attention blocks; this architecture's graph is not one it recognises -- drop the "
                         "'onnx-fuse' step for this variant")
    optimized.save_model_to_file(str(dst), use_external_data_format=False)
    return counts
