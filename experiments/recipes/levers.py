"""Post-training levers of issue 14, judged on the VALIDATION split (never the test split).

For each lever, the graph is built from the cached fp32 artifacts (standard, ultra-light) with the
same library functions the build uses, then every graph's validation accuracy, its agreement with
the fp32 source's predictions and its size are written to levers.md / levers.json. Speed is not
measured here (see fuse.md: a paired `slimbench compare`, nothing else running).

    python experiments/recipes/levers.py [--cache ~/.cache/slimbench] [--out experiments/recipes]

Deterministic: re-running gives the same table (the int8 kernels are exact, calibration is seeded).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import tempfile
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def artifact(cache: Path, name: str) -> Path:
    """The newest built artifact directory of a variant in the cache."""
    dirs = sorted((cache / "artifacts").glob(f"{name}-" + "[0-9a-f]" * 12), key=lambda p: p.stat().st_mtime)
    if not dirs:
        raise SystemExit(f"{name} is not built in {cache}; run `slimbench build --variants {name}` first")
    return dirs[-1]


class Evaluator:
    """Validation accuracy and agreement of ONNX graphs / torch models with one tokenizer."""

    def __init__(self, source: Path, max_length: int):
        from slimbench.data import load_dataset
        from slimbench.runtimes.runners import Encoder

        val = load_dataset().val
        self.labels = np.array([e.label for e in val])
        encoder = Encoder(source / "tokenizer.json", max_length)
        texts = [e.text for e in val]
        self.batches = [encoder(texts[i : i + 64]) for i in range(0, len(texts), 64)]
        self.reference: np.ndarray | None = None

    def onnx(self, path: Path) -> np.ndarray:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.log_severity_level = 2, 3
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        return np.concatenate([session.run(None, {"input_ids": i, "attention_mask": m})[0].argmax(-1)
                               for i, m in self.batches])

    def torch(self, model, batches=None) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return np.concatenate([model(input_ids=torch.from_numpy(i), attention_mask=torch.from_numpy(m))
                                   .logits.argmax(-1).numpy() for i, m in batches or self.batches])

    def one_by_one(self, source: Path, max_length: int) -> list:
        """Batch-1 feeds (no padding): dynamic INT8 takes its activation range per call, so its
        predictions depend on a sentence's batch-mates; batch 1 is what the latency column times."""
        from slimbench.data import load_dataset
        from slimbench.runtimes.runners import Encoder

        encoder = Encoder(source / "tokenizer.json", max_length)
        return [encoder([e.text]) for e in load_dataset().val]

    def row_b1(self, lever: str, predictions: np.ndarray, predictions_b1: np.ndarray, reference_b1: np.ndarray) -> dict:
        return {**self.row(lever, predictions, None), "val_accuracy_b1": float((predictions_b1 == self.labels).mean()),
                "agreement_with_fp32_b1": float((predictions_b1 == reference_b1).mean())}

    def row(self, lever: str, predictions: np.ndarray, size: int | None) -> dict:
        if self.reference is None:
            self.reference = predictions
        return {"lever": lever, "val_accuracy": float((predictions == self.labels).mean()),
                "agreement_with_fp32": float((predictions == self.reference).mean()),
                "size_mb": None if size is None else size / 1e6}


