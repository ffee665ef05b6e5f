"""The plugin is registered by the package's `pytest11` entry point: a fresh project with nothing but
bench/test_x.py (no conftest.py, no `-p`) gets the `variant` fixture and writes results."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import entry_points

import pytest

from slimbench.testing import write_specs

pytestmark = pytest.mark.slow  # subprocess runs and builds: the full suite only (pytest -m "not slow" skips them)

TEST_X = '''
def test_weights_on_disk(benchmark, variant):
    size = benchmark.pedantic(lambda: variant.manifest["files"]["weights.bin"], rounds=1, iterations=1)
    assert size == 4096
'''


def test_the_entry_point_names_the_plugin():
    found = [ep for ep in entry_points(group="pytest11") if ep.name == "slimbench"]
    assert found and found[0].value == "slimbench.plugin", "reinstall the package (pip install -e .)"


def test_a_fresh_project_gets_the_variant_fixture_without_a_conftest(tmp_path):
    project = tmp_path / "project"
    (project / "bench").mkdir(parents=True)
    (project / "bench" / "test_x.py").write_text(TEST_X)
    models = write_specs(tmp_path / "zoo", [
        {"name": name, "runtime": "calibration", "calibration": {"sleep_s": 0.001, "padding_bytes": 4096}}
        for name in ("first", "second")])
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS", "PYTEST_PLUGINS", "SLIMBENCH_MODELS")}
    res = subprocess.run([sys.executable, "-m", "pytest", "bench", "--benchmark-only", "-p", "no:cacheprovider",
                          "--slimbench-models", str(models), "--slimbench-cache", str(tmp_path / "cache"),
                          "--slimbench-dataset", "synthetic", "--benchmark-json", str(tmp_path / "out.json")],
                         cwd=project, capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    names = sorted(b["name"] for b in json.loads((tmp_path / "out.json").read_text())["benchmarks"])
    assert names == ["test_weights_on_disk[first]", "test_weights_on_disk[second]"]
    assert not (project / "conftest.py").exists()
