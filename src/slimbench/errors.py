"""Domain errors: each carries one clear message naming the thing and what to do."""

from __future__ import annotations


class SlimbenchError(Exception):
    """Base class; the CLI prints `str(err)` as one line and exits non-zero."""


class AssetError(SlimbenchError):
    """A pinned asset could not be fetched, verified or extracted."""


class DatasetError(SlimbenchError):
    """A dataset file is missing, malformed or unusable."""


class SpecError(SlimbenchError):
    """A variant spec is unknown or invalid."""


class ArtifactError(SlimbenchError):
    """A built artifact is missing, incomplete or corrupt."""


class BuildError(SlimbenchError):
    """A variant could not be built."""