def onnx_levers(cache: Path, tmp: Path) -> list[dict]:
    import onnx

    from slimbench.build.compress import onnx_dynamic_int8, onnx_int4_embeddings, onnx_static_int8
    from slimbench.build.export import export_onnx
    from slimbench.build.fuse import fuse_transformer
    from slimbench.formats.torch_io import load_torch_model

    rows = []
    for name, max_length in (("standard", 64), ("ultra-light", 32)):
        src = artifact(cache, name)
        ev = Evaluator(src, max_length)
        model = load_torch_model(src, "hf").eval()
        cfg = model.config
        d = tmp / name
        d.mkdir()
        export_onnx(model, d / "dynamo.onnx", max_length, cfg.vocab_size)
        export_onnx(copy.deepcopy(model), d / "ts.onnx", max_length, cfg.vocab_size, fusable=True)
        fuse_transformer(d / "ts.onnx", d / "fused.onnx", cfg.num_attention_heads, cfg.hidden_size,
                         cfg.num_hidden_layers)
        graphs = {"fp32 (dynamo export)": d / "dynamo.onnx", "fp32 fused": d / "fused.onnx"}
        onnx_dynamic_int8(d / "dynamo.onnx", d / "int8.onnx")
        onnx_dynamic_int8(d / "fused.onnx", d / "fused-int8.onnx")
        graphs["dynamic INT8 (before)"] = d / "int8.onnx"
        graphs["fused + dynamic INT8 (QAttention)"] = d / "fused-int8.onnx"
        if name == "ultra-light":
            onnx_dynamic_int8(d / "fused.onnx", d / "fused-int8-noemb.onnx", gather=False)
            for block in (32, 64, 128):
                onnx_int4_embeddings(d / "fused-int8-noemb.onnx", d / f"int4-{block}.onnx", block)
                graphs[f"fused + INT8 + INT4 embeddings, block {block}"] = d / f"int4-{block}.onnx"
        else:
            feeds = calibration_feeds(src, max_length)
            onnx_static_int8(d / "dynamo.onnx", d / "static.onnx", feeds)
            onnx_static_int8(d / "dynamo.onnx", d / "static-hybrid.onnx", feeds, dynamic_after_gelu=True)
            graphs["static INT8 (before)"] = d / "static.onnx"
            graphs["static INT8, FFN output projections dynamic"] = d / "static-hybrid.onnx"
            onnx_static_int8(d / "fused.onnx", d / "fused-static.onnx", feeds)
            onnx_static_int8(d / "fused.onnx", d / "fused-static-hybrid.onnx", feeds, dynamic_after_gelu=True)
            graphs["fused + static INT8 (Attention dynamic)"] = d / "fused-static.onnx"
            graphs["fused + static INT8, Attention and FFN output projections dynamic (kept)"] = d / "fused-static-hybrid.onnx"
        for lever, path in graphs.items():
            onnx.checker.check_model(str(path))
            tokenizer = (src / "tokenizer.json").stat().st_size
            rows.append({"model": name, **ev.row(lever, ev.onnx(path), path.stat().st_size + tokenizer)})
    return rows


def calibration_feeds(src: Path, max_length: int) -> list[dict[str, np.ndarray]]:
    """The build's calibration: 512 training sentences (seeded pick), sorted by length, batches of 32."""
    from slimbench.data import load_dataset
    from slimbench.runtimes.runners import Encoder

    train = load_dataset().train
    pick = np.random.default_rng(0).choice(len(train), size=512, replace=False)
    texts = sorted((train[int(i)].text for i in pick), key=len)
    encoder = Encoder(src / "tokenizer.json", max_length)
    return [dict(zip(("input_ids", "attention_mask"), encoder(texts[s : s + 32]), strict=True))
            for s in range(0, 512, 32)]


def torch_int8_levers(cache: Path) -> list[dict]:
    """torch dynamic INT8 of standard with one group of Linear modules kept fp32 at a time."""
    import torch

    from slimbench.formats.torch_io import load_torch_model, quantize_dynamic_int8

    torch.set_num_threads(2)
    src = artifact(cache, "standard")
    ev = Evaluator(src, 64)
    base = load_torch_model(src, "hf").eval()
    rows = [{"model": "standard (torch)", **ev.row("fp32", ev.torch(base), None)}]
    groups = {"none (all Linear INT8)": ()}
    groups.update({f"layer {k}": (f"bert.encoder.layer.{k}.",) for k in range(6)})
    for lever, keep in groups.items():
        quantized = quantize_dynamic_int8(copy.deepcopy(base), keep)
        rows.append({"model": "standard (torch)", **ev.row(f"dynamic INT8, kept fp32: {lever}", ev.torch(quantized), None)})
    names = [n for n, _ in base.named_modules()]
    for pattern in (r"intermediate\.dense$", r"layer\.\d+\.output\.dense$"):
        keep = tuple(n for n in names if re.search(pattern, n))
        quantized = quantize_dynamic_int8(copy.deepcopy(base), keep)
        rows.append({"model": "standard (torch)",
                     **ev.row(f"dynamic INT8, kept fp32: every `{pattern}`", ev.torch(quantized), None)})
    rows += smoothing_levers(base, ev, calibration_feeds(src, 64), ev.one_by_one(src, 64))
    return rows


