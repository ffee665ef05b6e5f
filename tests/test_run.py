"""`slimbench run` and `slimbench.run()`: your own checkpoint and CSV, one command, from any folder;
inputs given once in a project file; the three entry points measuring through one session."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from slimbench.analysis.results import load_run

pytestmark = pytest.mark.slow  # subprocess runs and builds: the full suite only (pytest -m "not slow" skips them)

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src" / "slimbench"
# fast knobs: these tests prove the path, not the numbers
FAST = ["--latency-rounds", "4", "--latency-max-rounds", "0", "--latency-block", "3", "--latency-warmup", "2",
        "--latency-min-block-ms", "0", "--throughput-rounds", "2", "--throughput-batch", "4", "--load-samples", "1",
        "--load-min-samples", "1", "--memory-samples", "1", "--worker-processes", "1", "--threads", "1"]
INPUTS = ["--text-column", "review", "--label-column", "sentiment"]


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    from slimbench.testing import write_example

    return write_example(tmp_path_factory.mktemp("example"), n=200)


def cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "slimbench.cli", *args], capture_output=True, text=True, cwd=cwd,
                          env=dict(os.environ, **(env or {})), timeout=900)


@pytest.fixture(scope="module")
def one_command(example, tmp_path_factory):
    """`slimbench run` on the example checkpoint and CSV, from an unrelated folder."""
    model, data = example
    where = tmp_path_factory.mktemp("elsewhere")
    proc = cli("run", "--base", str(model), "--dataset", str(data), *INPUTS, "--variants", "standard,onnx",
               "--cache", str(where / "cache"), *FAST, cwd=where)
    return where, proc


def test_one_command_builds_measures_and_reports(one_command):
    where, proc = one_command
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = where / "slimbench-out"
    run = load_run(out / "results.json")
    for name in ("standard", "onnx"):
        for metric in ("size", "load", "memory", "latency", "throughput", "accuracy"):
            m = run.get(name, metric)
            assert m is not None and m.ok, (name, metric)
    assert run.get("standard", "size").context["dataset"] != "movie-snippets"
    acc = run.get("onnx", "accuracy").figures  # no silent truncation: what it reads and what it cuts
    # a dataset of your own is read whole (the length that covers 99 % of its training texts)
    said = re.search(r"max length: (\d+) tokens \(--max-length auto: covers", proc.stderr)
    assert said and acc["max_length"].value == int(said.group(1)) and acc["truncated_share"].value <= 0.05
    report = (out / "REPORT.md").read_text()
    assert "onnx" in report and "standard" in report
    assert "building first" in proc.stderr  # the missing variants were built by the run itself
    assert f"report {out.resolve() / 'REPORT.md'}" in proc.stdout


def test_the_python_api_returns_rows_ratios_and_markdown(example, one_command, tmp_path):
    import slimbench

    model, data = example
    where, _ = one_command
    lines: list[str] = []
    result = slimbench.run(base=model, dataset=data, text_column="review", label_column="sentiment",
                           variants=["standard", "onnx"], out=tmp_path / "api", cache=where / "cache", build=False,
                           log=lines.append, latency_rounds=4, latency_max_rounds=0, latency_block=3,
                           latency_warmup=2, latency_min_block_ms=0, throughput_rounds=2, throughput_batch=4,
                           load_samples=1, load_min_samples=1, memory_samples=1, worker_processes=1, threads=1)
    assert result.ok and result.results_path == (tmp_path / "api" / "results.json").resolve()
    rows = {r.variant: r for r in result.rows}
    assert set(rows) == {"standard", "onnx"}
    assert rows["onnx"].units["p50_s"] == "s" and rows["onnx"].figures["p50_s"] > 0
    assert rows["onnx"].samples["p50_s"] >= 4 * 1  # 4 rounds of (3 - 2 discarded) calls at the least
    assert "onnx" in result.ratios
    assert result.to_markdown() == (tmp_path / "api" / "REPORT.md").read_text()
    assert any("latency" in line for line in lines)  # progress reached the caller's log


def test_api_rejects_unknown_and_meaningless_knobs(tmp_path):
    import slimbench
    from slimbench.errors import SlimbenchError

    with pytest.raises(SlimbenchError, match="unknown argument latency_round; measuring knobs:"):
        slimbench.run(out=tmp_path, latency_round=3)
    with pytest.raises(SlimbenchError, match="--latency-ci must be a number in"):
        slimbench.run(out=tmp_path, latency_ci=float("nan"))
    assert not (tmp_path / "results.json").exists()


def test_inputs_given_once_in_a_project_file(example, one_command):
    """slimbench.toml holds the inputs; `slimbench list` and `pytest` read them from it (a user's own
    test with the `variant` fixture and no conftest.py)."""
    model, data = example
    where, _ = one_command
    project = where / "project"
    (project / "bench").mkdir(parents=True)
    (project / "slimbench.toml").write_text(
        f'base = "{model}"\ndataset = "{data}"\ntext-column = "review"\nlabel-column = "sentiment"\n'
        f'variants = ["onnx"]\ncache = "{where / "cache"}"\n')
    listed = cli("list", "--json", cwd=project)
    assert listed.returncode == 0, listed.stderr
    assert {v["name"]: v["built"] for v in json.loads(listed.stdout)["variants"]}["onnx"] is True
    (project / "bench" / "test_mine.py").write_text(
        "def test_my_model_is_small(variant):\n"
        "    assert variant.name == 'onnx' and variant.manifest['runtime'] == 'onnxruntime'\n")
    proc = subprocess.run([sys.executable, "-m", "pytest", "bench", "-q", "-p", "no:cacheprovider"],
                          capture_output=True, text=True, cwd=project, timeout=600)
    assert proc.returncode == 0 and "1 passed" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-2000:]


def test_a_project_file_with_an_unknown_key_is_one_line(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.slimbench]\nbase = "x"\ndatset = "y"\n')
    proc = cli("list", cwd=tmp_path)
    assert proc.returncode == 2 and "unknown key 'datset'; known: models, cache, base, dataset" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_run_checks_its_output_folder_first(tmp_path):
    (tmp_path / "taken").write_text("a file")
    proc = cli("run", "--out", str(tmp_path / "taken"), "--dataset", "synthetic", cwd=tmp_path)
    assert proc.returncode == 2 and "is a file; give a folder (nothing was built or measured)" in proc.stderr


def _calls(module: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            f = node.func
            names.add(f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else "")
    return names


def test_one_measuring_session_drives_every_entry_point():
    """Only the session starts timing workers, schedules rounds and runs probes: `pytest bench` (the
    plugin), `slimbench run` and the API (the packaged suite, through the plugin) and `slimbench
    compare` all call `measure_session`, so latency and throughput are timed by one code path."""
    drivers = {"WorkerPool", "run_rounds", "run_probe"}
    users = {str(p.relative_to(SRC)): sorted(_calls(p) & drivers) for p in SRC.rglob("*.py")}
    assert {k: v for k, v in users.items() if v} == {"measure/session.py": sorted(drivers)}
    for entry in ("plugin/session.py", "commands/ab.py"):
        assert "measure_session" in _calls(SRC / entry), entry
    assert "slimbench.suite" in (SRC / "api.py").read_text()  # run/API run the suite the plugin measures


def test_the_entry_points_record_the_same_latency_observations(one_command, tmp_path):
    """`slimbench run` writes what `pytest bench` writes (same records, same samples and timing keys);
    `slimbench compare` keeps the same rounds of samples from the same session."""
    where, _ = one_command
    run = load_run(where / "slimbench-out" / "results.json")
    lat = run.get("onnx", "latency")
    assert set(lat.samples) == {"latency_s", "latency_round"}
    assert {"processes", "rounds", "block", "discard", "rounds_run", "phase_s"} <= set(lat.context["timing"])
    from slimbench.measure.session import Observations

    assert {"latency", "throughput", "labels", "probes", "errors", "how"} <= set(Observations.__dataclass_fields__)


def test_progress_bars_reach_a_log_as_their_last_state_only():
    """A caller's log gets whole lines; a bar the child redraws with carriage returns is one line."""
    import io

    from slimbench.api import _pass_on

    said: list[str] = []
    out = b"start\nbar  0%\rbar 50%\rbar 100%\n\r   \nlast line without a newline"
    _pass_on(io.BytesIO(out), said.append)
    assert said == ["start", "bar 100%", "last line without a newline"]
