"""Static INT8 of the fused graph (onnx-static-int8 since 2026-12-01): calibration alternatives
judged on the VALIDATION split, in batches of 64 and at batch 1, against the fused fp32 graph;
then, for the record only (never to choose), the test split's flips of the kept recipe, of the
unfused static graph it replaces and of dynamic INT8.

    python reports/evidence/recipes/static_calibration.py [--cache ~/.cache/slimbench] [--out reports/evidence/recipes]

Writes static-calibration.md / .json. Deterministic (seeded calibration picks, exact int8 kernels).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).parent))

from levers import Evaluator, artifact  # noqa: E402


def feeds(src: Path, n: int, fixed: bool) -> list[dict[str, np.ndarray]]:
    """The build's calibration pick (seed 0) of `n` training sentences, length-sorted, batches of 32;
    `fixed`: padded to 64 tokens, as the histogram calibrators need."""
    from slimbench.data import load_dataset
    from slimbench.runtime import Encoder

    train = load_dataset().train
    pick = np.random.default_rng(0).choice(len(train), size=n, replace=False)
    texts = sorted((train[int(i)].text for i in pick), key=len)
    encoder = Encoder(src / "tokenizer.json", 64)
    out = []
    for start in range(0, n, 32):
        ids, mask = encoder(texts[start : start + 32])
        if fixed:
            width = ((0, 0), (0, 64 - ids.shape[1]))
            ids, mask = np.pad(ids, width, constant_values=encoder.pad_id), np.pad(mask, width)
        out.append({"input_ids": ids, "attention_mask": mask})
    return out


def session(path: Path):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.log_severity_level = 2, 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def graphs(src: Path, d: Path) -> dict[str, Path]:
    from slimbench.build import compress
    from slimbench.build.compress import onnx_dynamic_int8, onnx_static_int8
    from slimbench.build.export import export_onnx
    from slimbench.build.fuse import fuse_transformer
    from slimbench.torch_io import load_torch_model

    model = load_torch_model(src, "hf").eval()
    cfg = model.config
    export_onnx(model, d / "dynamo.onnx", 64, cfg.vocab_size)
    export_onnx(copy.deepcopy(model), d / "ts.onnx", 64, cfg.vocab_size, fusable=True)
    fuse_transformer(d / "ts.onnx", d / "fused.onnx", cfg.num_attention_heads, cfg.hidden_size, cfg.num_hidden_layers)
    out = {"fp32 fused": d / "fused.onnx"}
    onnx_dynamic_int8(d / "fused.onnx", d / "dynamic.onnx")
    out["fused + dynamic INT8 (onnx-int8)"] = d / "dynamic.onnx"
    onnx_static_int8(d / "dynamo.onnx", d / "unfused.onnx", feeds(src, 512, False), dynamic_after_gelu=True)
    out["unfused static, FFN output projections dynamic (before)"] = d / "unfused.onnx"
    for lever, n, method in (("minmax, 512 texts (kept)", 512, "minmax"), ("minmax, 2048 texts", 2048, "minmax"),
                             ("percentile 99.99, 512 texts", 512, "percentile"), ("entropy, 512 texts", 512, "entropy")):
        path = d / f"{method}-{n}.onnx"
        onnx_static_int8(d / "fused.onnx", path, feeds(src, n, method != "minmax"), method, dynamic_after_gelu=True)
        out[f"fused static: {lever}"] = path
    after_gelu = compress.matmuls_after_gelu

    def and_ffn_inputs(graph) -> list[str]:
        names = [n.name for n in graph.node if n.op_type == "MatMul" and "intermediate" in n.name]
        return after_gelu(graph) + names

    compress.matmuls_after_gelu = and_ffn_inputs
    try:
        onnx_static_int8(d / "fused.onnx", d / "ffn-in-dynamic.onnx", feeds(src, 512, False), dynamic_after_gelu=True)
    finally:
        compress.matmuls_after_gelu = after_gelu
    out["fused static: minmax 512, FFN input projections dynamic too"] = d / "ffn-in-dynamic.onnx"
    return out


def test_flips(src: Path, paths: dict[str, Path]) -> list[dict]:
    from slimbench.data import load_dataset
    from slimbench.runtime import Encoder

    test = load_dataset().test
    labels = np.array([e.label for e in test])
    encoder = Encoder(src / "tokenizer.json", 64)
    batches = [encoder([e.text for e in test[i : i + 64]]) for i in range(0, len(test), 64)]
    preds = {k: np.concatenate([session(p).run(None, {"input_ids": i, "attention_mask": m})[0].argmax(-1)
                                for i, m in batches]) for k, p in paths.items()}
    ref = preds["fp32 fused"]
    rows = []
    for k, p in preds.items():
        flips = p != ref
        rows.append({"graph": k, "test_accuracy": float((p == labels).mean()), "agreement": float(1 - flips.mean()),
                     "flips": int(flips.sum()), "flips_to_right": int((flips & (p == labels)).sum()),
                     "flips_to_wrong": int((flips & (p != labels)).sum())})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "slimbench")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent)
    args = ap.parse_args()
    src = artifact(args.cache, "standard")
    ev = Evaluator(src, 64)
    one_by_one = ev.one_by_one(src, 64)
    with tempfile.TemporaryDirectory() as tmp:
        paths = graphs(src, Path(tmp))
        ref_b1 = None
        rows = []
        for lever, path in paths.items():
            s = session(path)
            b1 = np.array([s.run(None, {"input_ids": i, "attention_mask": m})[0].argmax(-1)[0] for i, m in one_by_one])
            ref_b1 = b1 if ref_b1 is None else ref_b1
            rows.append(ev.row_b1(lever, ev.onnx(path), b1, ref_b1))
        kept = ("fp32 fused", "fused + dynamic INT8 (onnx-int8)", "unfused static, FFN output projections dynamic (before)",
                "fused static: minmax, 512 texts (kept)")
        flips = test_flips(src, {k: paths[k] for k in kept})
    (args.out / "static-calibration.json").write_text(json.dumps({"validation": rows, "test_record": flips}, indent=1))
    lines = ["# Static INT8 of the fused graph: calibration alternatives (issue 14)", "",
             "Written by `python reports/evidence/recipes/static_calibration.py`. Validation split; agreement = share "
             "of sentences predicted as the fused fp32 graph predicts them, in batches of 64 and one by one.", "",
             "| graph | val acc b64 | agreement b64 | val acc b1 | agreement b1 |", "|---|---|---|---|---|"]
    lines += [f"| {r['lever']} | {r['val_accuracy']:.4f} | {r['agreement_with_fp32']:.4f} | {r['val_accuracy_b1']:.4f} | "
              f"{r['agreement_with_fp32_b1']:.4f} |" for r in rows]
    lines += ["", "For the record only (chosen before this was looked at): the test split, batches of 64.", "",
              "| graph | test acc | agreement | flips | to right | to wrong |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['graph']} | {r['test_accuracy']:.4f} | {r['agreement']:.4f} | {r['flips']} | {r['flips_to_right']} | "
              f"{r['flips_to_wrong']} |" for r in flips]
    (args.out / "static-calibration.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
