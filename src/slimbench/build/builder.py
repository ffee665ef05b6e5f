"""The build's public names, for code written against the earlier single-module builder.

The build now lives in `context` (BuildContext, default_context, find_artifact), `pipeline`
(build, caching, evaluation, publishing) and `recipes/` (one module per recipe kind).
"""

from __future__ import annotations

from slimbench.build.context import (
           RANDOM_BASE,
           BuildContext,
           default_context,
           find_artifact,
           library_versions,
)
from slimbench.build.pipeline import MANIFEST_SCHEMA, build, build_one

__all__ = ["MANIFEST_SCHEMA", "RANDOM_BASE", "BuildContext", "build", "build_one", "default_context", "find_artifact",
           "library_versions"]
