"""Per-inference latency through the public predict path (tokenize + forward + argmax), batch 1,
each round on the next real test sentence; and throughput at a larger batch."""

import itertools

import pytest

from slimbench.measure import latency_figures, throughput_figures

# Garbage collections of the (large) pytest process land at random inside sub-millisecond samples.
pytestmark = pytest.mark.benchmark(disable_gc=True)


def test_latency(benchmark, variant, slimbench_session, measure):
    cfg = slimbench_session.config
    runner = measure(lambda: slimbench_session.runner(variant))
    sentences = itertools.cycle(slimbench_session.test_texts())

    def next_sentence():
        return ([next(sentences)],), {}

    measure(lambda: benchmark.pedantic(runner.predict, setup=next_sentence, rounds=cfg.latency_rounds,
                                       warmup_rounds=cfg.latency_warmup))
    samples = list(benchmark.stats.stats.data)
    slimbench_session.record(benchmark, variant, "latency", latency_figures(samples), {"latency_s": samples})


def test_throughput(benchmark, variant, slimbench_session, measure):
    cfg = slimbench_session.config
    runner = measure(lambda: slimbench_session.runner(variant))
    batch = slimbench_session.test_texts(cfg.throughput_batch)
    measure(lambda: benchmark.pedantic(runner.predict, args=(batch,), rounds=cfg.throughput_rounds,
                                       warmup_rounds=1))
    samples = list(benchmark.stats.stats.data)
    slimbench_session.record(benchmark, variant, "throughput", throughput_figures(len(batch), samples),
                             {"batch_s": samples})
