"""`slimbench gate` and the statistics `slimbench compare` uses run in memory bounded independently
of the sample count (issue 45): the bootstrap used to build (resamples x n) index matrices, 1.1 GB
for a real 39,300-sample run and a kernel kill at 24 GB for a 68 MB results file.

Each case runs in a child process (a fresh interpreter, so the kernel's high-water mark VmHWM is
its own) under an address-space limit, so that the old code fails with a MemoryError there instead
of taking the shared machine's memory."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytestmark = pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="needs Linux's /proc")

LIMIT_BYTES = 1 << 30  # the bound: a 1.2 M-sample results file gates in < 1 GB
ADDRESS_SPACE = 3 << 29  # the child's virtual-memory cap (1.5 GB): the old code's matrices fail at once

CHILD = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, ({cap}, {cap}))
code = 0
try:
{body}
finally:
    status = open("/proc/self/status").read()
    hwm = next(int(l.split()[1]) * 1024 for l in status.splitlines() if l.startswith("VmHWM:"))
    print("VMHWM", hwm, flush=True)
sys.exit(code)
"""


def run_child(body: str, tmp_path: Path) -> tuple[int, int, str]:
    """(exit code, peak RSS in bytes, output) of `body` run in a fresh interpreter."""
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(cap=ADDRESS_SPACE, body=textwrap.indent(textwrap.dedent(body), "    ")))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=900)
    out = proc.stdout + proc.stderr
    hwm = [int(line.split()[1]) for line in proc.stdout.splitlines() if line.startswith("VMHWM")]
    assert hwm, out
    return proc.returncode, hwm[0], out


def _latency_bench(variant: str, samples: list[float]) -> dict[str, Any]:
    x = np.asarray(samples)
    figures = {f"p{q}_s": {"value": float(np.percentile(x, q)), "unit": "s", "n": x.size} for q in (50, 90, 99)}
    return {"name": f"test_latency[{variant}]", "stats": {"min": 0.0, "max": 0.0, "mean": 0.0, "median": 0.0,
                                                           "rounds": 1},
            "extra_info": {"slimbench_schema": 1, "variant": variant, "metric": "latency", "status": "ok",
                           "figures": figures, "samples": {"latency_s": samples}, "context": {"threads": 2}}}


def write_results(path: Path, n: int, slowdown: float, seed: int) -> None:
    """A results file of two variants with n/2 latency samples each (`fast` `slowdown` x slower)."""
    rng = np.random.default_rng(seed)
    half = n // 2
    benches = [_latency_bench("standard", [round(float(v), 9) for v in rng.lognormal(np.log(0.009), 0.05, half)]),
               _latency_bench("fast", [round(float(v), 9) for v in rng.lognormal(np.log(0.002 * slowdown), 0.05,
                                                                                 half)])]
    doc = {"machine_info": {"slimbench_machine": {"id": "box"}}, "commit_info": {}, "benchmarks": benches,
           "datetime": "2026-01-01T00:00:00", "slimbench": {"schema": 1, "failures": []}}
    path.write_text(json.dumps(doc))


@pytest.mark.slow
def test_gate_on_a_1_2_million_sample_file_stays_under_1_gb(tmp_path: Path) -> None:
    base, cur = tmp_path / "base.json", tmp_path / "cur.json"
    write_results(base, 1_200_000, 1.0, seed=1)
    write_results(cur, 1_200_000, 1.3, seed=2)  # +30 %: beyond the floor, so the bootstrap runs
    config = tmp_path / "pyproject.toml"
    config.write_text("[project]\nname = 'x'\n")
    code, hwm, out = run_child(f"""
        from slimbench.cli import main
        code = main(["gate", "--config", {str(config)!r}, "--baseline", {str(base)!r}, {str(cur)!r}])
    """, tmp_path)
    assert code == 1, out  # the regression is found...
    assert "REGRESSION   fast latency.p50_s" in out and "95 % CI" in out
    assert hwm < LIMIT_BYTES, f"peak RSS {hwm / 1e6:.0f} MB"  # ...in bounded memory


def test_paired_ratio_over_many_rounds_stays_bounded(tmp_path: Path) -> None:
    """compare's statistic: the bootstrap over rounds no longer holds (resamples x rounds) indices."""
    code, hwm, out = run_child("""
        import numpy as np
        from slimbench.stats import paired_ratio
        r = np.random.default_rng(0).lognormal(0, 0.05, 100_000)
        res = paired_ratio([[float(x)] for x in r], [[1.0]] * r.size)
        print(res.value, res.low, res.high, res.rounds)
    """, tmp_path)
    assert code == 0, out
    assert hwm < 600 << 20, f"peak RSS {hwm / 1e6:.0f} MB"


# --- the answers: the same as before where n is small, a valid bootstrap where it is large ----------

def test_small_samples_keep_their_bootstrap_values() -> None:
    """Below the exact limit the resamples are drawn as before, in chunks of rows: same numbers."""
    from slimbench.stats import bootstrap_quantiles, bootstrap_ratio_ci

    rng = np.random.default_rng(7)
    x = rng.lognormal(0, 0.1, 333)
    old = np.median(x[np.random.default_rng(3).integers(0, x.size, (2000, x.size))], axis=1)
    assert np.array_equal(bootstrap_quantiles(x, 50, 2000, np.random.default_rng(3)), old)
    a, b = rng.lognormal(0, 0.1, 40), rng.lognormal(0.2, 0.1, 55)
    g = np.random.default_rng(0)
    mx = np.median(a[g.integers(0, a.size, (2000, a.size))], axis=1)
    my = np.median(b[g.integers(0, b.size, (2000, b.size))], axis=1)
    lo, hi = np.percentile(my / mx, [2.5, 97.5])
    assert bootstrap_ratio_ci(a, b) == (float(np.median(b) / np.median(a)), float(lo), float(hi))


@pytest.mark.parametrize("q", [50.0, 90.0, 99.0])
def test_large_samples_bootstrap_the_same_distribution(q: float) -> None:
    """Above it, each resample's quantile is drawn from its exact distribution (order statistics of
    n uniforms): its spread matches the resampling bootstrap's."""
    from slimbench import stats

    bootstrap_quantiles = stats.bootstrap_quantiles
    x = np.random.default_rng(1).lognormal(0, 0.3, 3000)
    exact = bootstrap_quantiles(x, q, 4000, np.random.default_rng(2))
    drawn = stats._order_statistic_quantiles(np.sort(x), q, 4000, np.random.default_rng(2))
    for p in (2.5, 50, 97.5):
        assert np.percentile(drawn, p) == pytest.approx(np.percentile(exact, p), rel=0.004)
    assert np.std(drawn) == pytest.approx(np.std(exact), rel=0.1)


def test_a_large_paired_ratio_is_centred_and_narrow() -> None:
    from slimbench.stats import paired_ratio

    r = np.random.default_rng(0).lognormal(np.log(1.1), 0.05, 50_000)
    res = paired_ratio([[float(x)] for x in r], [[1.0]] * r.size)
    assert res.rounds == r.size and res.low < res.value < res.high
    assert res.value == pytest.approx(1.1, rel=0.002) and res.high - res.low < 0.003
