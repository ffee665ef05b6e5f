"""Bad input and faults at the command line: one clear line naming the thing, a non-zero exit,
never a traceback -- including random bytes where a model or a dataset should be."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from slimbench.testing import make_tiny_checkpoint, write_example

pytestmark = pytest.mark.slow  # subprocess runs and builds: the full suite only (pytest -m "not slow" skips them)

REPO = Path(__file__).resolve().parents[1]


def cli(*args: str, cache: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "slimbench.cli", *args, "--cache", str(cache)],
                          capture_output=True, text=True, cwd=REPO, timeout=300)


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, (proc.stdout[-1000:], proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("slimbench: error:")]
    assert len(lines) == 1, proc.stderr[-2000:]
    return lines[0]


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    return write_example(tmp_path_factory.mktemp("example"), n=120)


@pytest.mark.parametrize("content, expected", [
    (b"", "is empty"),
    (b"review,sentiment\n", "no data rows"),
    (b"text,label\nok,1\n", "column 'review' not found"),
    (b"review,sentiment\ngood,pos\nbad,pos\n", "only one class"),
    (b"review,sentiment\n\xff\xfe bad bytes,pos\n", "is not valid UTF-8"),
    (b"review,sentiment\n,pos\nok,neg\n", "row 2 has an empty 'review'"),
    (b"review,sentiment\ngreat, really,pos\nbad,neg\n", "data.csv:2: 3 fields, but the header has 2"),
    (b'review,sentiment\n"unclosed,pos\nbad,neg\n', "data.csv:2: malformed"),
])
def test_bad_datasets(tmp_path, content, expected):
    f = tmp_path / "data.csv"
    f.write_bytes(content)
    msg = one_line_error(cli("list", "--dataset", str(f), "--text-column", "review", "--label-column", "sentiment",
                             cache=tmp_path / "cache"))
    assert expected in msg and "data.csv" in msg


def test_valid_odd_texts_and_a_directory(tmp_path):
    f = tmp_path / "data.csv"
    f.write_text('review,sentiment\n"a\u2028b",pos\n"c\u0085d\x0ce",neg\n"' + "long " * 40_000 + '",pos\n',
                 encoding="utf-8")
    proc = cli("list", "--dataset", str(f), "--text-column", "review", "--label-column", "sentiment",
               cache=tmp_path / "cache")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    msg = one_line_error(cli("list", "--dataset", str(tmp_path), cache=tmp_path / "cache"))
    assert f"dataset {tmp_path} is a directory" in msg


@pytest.mark.parametrize("seed", range(4))
def test_random_bytes_as_dataset(tmp_path, seed):
    f = tmp_path / ("data.jsonl" if seed % 2 else "data.csv")
    f.write_bytes(os.urandom(64 + 97 * seed))
    one_line_error(cli("list", "--dataset", str(f), cache=tmp_path / "cache"))


@pytest.mark.parametrize("victim", ["model.safetensors", "config.json", "tokenizer.json"])
def test_random_bytes_as_model_files(tmp_path, example, victim):
    model, data = example
    broken = tmp_path / "model"
    shutil.copytree(model, broken)
    (broken / victim).write_bytes(os.urandom(4096))
    msg = one_line_error(cli("build", "--base", str(broken), "--dataset", str(data), "--text-column", "review",
                             "--label-column", "sentiment", "--variants", "standard", cache=tmp_path / "cache"))
    assert str(broken) in msg
    assert not any((tmp_path / "cache" / "artifacts").glob("standard-*"))  # nothing that looks built


def test_missing_config_and_shape_mismatch(tmp_path, example):
    model, data = example
    args = ["--dataset", str(data), "--text-column", "review", "--label-column", "sentiment", "--variants", "standard"]
    no_config = tmp_path / "noconfig"
    shutil.copytree(model, no_config)
    (no_config / "config.json").unlink()
    assert "has no config.json" in one_line_error(cli("build", "--base", str(no_config), *args, cache=tmp_path / "c"))
    other = make_tiny_checkpoint(tmp_path / "other", hidden=48, heads=2)
    mismatch = tmp_path / "mismatch"
    shutil.copytree(model, mismatch)
    shutil.copyfile(other / "config.json", mismatch / "config.json")
    msg = one_line_error(cli("build", "--base", str(mismatch), *args, cache=tmp_path / "c"))
    assert "do not match its config.json" in msg


def test_conflicting_and_invalid_options(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "slimbench.cli", "build", "--threads", "many"],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 2 and "invalid int value: 'many'" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "pytest", "bench", "--slimbench-threads", "0", "-q", "-p", "no:cacheprovider"],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode != 0 and "--slimbench-threads must be an integer >= 1, got 0" in proc.stdout + proc.stderr
