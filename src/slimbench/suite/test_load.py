"""Load time: fresh processes, as an application starts (interpreter, import, load, first
prediction, each timed in the child), taken round-robin across variants; plus a warm reload in the
variant's timing worker. The pytest-benchmark samples are the probes' spawn-to-exit wall times."""

import pytest

from slimbench.analysis.results import LOAD_STOP_RULE
from slimbench.measure import LOAD_PHASES, load_figures
from slimbench.plugin.session import REPLAY_CLOCK

pytestmark = pytest.mark.benchmark(timer=REPLAY_CLOCK)


def test_load(benchmark, variant, slimbench_session, measure):
    cfg = slimbench_session.config.settings
    results = measure(lambda: slimbench_session.probe_results(variant, cfg.load_samples))
    measure(lambda: REPLAY_CLOCK.replay(benchmark, [r.wall_s for r in results]))
    warm = slimbench_session.observations().reload_s.get(variant.name, [])
    samples = {f"{p}_s": [r.phases_s[p] for r in results] for p in LOAD_PHASES}
    for p in ("import", "load"):  # the CPU the process used meanwhile (`ProbeResult.phases_cpu_s`)
        if all(p in r.phases_cpu_s for r in results):
            samples[f"{p}_cpu_s"] = [r.phases_cpu_s[p] for r in results]
    # which samples are timing workers' own start-ups (1) and which fresh probes (0)
    samples["worker_start"] = [1.0 if r.source == "worker" else 0.0 for r in results]
    if warm:
        samples["warm_reload_s"] = warm
    slimbench_session.record(benchmark, variant, "load", load_figures(results, warm), samples,
                             timing={"method": "fresh process per sample, round-robin across variants",
                                     "samples": len(results), "samples_range": list(slimbench_session.probe_counts()),
                                     "spread": cfg.load_spread, "rule": LOAD_STOP_RULE})
