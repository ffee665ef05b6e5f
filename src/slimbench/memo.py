"""Results that are a pure function of files and code, kept in the cache root so a later run skips them.

Only files inside the cache root are memoised (published artifacts: content-addressed by spec
hash, written once); a file anywhere else is computed every time. A value is stored under a key
that names everything it depends on: a file by its resolved path,
inode, size and modification time (artifacts are published by an atomic rename, never rewritten in
place, so a changed file is a new key), code by a fingerprint of its sources, inputs by their
digest. A key that names too little would return a stale value, so callers name generously; a
miss only costs the computation. Entries are small JSON files written atomically; a corrupt or
unreadable entry is a miss, never an error.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from slimbench.fsutil import atomic_write_text
from slimbench.paths import cache_root

T = TypeVar("T")


def in_cache(path: Path) -> bool:
    """Whether `path` lies inside the cache root (the only files whose results are memoised)."""
    return Path(path).resolve().is_relative_to(cache_root())


def file_key(path: Path) -> list[Any]:
    """What identifies a file's contents without reading it."""
    st = Path(path).stat()
    return [str(Path(path).resolve()), st.st_ino, st.st_size, st.st_mtime_ns]


def digest(parts: Any) -> str:
    """sha256 of a JSON-able key."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def texts_digest(texts: Iterable[str]) -> str:
    h = hashlib.sha256()
    for t in texts:
        h.update(t.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()


def _entry(namespace: str, key: Any) -> Path:
    return cache_root() / "memo" / namespace / f"{digest(key)}.json"


def get(namespace: str, key: Any) -> Any | None:
    """The stored value, or None (never stored, or unreadable)."""
    try:
        doc = json.loads(_entry(namespace, key).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc.get("value") if isinstance(doc, dict) and doc.get("key") == json.loads(json.dumps(key, default=str)) \
        else None


def put(namespace: str, key: Any, value: Any) -> None:
    """Store a value; a cache that cannot be written is skipped silently (the next run recomputes)."""
    path = _entry(namespace, key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps({"key": key, "value": value}, default=str))
    except OSError:
        pass


def gzip_size(path: Path, level: int = 6) -> int:
    """Bytes after gzip -`level`: what a download of the file costs."""
    size = 0

    class Counter:
        def write(self, b: bytes) -> int:
            nonlocal size
            size += len(b)
            return len(b)

        def flush(self) -> None:
            pass

    with open(path, "rb") as src, gzip.GzipFile(fileobj=Counter(), mode="wb", compresslevel=level, mtime=0) as gz:
        while block := src.read(1 << 20):
            gz.write(block)
    return size


def of_file(namespace: str, path: Path, compute: Callable[[], T], kind: type, *params: Any) -> T:
    """`compute()` -- a result of the file's contents (and `params`) -- once per file in the cache
    root; a stored value of another `kind` is a miss."""
    if not in_cache(path):
        return compute()
    key = [*params, *file_key(path)]
    hit = get(namespace, key)
    if isinstance(hit, kind):
        return hit  # type: ignore[return-value]
    value = compute()
    put(namespace, key, value)
    return value


def gzip_size_memo(path: Path, level: int = 6, known: int | None = None) -> int:
    """`gzip_size`, computed once per file contents (a 90 MB model takes ~4 s on this VM); `known`:
    the size already measured on these contents elsewhere (a build's pruning record), kept as it is."""
    return of_file("gzip-size", path, lambda: gzip_size(path, level) if known is None else known, int, "gzip", level)


# batch size of every pass over the test split (build evaluation, compare, bench) of a batch-invariant
# runner; the INT8 runners predict one sentence at a time (runtime.predict_in_batches)
TEST_SPLIT_BATCH = 64


def code_fingerprint(src: Path) -> str:
    """sha256 over the slimbench sources under `src` (a checkout's src/): equal fingerprints run the
    same code."""
    h = hashlib.sha256()
    for path in sorted((Path(src) / "slimbench").rglob("*.py")):
        h.update(str(path.relative_to(src)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def running_code() -> Path:
    """The src/ this process imports slimbench from."""
    return Path(__file__).resolve().parents[1]


def prediction_key(code: str, artifact: Path, texts: Sequence[str], threads: int,
                   extra_work: Mapping[str, float] | None = None) -> list[Any]:
    """Everything a pass's test-split labels depend on: the artifact's files, the code, the
    interpreter and numeric libraries, the sentences, the batch size and thread count, extra work."""
    files = sorted(p for p in Path(artifact).iterdir() if p.is_file())
    return ["predict_all", TEST_SPLIT_BATCH, threads, dict(extra_work or {}), code, list(environment_key()),
            texts_digest(texts), [file_key(p) for p in files]]


def labels(key: Any, n: int) -> list[int] | None:
    """Test-split labels stored under a `prediction_key`, if there are `n` of them."""
    hit = get("predictions", key)
    return hit if isinstance(hit, list) and len(hit) == n else None


@functools.cache
def environment_key() -> tuple[str, ...]:
    """The interpreter and the numeric libraries a runtime runs on (they decide predicted labels too);
    read once per process."""
    from importlib import metadata

    out = [os.path.realpath(sys.executable)]
    for dist in ("numpy", "torch", "transformers", "tokenizers", "onnxruntime"):
        try:
            out.append(f"{dist}=={metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            out.append(f"{dist}: absent")
    return tuple(out)
