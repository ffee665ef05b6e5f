"""Peak memory: the kernel's high-water mark (VmHWM) of a fresh process after imports, after load and
after 50 batch-1 predictions. No sampler runs: the kernel keeps the exact peak. The probes are the
same fresh processes that time start-up (round-robin across variants)."""

import pytest

from slimbench.measure import memory_figures
from slimbench.plugin.session import REPLAY_CLOCK

pytestmark = pytest.mark.benchmark(timer=REPLAY_CLOCK)


def test_memory(benchmark, variant, slimbench_session, measure):
    cfg = slimbench_session.config.settings
    results = measure(lambda: slimbench_session.probe_results(variant, cfg.memory_samples))
    measure(lambda: REPLAY_CLOCK.replay(benchmark, [r.wall_s for r in results]))
    samples = {k: [float(r.vmhwm_bytes[k]) for r in results] for k in ("after_import", "after_load", "after_inference")}
    if all(r.rss_bytes for r in results):  # the RSS after inference, split: anonymous and file-backed
        samples.update({f"rss_{kind}": [float(r.rss_bytes[kind]) for r in results] for kind in ("anon", "file")})
    samples["child_latency_s"] = [s for r in results for s in r.warm_latency_s]
    slimbench_session.record(benchmark, variant, "memory", memory_figures(results), samples)
