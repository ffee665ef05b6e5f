"""Turning raw observations into named figures: {name: {value, unit, n, [min, max, iqr]}}.

Units live in an explicit field and are never scaled here ("s", "B", "count", "ratio", "1/s");
renderers scale. Every figure carries the number of samples it summarises.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from slimbench.cache.memo import gzip_size as gzip_size  # re-exported: the sweep and pruning use it
from slimbench.cache.memo import gzip_size_memo
from slimbench.formats.manifest import runtime_files as runtime_files  # re-exported
from slimbench.labels import LabelGroups, group_figure
from slimbench.runtimes.probes import ProbeResult
from slimbench.stats import group_macro_f1s, implicit_micro_f1, paired_ratio, summarize
from slimbench.stats import macro_f1 as macro_f1  # re-exported

Figure = dict[str, Any]


def figure(value: float, unit: str, n: int = 1, samples: Sequence[float] | None = None) -> Figure:
    out: Figure = {"value": value, "unit": unit, "n": n}
    if samples is not None and len(samples) > 1:
        s = summarize(samples)
        out.update(min=s.min, max=s.max, iqr=s.iqr)
    return out


def median_figure(samples: Sequence[float], unit: str) -> Figure:
    return figure(float(np.median(samples)), unit, len(samples), samples)


# --- size ---------------------------------------------------------------------------------------

def weight_tensors(path: Path) -> list[np.ndarray]:
    """The weight tensors of a safetensors or ONNX file, as NumPy arrays (for sparsity)."""
    if path.suffix == ".onnx":
        import onnx
        from onnx import numpy_helper

        model = onnx.load(str(path))
        return [numpy_helper.to_array(t) for t in model.graph.initializer]
    if path.suffix == ".safetensors":
        from safetensors.numpy import load_file

        return list(load_file(str(path)).values())
    return []


def sparsity(tensors: Sequence[np.ndarray], min_elements: int = 2) -> tuple[float, int]:
    """(fraction of exactly-zero elements, elements counted) over matrices/vectors of weights.

    Scalars (scales, zero points) are left out: they are bookkeeping, not weights.
    """
    zeros = total = 0
    for t in tensors:
        if t.size < min_elements or t.dtype.kind not in "fiu":
            continue
        zeros += int(np.count_nonzero(t == 0))
        total += int(t.size)
    return (zeros / total if total else 0.0), total


def weights_sparsity(path: Path) -> float:
    """`sparsity` of a weights file, computed once per file contents in the cache (`memo`)."""
    from slimbench.cache import memo

    return memo.of_file("sparsity", path, lambda: float(sparsity(weight_tensors(path))[0]), float, "sparsity")


def file_figures(artifact_dir: Path, manifest: dict[str, Any]) -> dict[str, Figure]:
    """Bytes on disk, bytes after gzip -6 (computed once per file contents: `memo`) and parameters."""
    files = runtime_files(artifact_dir)
    return {
        "total_bytes": figure(sum(p.stat().st_size for p in files), "B", len(files)),
        "gzip_bytes": figure(sum(gzip_size_memo(p) for p in files), "B", len(files)),
        "parameters": figure(int(manifest.get("parameters", 0)), "count"),
    }


def size_figures(artifact_dir: Path, manifest: dict[str, Any]) -> dict[str, Figure]:
    """`file_figures`, the weights file's bytes and the fraction of exact zeros in the weights."""
    weights = Path(artifact_dir) / manifest.get("model_file", "")
    sp = weights_sparsity(weights) if weights.is_file() else 0.0
    files = file_figures(artifact_dir, manifest)
    return {"total_bytes": files["total_bytes"],
            "weights_bytes": figure(weights.stat().st_size if weights.is_file() else 0, "B"),
            "gzip_bytes": files["gzip_bytes"], "parameters": files["parameters"], "sparsity": figure(sp, "ratio")}


# --- load and memory (fresh-process probes) -----------------------------------------------------

LOAD_PHASES = ("interpreter", "import", "load", "first_predict")


def load_figures(results: Sequence[ProbeResult], warm_reload_s: Sequence[float] = ()) -> dict[str, Figure]:
    out = {f"{phase}_s": median_figure([r.phases_s[phase] for r in results], "s") for phase in LOAD_PHASES}
    out["start_to_first_prediction_s"] = median_figure([r.start_to_first_prediction_s for r in results], "s")
    if warm_reload_s:
        out["warm_reload_s"] = median_figure(list(warm_reload_s), "s")
    return out


