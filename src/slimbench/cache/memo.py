"""Results that are a pure function of files and code, kept in the cache root so a later run skips them.

Only files inside the cache root are memoised (published artifacts: content-addressed by spec
hash, written once); a file anywhere else is computed every time. A value is stored under a key
that names everything it depends on: a file by its resolved path,
inode, size and modification time (artifacts are published by an atomic rename, never rewritten in
place, so a changed file is a new key), code by a fingerprint of its sources, inputs by their
digest. A key that names too little would return a stale value, so callers name generously; a
miss only costs the computation. Entries are small JSON files written atomically, sealed with the
sha256 of their key and value, and validated on every read: an entry that is unreadable, whose
seal does not match (edited by hand, damaged) or whose value cannot be right (labels outside the
artifact's classes or contradicting its manifest's test accuracy, an impossible gzip size) is not
believed -- it is a miss, removed, and one line on stderr says so. An entry from before entries were
sealed is a quiet miss.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import hashlib
import json
import math
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from slimbench.cache.paths import cache_root
from slimbench.fsutil import atomic_write_text

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


def _normal(doc: Any) -> Any:
    """`doc` as it reads back from JSON (tuples become lists, other objects their str)."""
    return json.loads(json.dumps(doc, default=str))


def _seal(key: Any, value: Any) -> str:
    return digest(["slimbench-memo", _normal(key), _normal(value)])


def distrust(path: Path, namespace: str, why: str) -> None:
    """Say on one line that a cache entry is not used, and remove it (the next `put` replaces it)."""
    print(f"slimbench: cache entry {path} ({namespace}) is not used: {why}; recomputing it", file=sys.stderr,
          flush=True)
    with contextlib.suppress(OSError):
        path.unlink()


def get(namespace: str, key: Any) -> Any | None:
    """The stored value, or None: never stored, from before entries were sealed, or not to be believed
    (unreadable, another key, a seal that does not match its contents: then a line says so)."""
    path = _entry(namespace, key)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as err:
        distrust(path, namespace, f"unreadable ({err})")
        return None
    try:
        doc = json.loads(text)
    except ValueError:
        doc = None
    if not isinstance(doc, dict) or "key" not in doc or "value" not in doc:
        distrust(path, namespace, "not a cache entry (truncated or edited?)")
        return None
    if doc["key"] != _normal(key):
        distrust(path, namespace, "it holds another key (edited?)")
        return None
    if "seal" not in doc:
        return None  # written before entries were sealed: recomputed, and sealed then
    if doc["seal"] != _seal(doc["key"], doc["value"]):
        distrust(path, namespace, "its contents do not match their seal (edited or damaged)")
        return None
    return doc["value"]


def put(namespace: str, key: Any, value: Any) -> None:
    """Store a value; a cache that cannot be written is skipped silently (the next run recomputes)."""
    path = _entry(namespace, key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps({"key": key, "value": value, "seal": _seal(key, value)}, default=str))
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


def _number_problem(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        return f"{value!r} is not a count or measure"
    return None


def _gzip_problem(value: Any, path: Path) -> str | None:
    """gzip never makes a file more than ~0.01 % larger (5 bytes a 64 KiB stored block, a header and a
    trailer), and always writes its 18-byte header and trailer."""
    size = Path(path).stat().st_size
    if not isinstance(value, int) or not 18 <= value <= size + size // 1000 + 64:
        return f"a gzip size of {value!r} bytes for a file of {size:,} bytes"
    return None


def _sparsity_problem(value: Any, path: Path) -> str | None:
    return None if 0.0 <= value <= 1.0 else f"a sparsity of {value!r}, not a fraction"


# What a value of a file's memo must be, beyond its type, by namespace.
FILE_CHECKS: dict[str, Callable[[Any, Path], str | None]] = {"gzip-size": _gzip_problem, "sparsity": _sparsity_problem}


def of_file(namespace: str, path: Path, compute: Callable[[], T], kind: type, *params: Any) -> T:
    """`compute()` -- a result of the file's contents (and `params`) -- once per file in the cache
    root; a stored value of another `kind`, or one its namespace's check rejects, is recomputed."""
    if not in_cache(path):
        return compute()
    key = [*params, *file_key(path)]
    hit = get(namespace, key)
    if hit is not None:
        check = FILE_CHECKS.get(namespace)
        if not isinstance(hit, kind) or isinstance(hit, bool):
            why: str | None = f"a {type(hit).__name__}, not a {kind.__name__}"
        else:
            why = (_number_problem(hit) if kind in (int, float) else None) or (check(hit, path) if check else None)
        if why is None:
            return hit
        distrust(_entry(namespace, key), namespace, why)
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
    return Path(__file__).resolve().parents[2]


