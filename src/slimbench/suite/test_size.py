"""File size: bytes on disk of everything needed to run, weights alone, gzip, parameters, sparsity."""

from slimbench.measure import size_figures


def test_size(benchmark, variant, slimbench_session, measure):
    figures = measure(lambda: benchmark.pedantic(size_figures, args=(variant.artifact_dir, variant.manifest),
                                                 rounds=1, iterations=1))
    slimbench_session.record(benchmark, variant, "size", figures)