def smoothing_levers(base, ev: Evaluator, feeds: list[dict[str, np.ndarray]], one_by_one: list) -> list[dict]:
    """SmoothQuant scaling before torch dynamic INT8, by migration strength alpha and by which
    Linear modules are smoothed; and, without it, INT8 activations on the full 0..255 range (torch's
    fbgemm uses 0..127 unless told otherwise). Judged in batches of 64 and at batch 1."""
    import torch
    import torch.ao.nn.quantized.dynamic as nnqd

    from slimbench.formats.torch_io import linear_input_absmax, quantize_dynamic_int8, smooth_linears

    reference_b1 = ev.torch(base, one_by_one)
    rows = []

    def judge(lever: str, model) -> None:
        rows.append({"model": "standard (torch)", **ev.row_b1(lever, ev.torch(model), ev.torch(model, one_by_one),
                                                              reference_b1)})

    judge("dynamic INT8, no smoothing", quantize_dynamic_int8(copy.deepcopy(base)))
    forward = nnqd.Linear.forward

    def full_range(self, x):  # the same kernel, reduce_range=False (may saturate int16 on AVX2 without VNNI)
        return torch.ops.quantized.linear_dynamic(x, self._packed_params._packed_params, reduce_range=False).to(x.dtype)

    nnqd.Linear.forward = full_range
    try:
        judge("dynamic INT8, activations on 0..255 (reduce_range off)", quantize_dynamic_int8(copy.deepcopy(base)))
    finally:
        nnqd.Linear.forward = forward
    absmax = linear_input_absmax(base, feeds)
    groups = {"every encoder Linear (36)": r"encoder\.",
              "FFN in + out (12, kept)": r"(intermediate|layer\.\d+\.output)\.dense$",
              "FFN in (6)": r"intermediate\.dense$", "FFN out (6)": r"layer\.\d+\.output\.dense$",
              "query, key, value (18)": r"(query|key|value)$"}
    for alpha in (0.5, 0.65, 0.75, 0.8, 0.85, 0.9):
        for group, pattern in groups.items():
            if alpha != 0.8 and pattern != r"encoder\.":
                continue
            smoothed = copy.deepcopy(base)
            smooth_linears(smoothed, absmax, alpha, pattern)
            judge(f"SmoothQuant alpha {alpha}, {group} + dynamic INT8", quantize_dynamic_int8(smoothed))
    return rows


def render(rows: list[dict]) -> str:
    lines = ["# Post-training levers on the validation split (issue 14)", "",
             "Written by `python experiments/recipes/levers.py`. Agreement = share of validation "
             "sentences predicted as the fp32 source predicts them; size = graph + tokenizer, MB = 10⁶ bytes.", "",
             "| model | lever | val accuracy | agreement with fp32 | size (MB) |", "|---|---|---|---|---|"]
    for r in rows:
        if "val_accuracy_b1" in r:
            continue
        size = "–" if r["size_mb"] is None else f"{r['size_mb']:.2f}"
        lines.append(f"| {r['model']} | {r['lever']} | {r['val_accuracy']:.4f} | {r['agreement_with_fp32']:.4f} | {size} |")
    lines += ["", "## torch dynamic INT8 (`quantized`): smoothing, in batches of 64 and at batch 1", "",
              "Dynamic INT8 takes one activation range per call over the whole batch tensor, padded rows "
              "included, so a sentence's prediction depends on its batch-mates; batch 1 is what the latency "
              "column times. Smoothing's input maxima are calibrated on 512 training texts at every position "
              "the kernel sees (padding included).", "",
              "| lever | val accuracy, batches of 64 | agreement, batches of 64 | val accuracy, batch 1 | "
              "agreement, batch 1 |", "|---|---|---|---|---|"]
    for r in rows:
        if "val_accuracy_b1" in r:
            lines.append(f"| {r['lever']} | {r['val_accuracy']:.4f} | {r['agreement_with_fp32']:.4f} | "
                         f"{r['val_accuracy_b1']:.4f} | {r['agreement_with_fp32_b1']:.4f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path(os.environ.get("SLIMBENCH_CACHE", Path.home() / ".cache/slimbench")))
    parser.add_argument("--out", type=Path, default=Path(__file__).parent)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = onnx_levers(args.cache, Path(tmp)) + torch_int8_levers(args.cache)
    (args.out / "levers.json").write_text(json.dumps(rows, indent=1) + "\n")
    (args.out / "levers.md").write_text(render(rows))
    print(render(rows))


if __name__ == "__main__":
    main()
