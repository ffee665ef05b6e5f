"""Hostile specs and unwritable outputs (issue 45): a spec value that would run for ever or is no
number is refused naming the key and the file; a name defined twice names both files; a write that
fails names the file the user asked for, not the temporary file beside it."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from slimbench.errors import SpecError
from slimbench.fsutil import atomic_write_text
from slimbench.spec.zoo import Zoo, load_spec

STANDARD = 'name = "standard"\nbase = "minilm"\n[train]\nmethod = "finetune"\n'


def _spec(tmp_path: Path, train: str, name: str = "s.toml") -> Path:
    path = tmp_path / name
    path.write_text(STANDARD + train)
    return path


@pytest.mark.parametrize("train, message", [
    ("epochs = 1000000\n", r"epochs must be in 1\.\.1000, got 1000000"),
    ("epochs = 0\n", r"epochs must be positive, got 0"),
    ("batch_size = 10000000\n", r"batch_size must be in 1\.\.65536"),
    ("augment_copies = 100000\n", r"augment_copies must be in 0\.\.100"),
    ("lr = nan\n", r"lr must be a finite number, got nan"),
    ("lr = inf\n", r"lr must be a finite number, got inf"),
    ("lr = -0.1\n", r"lr must be > 0"),
    ("lr = 0.0\n", r"lr must be > 0"),
    ("temperature = 0.0\n", r"temperature must be > 0"),
    ("alpha = 1.5\n", r"alpha must be in \[0, 1\]"),
    ("warmup = 1.0\n", r"warmup must be in \[0, 1\)"),
    ("weight_decay = -1.0\n", r"weight_decay must be >= 0"),
    ("max_length = 100000\n", r"max_length must be in 8\.\.512"),
])
def test_a_training_value_out_of_bounds_names_the_key_and_the_file(tmp_path: Path, train: str, message: str) -> None:
    """`epochs = 1000000` was accepted (issue 45): a build that would never end."""
    path = _spec(tmp_path, train)
    with pytest.raises(SpecError, match=message) as err:
        load_spec(path)
    assert str(path) in str(err.value) and "[train]" in str(err.value)


def test_sensible_training_values_still_load(tmp_path: Path) -> None:
    spec = load_spec(_spec(tmp_path, "epochs = 1000\nbatch_size = 64\nlr = 3e-4\nalpha = 1.0\nwarmup = 0.0\n"
                                      "augment_copies = 3\ntemperature = 4.0\nweight_decay = 0.0\n"))
    assert spec.recipe.epochs == 1000 and spec.recipe.alpha == 1.0


def test_an_architecture_beyond_any_cpu_model_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.toml"
    path.write_text(STANDARD + "[architecture]\nnum_hidden_layers = 1000000\n")
    with pytest.raises(SpecError, match=r"\[architecture\]: num_hidden_layers must be at most 256 .*got 1,000,000"):
        load_spec(path)


def test_a_nan_in_another_table_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text('name = "p"\nsource = "standard"\n[train]\nmethod = "distill"\n[prune]\nheads = nan\n')
    with pytest.raises(SpecError, match=r"\[prune\]: heads must be a finite number"):
        load_spec(path)


def test_a_variant_defined_twice_names_both_files(tmp_path: Path) -> None:
    """`variant 'x' is defined twice` did not say where (issue 45)."""
    (tmp_path / "00-standard.toml").write_text(STANDARD)
    (tmp_path / "90-copy.toml").write_text(STANDARD)
    with pytest.raises(SpecError) as err:
        Zoo.load(tmp_path)
    text = str(err.value)
    assert "variant 'standard' is defined twice" in text
    assert str(tmp_path / "00-standard.toml") in text and str(tmp_path / "90-copy.toml") in text


# --- atomic writes: an error names the target --------------------------------------------------------

def test_a_write_into_a_missing_directory_names_the_target(tmp_path: Path) -> None:
    target = tmp_path / "nodir" / "c.md"
    with pytest.raises(OSError) as err:
        atomic_write_text(target, "x")
    assert err.value.filename == str(target) and err.value.errno == errno.ENOENT


def test_a_write_over_a_directory_names_the_target_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.mkdir()
    with pytest.raises(OSError) as err:
        atomic_write_text(target, "x")
    assert err.value.filename == str(target)
    assert os.listdir(tmp_path) == ["out"] and os.listdir(target) == []


def test_a_failing_write_names_the_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "report.md"

    def full(src: str, dst: str) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), src)

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(OSError) as err:
        atomic_write_text(target, "x")
    assert err.value.filename == str(target) and err.value.errno == errno.ENOSPC
    assert not target.exists() and os.listdir(tmp_path) == []


def test_the_cli_line_names_the_target(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """What a user sees: `slimbench baseline RESULTS --out nodir/b.json` names nodir/b.json."""
    from slimbench.cli import main

    results = Path(__file__).parent / "data" / "tiny_zoo_results.json"
    target = tmp_path / "b.json"
    target.mkdir()  # a directory where the file should go
    assert main(["baseline", str(results), "--out", str(target)]) == 2
    err = capsys.readouterr().err
    assert err.strip().endswith(str(target)) and ".tmp" not in err, err
