"""End to end: `pytest bench --benchmark-only` over calibration variants with known costs, in a
subprocess, exactly as a user runs it. A crashing variant becomes a failed result while the others
are measured and saved."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from slimbench.results import load_run
from slimbench.testing import write_specs

REPO = Path(__file__).resolve().parents[1]
SPECS = [
    {"name": "standard", "runtime": "calibration", "calibration": {"sleep_s": 0.005}},
    {"name": "fast", "runtime": "calibration", "calibration": {"sleep_s": 0.001, "padding_bytes": 1000}},
    {"name": "crashy", "runtime": "calibration", "calibration": {"fault": "segfault"}},
]


def run_bench(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    models = write_specs(tmp_path / "models", SPECS)
    cmd = [sys.executable, "-m", "pytest", str(REPO / "bench"), "--benchmark-only", "-p", "no:cacheprovider",
           "--slimbench-models", str(models), "--slimbench-cache", str(tmp_path / "cache"),
           "--slimbench-dataset", "synthetic", "--load-samples", "2", "--memory-samples", "1",
           "--latency-rounds", "20", "--latency-block", "4", "--latency-warmup", "5", "--throughput-rounds", "3", "--threads", "1",
           f"--benchmark-json={tmp_path / 'results.json'}", "-q", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=600)


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bench")
    return tmp, run_bench(tmp)


def test_crash_is_a_failed_row_and_the_rest_is_saved(full_run):
    tmp, proc = full_run
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-2000:]
    run = load_run(tmp / "results.json")
    for name in ("standard", "fast"):
        for metric in ("size", "load", "memory", "latency", "throughput", "accuracy"):
            m = run.get(name, metric)
            assert m is not None and m.ok, (name, metric)
    assert run.get("crashy", "size").ok  # reading its files works; running it does not
    crashed = [m for m in run.measurements if m.variant == "crashy" and m.metric != "size"]
    assert {m.metric for m in crashed} == {"load", "memory", "latency", "throughput", "accuracy"}
    assert all(m.status == "failed" and "SIGSEGV" in (m.error or "") for m in crashed), crashed
    assert "crashy / load: probe of crashy-" in proc.stdout and "crashed with SIGSEGV" in proc.stdout


def test_latency_and_ratios_match_the_known_sleeps(full_run):
    tmp, _ = full_run
    run = load_run(tmp / "results.json")
    std = run.get("standard", "latency")
    fast = run.get("fast", "latency")
    assert std.figures["p50_s"].n == 60 and len(std.samples["latency_s"]) == 60  # 20 rounds x (4 - 1 discarded)
    assert std.samples["latency_round"] == [float(r) for r in range(20) for _ in range(3)]
    assert 0.005 <= std.figures["p50_s"].value <= 0.0065
    assert 0.001 <= fast.figures["p50_s"].value <= 0.0025
    ratio = fast.figures["p50_s"].value / std.figures["p50_s"].value
    assert 0.15 <= ratio <= 0.45  # (1 ms + overhead) / (5 ms + overhead)
    child = run.get("standard", "memory").figures["child_latency_p50_s"].value
    assert abs(child - std.figures["p50_s"].value) <= 0.001  # timing worker and fresh process agree
    paired = fast.figures["p50_ratio"]  # from the paired rounds, with its CI
    assert paired.unit == "x" and paired.n == 20 and 0.15 <= paired.value <= 0.45
    assert run.get("fast", "size").figures["weights_bytes"].value == 1000


def test_results_record_machine_context_and_schema(full_run):
    tmp, _ = full_run
    data = json.loads((tmp / "results.json").read_text())
    machine = data["machine_info"]["slimbench_machine"]
    assert {"id", "cpu", "cores", "ram_bytes", "os", "libraries"} <= set(machine)
    assert data["slimbench"]["schema"] == 1
    info = next(b["extra_info"] for b in data["benchmarks"] if b["extra_info"]["metric"] == "latency")
    assert info["context"]["threads"] == 1 and len(info["context"]["spec_hash"]) == 64
    for fig in info["figures"].values():
        assert set(fig) >= {"value", "unit", "n"}


def test_selected_variants_only_and_unknown_names(tmp_path):
    proc = run_bench(tmp_path, "--variants", "fast", "-k", "size or accuracy")
    assert proc.returncode == 0, proc.stdout[-2000:]
    run = load_run(tmp_path / "results.json")
    assert run.variants == ["fast"]
    bad = run_bench(tmp_path, "--variants", "fats")
    assert bad.returncode != 0
    assert "unknown variant 'fats'; known variants: standard, fast, crashy" in bad.stdout + bad.stderr