def memory_figures(results: Sequence[ProbeResult]) -> dict[str, Figure]:
    def col(key: str) -> list[float]:
        return [float(r.vmhwm_bytes[key]) for r in results]

    imp, load, inf = col("after_import"), col("after_load"), col("after_inference")
    out = {
        "baseline_rss_bytes": median_figure(imp, "B"),
        "load_increment_bytes": median_figure([b - a for a, b in zip(imp, load, strict=True)], "B"),
        "inference_increment_bytes": median_figure([b - a for a, b in zip(load, inf, strict=True)], "B"),
        "peak_rss_bytes": median_figure(inf, "B"),
    }
    if results and all(r.rss_bytes for r in results):
        # what the peak is made of at the end: the process's own (anonymous) pages and the file-backed
        # pages of mapped libraries, whose count follows the kernel's page cache, not the variant
        out["anon_rss_bytes"] = median_figure([float(r.rss_bytes["anon"]) for r in results], "B")
        out["file_rss_bytes"] = median_figure([float(r.rss_bytes["file"]) for r in results], "B")
        # the peak less the file-backed pages mapped at the end (libraries stay mapped, so those were
        # there at the peak too): the process's own memory at its peak, free of the page cache's state
        out["peak_rss_less_file_bytes"] = median_figure(
            [float(r.vmhwm_bytes["after_inference"] - r.rss_bytes["file"]) for r in results], "B")
    warm = [s for r in results for s in r.warm_latency_s]
    if warm:
        out["child_latency_p50_s"] = figure(float(np.median(warm)), "s", len(warm))
    return out


# --- latency and throughput ---------------------------------------------------------------------

def latency_figures(samples_s: Sequence[float]) -> dict[str, Figure]:
    s = summarize(samples_s)
    n = s.n
    return {
        "p50_s": figure(s.median, "s", n), "p90_s": figure(s.p90, "s", n), "p99_s": figure(s.p99, "s", n),
        "mean_s": figure(s.mean, "s", n), "min_s": figure(s.min, "s", n),
        "iqr_s": figure(s.iqr, "s", n),
    }


RoundBlocks = Sequence[Sequence[float] | None]


def flatten_rounds(rounds: RoundBlocks) -> tuple[list[float], list[float]]:
    """(samples, the round each came from): raw samples keep their pairing for later statistics."""
    samples: list[float] = []
    index: list[float] = []
    for r, block in enumerate(rounds):
        for s in block or ():
            samples.append(float(s))
            index.append(float(r))
    return samples, index


def unflatten_rounds(samples: Sequence[float], index: Sequence[float]) -> list[list[float] | None]:
    """The inverse of `flatten_rounds` (rounds without samples are None)."""
    if len(samples) != len(index):
        raise ValueError(f"{len(samples)} samples but {len(index)} round indices")
    n = int(max(index)) + 1 if index else 0
    out: list[list[float] | None] = [None] * n
    for s, r in zip(samples, index, strict=True):
        block = out[int(r)]
        if block is None:
            block = out[int(r)] = []
        block.append(float(s))
    return out


def paired_figures(rounds: RoundBlocks, reference_rounds: RoundBlocks,
                   quantiles: Mapping[str, float]) -> dict[str, Figure]:
    """Ratios to the reference variant from rounds paired in time and input, with 95 % CIs:
    {name: {value, unit "x", n = paired rounds, low, high}}."""
    out: dict[str, Figure] = {}
    for name, q in quantiles.items():
        try:
            r = paired_ratio(rounds, reference_rounds, q)
        except ValueError:
            continue
        out[name] = {"value": r.value, "unit": "x", "n": r.rounds, "low": r.low, "high": r.high}
    return out


def throughput_figures(batch_size: int, samples_s: Sequence[float]) -> dict[str, Figure]:
    per_batch = float(np.median(samples_s))
    return {
        "sentences_per_s": figure(batch_size / per_batch, "1/s", len(samples_s)),
        "batch_s": median_figure(list(samples_s), "s"),
        "batch_size": figure(batch_size, "count"),
    }


# --- accuracy -----------------------------------------------------------------------------------

def truncation_figures(tokenizer_path: Path, max_length: int, texts: Sequence[str]) -> dict[str, Figure]:
    """What the variant does not read: its max length in tokens (special tokens included, as the
    runtime counts them), the share of `texts` longer than that (cut when predicted), and the 99th
    percentile of their lengths (what a max length covering 99 % of them would be)."""
    from tokenizers import Tokenizer

    from slimbench.build.max_length import untruncated_lengths

    lengths = untruncated_lengths(Tokenizer.from_file(str(tokenizer_path)), texts)
    n = len(lengths)
    cut = sum(length > max_length for length in lengths)
    return {"max_length": figure(float(max_length), "count"),
            "truncated_share": figure(cut / n if n else 0.0, "ratio", n),
            "tokens_p99": figure(float(np.percentile(lengths, 99)) if n else 0.0, "count", n)}


