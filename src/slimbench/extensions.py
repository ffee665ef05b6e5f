"""Runtimes from outside slimbench's own modules, registered by name.

A runtime extension brings three things under one name: the runner that predicts with its
artifacts, the recipe that builds them, and the spec table that configures them (a spec with
`runtime = "NAME"` carries a `[NAME]` table). An extension module calls `register` when it is
imported; slimbench imports, once and only when a spec or an artifact names a runtime it does not
know itself, the modules listed in the environment variable `SLIMBENCH_EXTENSIONS`
(comma-separated) and those of the `slimbench.extensions` entry-point group. Timing workers and
probes inherit the environment, so a runtime registered this way is measured out of process too.

The test suite's known-truth runtime (`slimbench.testing.calibration`: fixed sleeps, allocations,
faults) is one; slimbench's own runtimes never go through here, so this costs them nothing.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from slimbench.errors import SlimbenchError

ENV = "SLIMBENCH_EXTENSIONS"
GROUP = "slimbench.extensions"


@dataclass(frozen=True)
class RuntimeExtension:
    """`runtime`: the spec's `runtime =` value, the artifact manifest's `format` and the name of the
    spec's own table; `keys`: that table's keys and their types; `runner(artifact_dir, threads,
    manifest)`: a runner (slimbench.runtimes.runners.BaseRunner); `recipe(ctx, spec, out)`: writes the
    artifact's files into `out` and returns its part of the manifest; `evaluate`: whether the build
    scores the artifact's predictions (off for a runtime that may be built to crash or hang)."""

    runtime: str
    keys: Mapping[str, type]
    runner: Callable[..., Any]
    recipe: Callable[..., dict[str, Any]]
    evaluate: bool = True


_REGISTRY: dict[str, RuntimeExtension] = {}
_loaded = False


def register(extension: RuntimeExtension) -> None:
    _REGISTRY[extension.runtime] = extension


def _load() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for name in (n.strip() for n in os.environ.get(ENV, "").split(",")):
        if not name:
            continue
        try:
            importlib.import_module(name)
        except ImportError as err:
            raise SlimbenchError(f"{ENV} names {name!r}, which cannot be imported ({err}); fix or unset "
                                 f"{ENV}") from None
    from importlib.metadata import entry_points

    for point in entry_points(group=GROUP):
        point.load()


def extension(runtime: str) -> RuntimeExtension | None:
    """The registered extension of that runtime name, or None."""
    _load()
    return _REGISTRY.get(runtime)


def names() -> tuple[str, ...]:
    _load()
    return tuple(_REGISTRY)
