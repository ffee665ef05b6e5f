"""Where slimbench keeps its caches: one root, overridable by SLIMBENCH_CACHE."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "SLIMBENCH_CACHE"


def cache_root() -> Path:
    """The cache root: $SLIMBENCH_CACHE, else $XDG_CACHE_HOME/slimbench, else ~/.cache/slimbench."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser().resolve()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return (base / "slimbench").resolve()


def assets_dir() -> Path:
    return cache_root() / "assets"


def artifacts_dir() -> Path:
    return cache_root() / "artifacts"