def accuracy_figures(pred: Sequence[Any], gold: Sequence[Any], num_labels: int,
                     reference_pred: Sequence[Any] | None = None, groups: LabelGroups | None = None) -> dict[str, Figure]:
    """Accuracy and macro-F1 of predicted labels against the gold ones; with `reference_pred` (the
    standard variant's), the agreement with it and the sentences only one of the two gets right. With
    label `groups` (each label a tuple of per-group indices), see `grouped_accuracy_figures`."""
    if groups is not None:
        return grouped_accuracy_figures(pred, gold, groups, reference_pred)
    n = len(gold)
    out = {
        "accuracy": figure(float(np.mean(np.asarray(pred) == np.asarray(gold))), "ratio", n),
        "macro_f1": figure(macro_f1(pred, gold, num_labels), "ratio", n),
    }
    if reference_pred is not None:
        p, r, g = np.asarray(pred), np.asarray(reference_pred), np.asarray(gold)
        out["agreement_with_standard"] = figure(float(np.mean(p == r)), "ratio", n)
        # the paired 2x2 table's off-diagonal: what the accuracy ratio's CI is computed from
        out["only_standard_right"] = figure(int(((r == g) & (p != g)).sum()), "count", n)
        out["only_variant_right"] = figure(int(((p == g) & (r != g)).sum()), "count", n)
    return out


def grouped_accuracy_figures(pred: Sequence[Sequence[int]], gold: Sequence[Sequence[int]], groups: LabelGroups,
                             reference_pred: Sequence[Sequence[int]] | None = None) -> dict[str, Figure]:
    """A multi-label variant's figures. `accuracy` is the **exact match** (the share of texts with
    every group right): the strictest of them, what a caller of `predict` relies on, what the build
    selects its epoch on, and accuracy itself when there is one group -- so every table, ratio to
    `standard`, gate rule and verdict that reads `accuracy` judges it unchanged. `exact_match` names
    it again; `macro_f1` is the mean of the groups' macro-F1; `implicit_micro_f1` is the micro-F1
    over the labels that are not none (the "implicit labels found" view). Each group then has its own
    `accuracy:GROUP`, `macro_f1:GROUP` and, with `reference_pred`, `agreement_with_standard:GROUP`,
    `only_standard_right:GROUP`, `only_variant_right:GROUP` (`labels.group_figure`)."""
    n, width = len(gold), len(groups.groups)
    p, g = (np.asarray(x, dtype=np.int64).reshape(n, width) for x in (pred, gold))
    right = (p == g).all(axis=1)
    accuracy = figure(float(right.mean()) if n else 0.0, "ratio", n)
    f1s = group_macro_f1s(p.tolist(), g.tolist(), groups.sizes)
    out = {"accuracy": accuracy, "exact_match": dict(accuracy),
           "macro_f1": figure(float(np.mean(f1s)), "ratio", n),
           "implicit_micro_f1": figure(implicit_micro_f1(p.tolist(), g.tolist(), groups.none_indices()), "ratio", n)}
    for k, grp in enumerate(groups.groups):
        out[group_figure("accuracy", grp.name)] = figure(float((p[:, k] == g[:, k]).mean()) if n else 0.0, "ratio", n)
        out[group_figure("macro_f1", grp.name)] = figure(f1s[k], "ratio", n)
    if reference_pred is not None:
        r = np.asarray(reference_pred, dtype=np.int64).reshape(n, width)
        ref_right = (r == g).all(axis=1)
        out["agreement_with_standard"] = figure(float((p == r).all(axis=1).mean()) if n else 0.0, "ratio", n)
        out["only_standard_right"] = figure(int((ref_right & ~right).sum()), "count", n)
        out["only_variant_right"] = figure(int((right & ~ref_right).sum()), "count", n)
        for k, grp in enumerate(groups.groups):
            pk, rk, gk = p[:, k], r[:, k], g[:, k]
            out[group_figure("agreement_with_standard", grp.name)] = figure(float((pk == rk).mean()) if n else 0.0,
                                                                           "ratio", n)
            out[group_figure("only_standard_right", grp.name)] = figure(int(((rk == gk) & (pk != gk)).sum()), "count", n)
            out[group_figure("only_variant_right", grp.name)] = figure(int(((pk == gk) & (rk != gk)).sum()), "count", n)
    return out
