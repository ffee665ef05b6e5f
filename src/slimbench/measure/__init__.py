"""Measuring: the one session every entry point runs (`session`), its settings (`settings`), and the
pure functions that turn raw observations into named figures (`figures`, re-exported here)."""

from __future__ import annotations

from slimbench.measure.figures import (
    LOAD_PHASES,
    Figure,
    accuracy_figures,
    figure,
    file_figures,
    flatten_rounds,
    grouped_accuracy_figures,
    gzip_size,
    latency_figures,
    load_figures,
    macro_f1,
    median_figure,
    memory_figures,
    paired_figures,
    runtime_files,
    size_figures,
    sparsity,
    throughput_figures,
    truncation_figures,
    unflatten_rounds,
    weight_tensors,
    weights_sparsity,
)

__all__ = ["LOAD_PHASES", "Figure", "accuracy_figures", "figure", "file_figures", "flatten_rounds", "grouped_accuracy_figures",
           "gzip_size",
           "latency_figures", "load_figures", "macro_f1", "median_figure", "memory_figures", "paired_figures",
           "runtime_files", "size_figures", "sparsity", "throughput_figures", "truncation_figures", "unflatten_rounds",
           "weight_tensors", "weights_sparsity"]
