"""Artifact verification: an artifact is measured only if it is what its build wrote.

`verify_artifact` checks the manifest (the keys a runner reads), that the variant name and spec hash
match the directory, that the keys a runner obeys agree with the spec it was built from, that every
file the build listed is present with its size and sha256 -- hashed once, then stamped by its stat --
that nothing else lies beside them, and that no pickle is present.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

from slimbench.errors import ArtifactError
from slimbench.extensions import extension
from slimbench.formats.manifest import MANIFEST, read_manifest

STAMPS_DIR = ".verified"  # beside the artifact directories: which files were hashed, and their stat
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
_STAGING = re.compile(r"\.(?P<name>.+)\.partial-\d+-[^/]*")  # the builder's `.NAME-HASH.partial-PID-XXXX`
RUNTIME_OF_FORMAT = {"hf": "torch", "hf-pruned": "torch", "torch-int8": "torch", "onnx": "onnxruntime",
                     "numpy-bert": "numpy"}  # an extension's format is its runtime's name (slimbench.extensions)


def _rebuild(artifact_dir: Path) -> str:
    return f"delete {artifact_dir} and rebuild the variant (`slimbench build --force`)"


def _check_runner_keys(artifact_dir: Path, manifest: dict[str, Any]) -> None:
    """The manifest keys a runner reads, with the types it needs."""
    fmt = manifest.get("format")
    if not isinstance(fmt, str) or (fmt not in RUNTIME_OF_FORMAT and extension(fmt) is None):
        raise ArtifactError(f"{artifact_dir}: unknown artifact format {fmt!r}; known: {sorted(RUNTIME_OF_FORMAT)}")
    max_length = manifest.get("max_length")
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 2:
        raise ArtifactError(f"{artifact_dir / MANIFEST}: max_length {max_length!r} is not an integer >= 2; "
                            + _rebuild(artifact_dir))
    for key in ("model_file", "truncation"):
        if key in manifest and not isinstance(manifest[key], str):
            raise ArtifactError(f"{artifact_dir / MANIFEST}: {key} {manifest[key]!r} is not a string; "
                                + _rebuild(artifact_dir))


def _check_identity(artifact_dir: Path, manifest: dict[str, Any]) -> bool:
    """A published artifact lives in `<name>-<spec hash[:12]>`: a manifest copied in from another
    variant (or a directory renamed to another's name) is refused. Returns whether the directory is
    the builder's staging copy (whose manifest is still being written)."""
    dirname = Path(os.path.abspath(artifact_dir)).name
    staging = _STAGING.fullmatch(dirname)
    name, spec_hash = manifest.get("name"), manifest.get("spec_hash")
    if name is None and spec_hash is None and staging:
        return True  # the builder's probe manifest, written mid-build to check an export
    if not isinstance(name, str) or not isinstance(spec_hash, str) or not re.fullmatch(r"[0-9a-f]{12,}", spec_hash):
        raise ArtifactError(f"{artifact_dir / MANIFEST} has no valid variant name and spec hash "
                            f"(name {name!r}, spec_hash {spec_hash!r}); " + _rebuild(artifact_dir))
    expected = f"{name}-{spec_hash[:12]}"
    actual = staging.group("name") if staging else dirname
    if actual != expected:
        raise ArtifactError(f"{artifact_dir}: its manifest describes variant {name!r} with spec hash "
                            f"{spec_hash[:12]}, which belongs in a directory named {expected}; the manifest "
                            "was copied from another variant or the directory was renamed -- "
                            + _rebuild(artifact_dir))
    _check_consistent(artifact_dir, manifest)
    return bool(staging)


def _check_consistent(artifact_dir: Path, manifest: dict[str, Any]) -> None:
    """The keys a runner obeys agree with the spec the artifact was built from: an edited `format`,
    `max_length` or `runtime` would measure something else under the variant's name."""
    spec = manifest.get("spec")
    if not isinstance(spec, dict):
        raise ArtifactError(f"{artifact_dir / MANIFEST} holds no spec (it was edited after the build); "
                            + _rebuild(artifact_dir))
    runtime = RUNTIME_OF_FORMAT.get(manifest["format"], manifest["format"])
    expected = {"name": manifest["name"], "runtime": runtime, "max_length": manifest["max_length"],
                "precision": manifest.get("precision", spec.get("precision"))}
    found = {key: spec.get(key) for key in expected}
    if not spec.get("steps"):  # a post-training step keeps its source's truncation, which is not in its spec
        expected["truncation"] = manifest.get("truncation", "right")
        found["truncation"] = spec.get("truncation", "right")
    if manifest.get("runtime") is not None:
        found["runtime (manifest)"], expected["runtime (manifest)"] = manifest.get("runtime"), runtime
    wrong = [f"{k} {found[k]!r} vs {expected[k]!r}" for k in expected if found[k] != expected[k]]
    if wrong:
        raise ArtifactError(f"{artifact_dir / MANIFEST} contradicts itself ({'; '.join(wrong)}: spec vs what the "
                            "runner would do); it was edited after the build -- " + _rebuild(artifact_dir))


def _stamp_path(artifact_dir: Path) -> Path:
    directory = Path(os.path.abspath(artifact_dir))
    return directory.parent / STAMPS_DIR / f"{directory.name}.json"


def _stat_key(st: os.stat_result) -> list[int]:
    # An overwrite changes mtime and ctime (ctime cannot be set back from user space); a copy, the inode.
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def _read_stamp(path: Path) -> dict[str, Any]:
    try:
        stamp = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return stamp if isinstance(stamp, dict) else {}


def _write_stamp(path: Path, stamp: dict[str, Any]) -> None:
    """Best effort: a read-only cache is verified in full every time instead."""
    try:
        path.parent.mkdir(exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
        tmp.write_text(json.dumps(stamp))
        os.replace(tmp, path)
    except OSError:
        pass


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def _check_files(artifact_dir: Path, manifest: dict[str, Any], staging: bool) -> None:
    """Every file the build listed is there with its size and sha256; nothing else is beside it.
    A file is hashed once: its stat at that time is stamped, so later checks cost a stat per file."""
    present = {p.name: p for p in Path(artifact_dir).iterdir() if p.is_file() and p.name != MANIFEST}
    hashes, sizes = manifest.get("files_sha256"), manifest.get("files")
    listed = {*(hashes if isinstance(hashes, dict) else ()), *(sizes if isinstance(sizes, dict) else ())}
    for name in sorted(set(present) - listed - {manifest.get("model_file")}):
        if name.endswith(PICKLE_SUFFIXES):
            raise ArtifactError(f"{artifact_dir} holds {name}, a pickle its build did not write; slimbench never "
                                "loads pickled weights (they can run code) -- delete the file")
    if staging and hashes is None:
        return
    if not isinstance(hashes, dict) or not hashes or not all(isinstance(v, str) for v in hashes.values()):
        raise ArtifactError(f"{artifact_dir / MANIFEST} records no sha256 of the artifact's files, so they cannot "
                            "be verified; " + _rebuild(artifact_dir))
    if not isinstance(sizes, dict):
        sizes = {}
    for name in sorted(hashes):
        if name not in present:
            raise ArtifactError(f"{artifact_dir / name} is missing (the build wrote it); " + _rebuild(artifact_dir))
    model_file = manifest.get("model_file")
    if model_file is not None and model_file not in hashes:
        raise ArtifactError(f"{artifact_dir / MANIFEST}: model_file {model_file!r} is not one of the files its build "
                            "wrote; " + _rebuild(artifact_dir))
    extra = sorted(set(present) - set(hashes))
    if extra:
        raise ArtifactError(f"{artifact_dir} holds {extra}, which its build did not write (it would be measured "
                            "as part of the variant); remove them or " + _rebuild(artifact_dir))
    stamp_path = _stamp_path(artifact_dir)
    stamp = {} if staging else _read_stamp(stamp_path)
    files = stamp.get("files") if stamp else None
    verified: dict[str, Any] = files if isinstance(files, dict) else {}
    fresh: dict[str, Any] = {}
    for name, expected in sorted(hashes.items()):
        path = present[name]
        st = path.stat()
        size = sizes.get(name)
        if isinstance(size, int) and st.st_size != size:
            raise ArtifactError(f"{path} is {st.st_size:,} bytes but its build wrote {size:,}: it was changed or "
                                "truncated since; " + _rebuild(artifact_dir))
        key = [expected, *_stat_key(st)]
        if verified.get(name) != key:
            got = _sha256(path)
            if got != expected:
                raise ArtifactError(f"{path} does not match the sha256 its build recorded ({got[:12]}... != "
                                    f"{expected[:12]}...): it was overwritten or corrupted since; "
                                    + _rebuild(artifact_dir))
        fresh[name] = key
    if not staging and fresh != verified:
        _write_stamp(stamp_path, {"files": fresh})


def verify_artifact(artifact_dir: Path) -> None:
    """Refuse an artifact that is not what its build wrote, before anything measures it.

    Checks the manifest (a JSON object with the keys a runner needs), that its variant name and spec
    hash match the directory name, that every file the build listed is present with its recorded size
    and sha256 (each file is hashed once; its stat is then stamped in `<cache>/artifacts/.verified/`),
    that nothing else lies beside them, and that no pickle is present. Raises ArtifactError.
    """
    artifact_dir = Path(artifact_dir)
    if not artifact_dir.is_dir():
        raise ArtifactError(f"{artifact_dir} is not a directory; give a built variant's artifact directory")
    manifest = read_manifest(artifact_dir)
    _check_runner_keys(artifact_dir, manifest)
    staging = _check_identity(artifact_dir, manifest)
    try:
        _check_files(artifact_dir, manifest, staging)
    except OSError as err:
        raise ArtifactError(f"cannot read {err.filename or artifact_dir}: {err.strerror or err}") from None
