"""Per-inference latency through the public predict path (tokenize + forward + argmax), batch 1,
on real test sentences; and throughput at a larger batch.

Timed out of this process: each variant runs in its own worker processes (two by default, the
rounds alternating between them), all workers alive
together, sampled in interleaved rounds (every variant one block per round, rotated order, the
block's first call discarded; see `slimbench.measure.interleave`). pytest-benchmark receives exactly those
samples through the replay clock. Ratios to `standard` come from the paired rounds, with 95 % CIs.
"""

import pytest

from slimbench.measure import flatten_rounds, latency_figures, paired_figures, throughput_figures
from slimbench.plugin.session import REPLAY_CLOCK

pytestmark = pytest.mark.benchmark(timer=REPLAY_CLOCK)
REFERENCE = "standard"


def _reference_rounds(slimbench_session, variant, metric):
    if variant.name == REFERENCE or REFERENCE not in slimbench_session.variant_names():
        return None
    try:
        return slimbench_session.timed_rounds(slimbench_session.variant(REFERENCE), metric)
    except Exception:  # the reference failed: its own row says why; no ratios here
        return None


def test_latency(benchmark, variant, slimbench_session, measure):
    rounds = measure(lambda: slimbench_session.timed_rounds(variant, "latency"))
    samples, index = flatten_rounds(rounds)
    measure(lambda: REPLAY_CLOCK.replay(benchmark, samples))
    figures = latency_figures(samples)
    ref = _reference_rounds(slimbench_session, variant, "latency")
    if ref is not None:
        figures.update(paired_figures(rounds, ref, {"p50_ratio": 50, "p90_ratio": 90}))
    slimbench_session.record(benchmark, variant, "latency", figures, {"latency_s": samples, "latency_round": index},
                             timing=slimbench_session.timed().how)


def test_throughput(benchmark, variant, slimbench_session, measure):
    rounds = measure(lambda: slimbench_session.timed_rounds(variant, "throughput"))
    samples, index = flatten_rounds(rounds)
    measure(lambda: REPLAY_CLOCK.replay(benchmark, samples))
    figures = throughput_figures(slimbench_session.config.settings.throughput_batch, samples)
    ref = _reference_rounds(slimbench_session, variant, "throughput")
    if ref is not None:
        figures.update(paired_figures(rounds, ref, {"batch_ratio": 50}))
    slimbench_session.record(benchmark, variant, "throughput", figures, {"batch_s": samples, "batch_round": index},
                             timing=slimbench_session.timed().how)
