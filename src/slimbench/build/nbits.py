"""Weight-only N-bit quantization of an exported graph's Linear weights: onnxruntime's MatMulNBits
contrib op (4 or 8 bits, block-wise along the input axis, one fp32 scale and one zero point per
block), with the embedding tables as 4-bit GatherBlockQuantized.

Activations stay fp32 (`accuracy_level` 1: the kernel dequantizes the weight blocks and multiplies
in fp32), so a text's label never depends on the texts batched with it, and quantization-aware
training that fake-quantizes the weights alone (`slimbench.build.qat`) models the runtime exactly.

A *unit* is one Linear layer, named as its torch module (`bert.encoder.layer.0.attention.self.query`):
the sensitivity table, the mixed-precision plan and the QAT fake quantizers all speak these names.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from slimbench.errors import BuildError

BLOCK_SIZE = 32  # weights per scale along the input axis (chosen on the validation split: docs/zoo.md)
ACCURACY_LEVEL = 1  # MatMulNBits computes in fp32: weight-only quantization
BITS = (4, 8)
SCALE_BYTES = 4  # one fp32 scale per block
HEAD = "classifier"  # the output layer: kept fp32 by default (two columns; its bytes are negligible)


def unit_name(node_name: str) -> str:
    """The torch module of an exported MatMul/Gemm node: `/model/bert/encoder/layer.0/attention/self/
    query/MatMul` -> `bert.encoder.layer.0.attention.self.query` (the TorchScript exporter's scopes)."""
    parts = [p for p in node_name.split("/") if p]
    if parts and parts[0] == "model":
        parts = parts[1:]
    return ".".join(parts[:-1])


def _initializers(model: Any) -> dict[str, Any]:
    return {t.name: t for t in model.graph.initializer}


def gemm_to_matmul(model: Any) -> int:
    """Rewrite each Gemm with a constant 2-D weight (the pooler's and the head's Linear, which the
    exporter writes as Gemm on a 2-D input) as MatMul + Add, the form MatMulNBits quantizes. Exact
    in fp32; returns how many were rewritten."""
    import onnx
    from onnx import helper, numpy_helper

    inits = _initializers(model)
    nodes, changed = [], 0
    for node in model.graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        weight = inits.get(node.input[1]) if node.op_type == "Gemm" and len(node.input) > 1 else None
        if (weight is None or attrs.get("transA", 0) or attrs.get("alpha", 1.0) != 1.0
                or attrs.get("beta", 1.0) != 1.0 or len(weight.dims) != 2):
            nodes.append(node)
            continue
        w = numpy_helper.to_array(weight)
        if attrs.get("transB", 0):
            w = np.ascontiguousarray(w.T)
        name = node.name[: -len("Gemm")] + "MatMul" if node.name.endswith("Gemm") else node.name + "/MatMul"
        w_init = numpy_helper.from_array(w, name=f"{weight.name}_kn")
        model.graph.initializer.append(w_init)
        if len(node.input) > 2 and node.input[2]:
            mid = f"{node.output[0]}_matmul"
            nodes.append(helper.make_node("MatMul", [node.input[0], w_init.name], [mid], name=name))
            nodes.append(helper.make_node("Add", [mid, node.input[2]], list(node.output), name=name + "_bias"))
        else:
            nodes.append(helper.make_node("MatMul", [node.input[0], w_init.name], list(node.output), name=name))
        changed += 1
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    used = {i for n in model.graph.node for i in n.input}
    keep = [t for t in model.graph.initializer if t.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(keep)
    onnx.checker.check_model(model)
    return changed


def weight_units(model: Any) -> dict[str, dict[str, Any]]:
    """unit -> {node, shape [K, N]} for every MatMul whose weight (second input) is a 2-D initializer,
    in graph order."""
    inits = _initializers(model)
    out: dict[str, dict[str, Any]] = {}
    for node in model.graph.node:
        if node.op_type == "MatMul" and node.input[1] in inits and len(inits[node.input[1]].dims) == 2:
            unit = unit_name(node.name)
            if not unit or unit in out:
                raise BuildError(f"cannot name the Linear layer of MatMul node {node.name!r}: the graph was not "
                                 "exported by slimbench's TorchScript path (export-onnx with onnx-fuse)")
            out[unit] = {"node": node.name, "shape": [int(d) for d in inits[node.input[1]].dims]}
    return out


def unit_bytes(shape: list[int], bits: int | None, block_size: int = BLOCK_SIZE) -> int:
    """Bytes of one unit's weight: fp32 (bits None), or `bits` per weight plus one fp32 scale and a
    `bits`-wide zero point per block (K padded to whole blocks, each output's zero points packed into
    whole bytes, as MatMulNBits stores them)."""
    k, n = shape
    if bits is None:
        return 4 * k * n
    blocks = -(-k // block_size)
    return n * blocks * (block_size * bits // 8 + SCALE_BYTES) + n * -(-blocks * bits // 8)


def estimate_bytes(units: Mapping[str, dict[str, Any]], plan: Mapping[str, int | None],
                   block_size: int = BLOCK_SIZE) -> int:
    """The Linear weights' bytes under `plan` (unit -> 4, 8 or None for fp32; absent: fp32)."""
    return sum(unit_bytes(u["shape"], plan.get(name), block_size) for name, u in units.items())


def quantize_weights(src: Path, dst: Path, plan: Mapping[str, int | None], embeddings: bool,
                     block_size: int = BLOCK_SIZE) -> dict[str, int]:
    """Write `src` with each unit of `plan` as MatMulNBits at its bits (4 or 8; None stays fp32) and,
    with `embeddings`, every constant Gather table as 4-bit GatherBlockQuantized
    (compress.onnx_int4_embeddings). Returns the count of units per precision."""
    import onnx

    from slimbench.build.compress import onnx_int4_embeddings

    model = onnx.load(str(src))
    units = weight_units(model)
    unknown = sorted(set(plan) - set(units))
    if unknown:
        raise BuildError(f"the quantization plan names Linear layers the graph does not have: {unknown[:3]}")
    logging.getLogger("onnxruntime.quantization").setLevel(logging.ERROR)
    for bits in BITS:
        chosen = {units[u]["node"] for u, b in plan.items() if b == bits}
        if chosen:
            model = _nbits(model, bits, {u["node"] for u in units.values()} - chosen, block_size)
    with tempfile.TemporaryDirectory() as tmp:
        if embeddings:
            staged = Path(tmp) / "weights.onnx"
            onnx.save(model, str(staged))
            onnx_int4_embeddings(staged, dst)
        else:
            onnx.save(model, str(dst))
    counts = {"fp32": sum(1 for u in units if plan.get(u) is None)}
    counts.update({f"int{b}": sum(1 for v in plan.values() if v == b) for b in BITS})
    return counts


def _nbits(model: Any, bits: int, exclude: set[str], block_size: int) -> Any:
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    quantizer = MatMulNBitsQuantizer(model, bits=bits, block_size=block_size, is_symmetric=False,
                                     accuracy_level=ACCURACY_LEVEL, nodes_to_exclude=sorted(exclude),
                                     op_types_to_quantize=("MatMul",))
    quantizer.process()
    return quantizer.model.model


def uniform_plan(units: Mapping[str, Any], bits: int, keep_fp32: tuple[str, ...] = (HEAD,)) -> dict[str, int | None]:
    """Every unit at `bits`, except those whose name starts with a `keep_fp32` prefix."""
    return {u: (None if u.startswith(keep_fp32) else bits) for u in units}
