"""As a stranger would: the built wheel in a fresh virtualenv outside the repository, run from an
empty folder -- `slimbench run` on a small checkpoint and CSV, then the user's own test with the
`variant` fixture and no conftest.py."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def sh(*cmd: str | Path, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, cwd=cwd, timeout=1200,
                          env=env or dict(os.environ))
    assert proc.returncode == 0, f"{cmd}: exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def test_the_wheel_works_in_a_fresh_virtualenv_from_an_empty_folder(tmp_path):
    dist, venv, empty = tmp_path / "dist", tmp_path / "venv", tmp_path / "empty"
    empty.mkdir()
    # built from a copy of the checkout: setuptools writes build/ beside the sources, and a stale one
    # would put modules that no longer exist into the wheel
    source = tmp_path / "source"
    anywhere = shutil.ignore_patterns("__pycache__", "*.egg-info")
    top_level = {".git", ".tox", ".venv", "build", "dist", "reports", "experiments"}

    def ignore(folder: str, names: list[str]) -> set[str]:
        # build/ at the top only: src/slimbench/build is a package
        return set(anywhere(folder, names)) | (top_level & set(names) if Path(folder) == REPO else set())

    shutil.copytree(REPO, source, ignore=ignore)
    sh(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", dist, source, cwd=tmp_path)
    wheel = next(dist.glob("slimbench-*.whl"))
    sh(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    py = venv / "bin" / "python"
    # a user's environment: nothing but the wheel and what it asks for (the pinned set of this
    # repository, so that pip takes the CPU build of torch and cached downloads)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLIMBENCH_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(PIP_CONSTRAINT=str(REPO / "constraints.txt"), SLIMBENCH_CACHE=str(tmp_path / "cache"),
               PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}")
    sh(py, "-m", "pip", "install", "-q", "--disable-pip-version-check", wheel, cwd=empty, env=env)
    sh(py, "-m", "slimbench.testing", "example", cwd=empty, env=env)
    run = sh(venv / "bin" / "slimbench", "run", "--base", "example/my-model", "--dataset", "example/reviews.csv",
             "--text-column", "review", "--label-column", "sentiment", "--variants", "standard,onnx-int8",
             "--latency-rounds", "4", "--latency-max-rounds", "0", "--throughput-rounds", "2",
             "--load-samples", "1", "--load-min-samples", "1", "--memory-samples", "1", "--worker-processes", "1",
             cwd=empty, env=env)
    assert (empty / "slimbench-out" / "results.json").is_file() and (empty / "slimbench-out" / "REPORT.md").is_file()
    assert "report" in run.stdout
    # the user's own benchmark: no conftest.py, the plugin comes with the package
    (empty / "bench").mkdir()
    (empty / "bench" / "test_x.py").write_text(
        "def test_int8_is_smaller(variant, benchmark):\n"
        "    size = sum(p.stat().st_size for p in variant.artifact_dir.iterdir())\n"
        "    benchmark.extra_info['bytes'] = size\n"
        "    benchmark(lambda: size)\n"
        "    assert size > 0\n")
    mine = sh(py, "-m", "pytest", "bench/test_x.py", "-q", "-p", "no:cacheprovider", "--slimbench-base",
              "example/my-model", "--slimbench-dataset", "example/reviews.csv", "--slimbench-text-column", "review",
              "--slimbench-label-column", "sentiment", "--slimbench-variants", "onnx-int8",
              "--benchmark-json", "mine.json", cwd=empty, env=env)
    assert "1 passed" in mine.stdout and (empty / "mine.json").is_file()
    help_text = sh(py, "-m", "pytest", "--help", cwd=empty, env=env).stdout
    group = help_text.split("slimbench: benchmark compressed transformer classifiers:")[1].split("\n\n")[0]
    flags = [line.split()[0] for line in group.splitlines() if line.startswith("  --")]  # the options, not their help
    assert flags and all(f.startswith("--slimbench-") for f in flags), flags
