"""slimbench.cache.memo validates every entry on read (issue 45): an edited or damaged entry is recomputed
with one line saying so, never believed; stored labels must fit the artifact they were predicted by."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from slimbench.cache import memo


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "cache"
    root.mkdir()
    monkeypatch.setenv("SLIMBENCH_CACHE", str(root))
    return root


def _artifact(cache: Path, labels: tuple[str, ...] = ("negative", "positive"), test: int = 4,
              accuracy: float | None = 1.0) -> Path:
    art = cache / "artifacts" / "standard-0123"
    art.mkdir(parents=True)
    manifest = {"name": "standard", "dataset": {"name": "d", "labels": list(labels), "test": test}}
    if accuracy is not None:
        manifest["test_accuracy"] = accuracy
    (art / "manifest.json").write_text(json.dumps(manifest))
    (art / "model.bin").write_bytes(b"weights")
    return art


def _entry(namespace: str, key: object) -> Path:
    (path,) = (memo.cache_root() / "memo" / namespace).glob("*.json")
    return path


TEXTS = ["good", "bad", "fine", "awful"]
TRUTH = [1, 0, 1, 0]


def _key(art: Path) -> list[object]:
    return memo.prediction_key("code", art, TEXTS, 2)


def test_an_edited_prediction_memo_is_not_believed(cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The issue's case: labels edited in the memo gave accuracy 0.0 beside the artifact's build-time
    1.0, and `report --strict` passed."""
    key = _key(_artifact(cache))
    memo.put("predictions", key, TRUTH)
    assert memo.labels(key, 4) == TRUTH
    path = _entry("predictions", key)
    doc = json.loads(path.read_text())
    doc["value"] = [1 - x for x in TRUTH]
    path.write_text(json.dumps(doc))
    assert memo.labels(key, 4) is None
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(path) in err[0] and "recomput" in err[0], err
    assert not path.exists()  # replaced by the next put


@pytest.mark.parametrize("stored", [[0, 1, 2, 0], [0, 1, -1, 0], [True, False, True, False], [0.0, 1.0, 1.0, 0.0],
                                    ["1", "0", "1", "0"]])
def test_labels_outside_the_artifacts_classes_are_not_believed(stored: list[object], cache: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    key = _key(_artifact(cache))
    memo.put("predictions", key, stored)  # sealed by put: only the content is wrong
    assert memo.labels(key, 4) is None
    err = capsys.readouterr().err
    assert "predictions" in err and "label" in err


def test_labels_contradicting_the_manifests_test_accuracy_are_not_believed(cache: Path,
                                                                            capsys: pytest.CaptureFixture[str]) -> None:
    key = _key(_artifact(cache, accuracy=1.0))
    memo.put("predictions", key, [1, 1, 1, 1])  # accuracy 0.5 against the build's 1.0
    assert memo.labels(key, 4) == [1, 1, 1, 1]  # without the truth nothing can be compared
    assert memo.labels(key, 4, truth=TRUTH) is None
    assert "accuracy 0.5" in capsys.readouterr().err
    memo.put("predictions", key, TRUTH)
    assert memo.labels(key, 4, truth=TRUTH) == TRUTH


def test_a_manifest_without_the_figures_leaves_the_count_check(cache: Path) -> None:
    key = _key(_artifact(cache, accuracy=None))
    memo.put("predictions", key, [1, 1, 1, 1])
    assert memo.labels(key, 4, truth=TRUTH) == [1, 1, 1, 1]
    assert memo.labels(key, 5) is None


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '{"key": ["x"], "value": 3}', ""])
def test_a_damaged_entry_is_a_miss_with_one_line(text: str, cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    memo.put("x", ["k"], 3)
    path = _entry("x", ["k"])
    path.write_text(text)
    assert memo.get("x", ["k"]) is None
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(path) in err[0]


def test_an_entry_written_before_entries_were_sealed_is_recomputed_quietly(
        cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    memo.put("x", ["k"], 3)
    path = _entry("x", ["k"])
    path.write_text(json.dumps({"key": ["k"], "value": 3}))
    assert memo.get("x", ["k"]) is None and capsys.readouterr().err == ""


@pytest.mark.parametrize("stored", [-5, 0, 10**12, 2.5, "12", None])
def test_an_implausible_gzip_size_is_recomputed(stored: object, cache: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    f = cache / "w.bin"
    f.write_bytes(b"abc" * 100_000)
    expected = memo.gzip_size(f)
    assert memo.gzip_size_memo(f) == expected
    key = ["gzip", 6, *memo.file_key(f)]
    memo.put("gzip-size", key, stored)
    assert memo.gzip_size_memo(f) == expected
    if stored is not None:
        assert "gzip-size" in capsys.readouterr().err


def test_a_sparsity_memo_outside_zero_to_one_is_recomputed(cache: Path) -> None:
    f = cache / "w.bin"
    f.write_bytes(b"abc")
    memo.put("sparsity", ["sparsity", *memo.file_key(f)], 7.5)
    assert memo.of_file("sparsity", f, lambda: 0.25, float, "sparsity") == 0.25