def prediction_key(code: str, artifact: Path, texts: Sequence[str], threads: int,
                   extra_work: Mapping[str, float] | None = None) -> list[Any]:
    """Everything a pass's test-split labels depend on: the artifact's files, the code, the
    interpreter and numeric libraries, the sentences, the batch size and thread count, extra work."""
    files = sorted(p for p in Path(artifact).iterdir() if p.is_file())
    return ["predict_all", TEST_SPLIT_BATCH, threads, dict(extra_work or {}), code, list(environment_key()),
            texts_digest(texts), [file_key(p) for p in files]]


# How far a memo's test accuracy may lie from the build's (its manifest's): other thread counts flip a
# few labels, an INT8 artifact's labels move with the CPU's integer kernels (0.55 points between an
# Intel and an AMD host, reports/evidence/first-report/cold-run-11.md).
ACCURACY_TOLERANCE = 0.02


def labels(key: Any, n: int, truth: Sequence[Any] | None = None) -> list[Any] | None:
    """Test-split labels stored under a `prediction_key`, if they can be right: `n` of them, each a
    class of the artifact (its manifest's dataset labels; for a multi-label artifact, a list with one
    value index per label group of its manifest) and, given the `truth`, with the test accuracy (exact
    match) the artifact's manifest records (within ACCURACY_TOLERANCE). Else None, with a line."""
    hit = get("predictions", key)
    if hit is None:
        return None
    why = _labels_problem(hit, n, _manifest_of(key), truth)
    if why:
        distrust(_entry("predictions", key), "predictions", why)
        return None
    return list(hit)


def _index(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _group_sizes(manifest: Mapping[str, Any]) -> list[int] | None:
    """The value counts of a multi-label artifact's label groups (its manifest's `label_groups`)."""
    table = manifest.get("label_groups")
    groups = table.get("groups") if isinstance(table, dict) else None
    if not isinstance(groups, list):
        return None
    return [len(g["values"]) if isinstance(g, dict) and isinstance(g.get("values"), list) else 0 for g in groups]


def _labels_problem(hit: Any, n: int, manifest: Mapping[str, Any], truth: Sequence[Any] | None) -> str | None:
    if not isinstance(hit, list) or len(hit) != n:
        return f"{len(hit) if isinstance(hit, list) else 'no'} labels for {n} test sentences"
    sizes = _group_sizes(manifest)
    if sizes is not None:
        if not all(isinstance(x, list | tuple) and len(x) == len(sizes) and all(map(_index, x)) for x in hit):
            return f"a label that is not one value index for each of the artifact's {len(sizes)} label groups"
        if not all(0 <= i < k for x in hit for i, k in zip(x, sizes, strict=True)):
            return "a label value outside its group's values"
    elif not all(map(_index, hit)):
        return "a label that is not a class index"
    dataset = manifest.get("dataset")
    if not isinstance(dataset, dict):
        dataset = {}
    classes = dataset.get("labels") if isinstance(dataset.get("labels"), list) else None
    if sizes is None and classes and not all(0 <= x < len(classes) for x in hit):
        return f"a label outside the artifact's {len(classes)} classes (0..{len(classes) - 1})"
    recorded = manifest.get("test_accuracy")
    if (truth is None or len(truth) != n or dataset.get("test") != n or isinstance(recorded, bool)
            or not isinstance(recorded, int | float)):
        return None
    accuracy = sum(int(list(a) == list(b) if sizes is not None else a == b)
                   for a, b in zip(hit, truth, strict=True)) / n
    if abs(accuracy - recorded) > ACCURACY_TOLERANCE:
        return (f"its labels give accuracy {accuracy:.4g} on the test split, the artifact's manifest records "
                f"{recorded:.4g} from its build")
    return None


def _manifest_of(key: Any) -> Mapping[str, Any]:
    """The manifest.json among the artifact files a `prediction_key` names ({} when there is none)."""
    files = key[-1] if isinstance(key, list) and key and isinstance(key[-1], list) else []
    for entry in files:
        if isinstance(entry, list) and entry and Path(str(entry[0])).name == "manifest.json":
            try:
                doc = json.loads(Path(str(entry[0])).read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, ValueError):
                return {}
            return doc if isinstance(doc, dict) else {}
    return {}


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
