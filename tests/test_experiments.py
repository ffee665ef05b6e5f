"""experiments/: the evidence the docs cite is kept small, linted, and its scripts at least parse.

The scripts need a built zoo and minutes to hours of a quiet machine, so they are not run here;
parsing, compiling and ruff catch the rot that moving code leaves behind (a renamed import, a
stale API), and the size check keeps raw data out of the repository.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXPERIMENTS = REPO / "experiments"
MAX_BYTES = 2_000_000  # all evidence data in the repository
SCRIPTS = sorted(EXPERIMENTS.rglob("*.py"))
SHELL = sorted(EXPERIMENTS.rglob("*.sh"))


def test_there_is_evidence_and_no_old_evidence_folder():
    assert SCRIPTS, "experiments/ holds no scripts"
    assert not (REPO / "reports" / "evidence").exists(), "reports/evidence/ moved to experiments/"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: str(p.relative_to(EXPERIMENTS)))
def test_script_parses_and_compiles(script: Path):
    source = script.read_text(encoding="utf-8")
    compile(ast.parse(source, filename=str(script)), str(script), "exec")


def test_scripts_pass_ruff():
    res = subprocess.run([sys.executable, "-m", "ruff", "check", "experiments"], cwd=REPO, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-1000:]


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
@pytest.mark.parametrize("script", SHELL, ids=lambda p: str(p.relative_to(EXPERIMENTS)))
def test_shell_script_parses(script: Path):
    res = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr


def test_every_experiment_states_its_claim():
    folders = [p for p in EXPERIMENTS.iterdir() if p.is_dir() and not p.name.startswith((".", "__"))]
    missing = [p.name for p in folders if not (p / "README.md").is_file()]
    assert not missing, f"experiments without a README.md stating their claim: {missing}"


def test_evidence_data_is_small():
    files = [p for p in EXPERIMENTS.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    total = sum(p.stat().st_size for p in files)
    biggest = sorted(files, key=lambda p: -p.stat().st_size)[:5]
    assert total <= MAX_BYTES, (f"experiments/ holds {total:,} bytes (limit {MAX_BYTES:,}); largest: "
                                + ", ".join(f"{p.relative_to(REPO)} {p.stat().st_size:,}" for p in biggest))
