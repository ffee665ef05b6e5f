"""Load time: fresh processes, as an application starts (import, load, first prediction), plus a
warm in-process reload. The timed value is one whole child process, spawn to exit."""

import time

from slimbench.measure import LOAD_PHASES, load_figures
from slimbench.runtime import open_runner


def test_load(benchmark, variant, slimbench_session, measure):
    cfg = slimbench_session.config
    results = measure(lambda: slimbench_session.probe_rounds(benchmark, variant, cfg.load_samples, n_predict=0))

    def warm_reloads(n=3):
        slimbench_session.ensure_healthy(variant)
        out = []
        for _ in range(n):
            t = time.perf_counter()
            runner = open_runner(variant.artifact_dir, threads=cfg.threads)
            out.append(time.perf_counter() - t)
            runner.close()
        return out

    warm = measure(warm_reloads)
    samples = {f"{p}_s": [r.phases_s[p] for r in results] for p in LOAD_PHASES}
    samples["warm_reload_s"] = warm
    slimbench_session.record(benchmark, variant, "load", load_figures(results, warm), samples)
