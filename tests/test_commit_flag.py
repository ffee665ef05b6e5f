"""The results' "uncommitted changes" flag means the code differs from its commit, not that the
bench wrote its own outputs into reports/."""

from __future__ import annotations

import subprocess
from pathlib import Path

from slimbench.plugin import code_changed_since_commit


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


def test_outputs_in_reports_do_not_count_as_uncommitted_code(tmp_path):
    git(tmp_path, "init", "-q")
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "results.json").write_text("{}")
    (tmp_path / "code.py").write_text("x = 1\n")
    git(tmp_path, "add", ".")
    git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    assert code_changed_since_commit(tmp_path) is False
    (tmp_path / "reports" / "results.json").unlink()  # what `make report` does before the bench
    assert code_changed_since_commit(tmp_path) is False
    (tmp_path / "code.py").write_text("x = 2\n")
    assert code_changed_since_commit(tmp_path) is True


def test_outside_a_repository_it_cannot_tell(tmp_path):
    assert code_changed_since_commit(tmp_path) is None
