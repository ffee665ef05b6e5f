"""Atomic file writes: a reader (or a concurrent run) sees the old file or the new one, never half."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def atomic_write_text(path: Path, text: str) -> None:
    """Write `text` to a unique temporary file beside `path`, then rename it over `path`.

    An OSError names `path`, the file the caller asked for: the temporary file is an implementation
    detail, and a message naming `.c.md.k2j4.tmp` sends the user looking for a file that never existed.
    """
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise _naming(err, path) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; a report is an ordinary file
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise _naming(err, path) from None
        raise


def _naming(err: OSError, path: Path) -> OSError:
    """`err` (same type, errno and reason) with `path` as its file name."""
    return err if err.errno is None else type(err)(err.errno, err.strerror, str(path))
