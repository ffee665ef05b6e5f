"""The build recipes, one module per kind, registered by name.

A recipe turns a spec into the files of an artifact directory and returns its part of the
manifest (format, model file, parameters, training record...). `recipe_name` says which recipe a
spec asks for; the pipeline (`slimbench.build.pipeline`) does the rest: caching, evaluation,
publishing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from slimbench.build.context import RANDOM_BASE, BuildContext
from slimbench.build.recipes.derive import derive
from slimbench.build.recipes.distill import distill_recipe
from slimbench.build.recipes.finetune import finetune_recipe, random_init
from slimbench.build.recipes.prune import prune_recipe
from slimbench.errors import BuildError
from slimbench.extensions import RuntimeExtension, extension
from slimbench.spec.schema import RUNTIMES, VariantSpec

Recipe = Callable[[BuildContext, VariantSpec, Path], dict[str, Any]]

RECIPES: dict[str, Recipe] = {
    "random-init": random_init,
    "prune": prune_recipe,
    "finetune": finetune_recipe,
    "distill": distill_recipe,
    "derive": derive,
}


def recipe_name(spec: VariantSpec) -> str:
    """The recipe a spec asks for (first match: a runtime extension's own, a random base untrained,
    a [prune] table, a training method, a source with post-training steps)."""
    if spec.runtime not in RUNTIMES:
        return spec.runtime
    if spec.base == RANDOM_BASE and spec.method == "none":
        return "random-init"
    if spec.prune:
        return "prune"
    if spec.method in ("finetune", "distill"):
        return spec.method
    if spec.source:
        return "derive"
    raise BuildError(f"{spec.name}: nothing to build (no training method and no source)")


def _extension_of(spec: VariantSpec) -> RuntimeExtension | None:
    """The runtime extension that builds `spec`; None for slimbench's own runtimes."""
    if spec.runtime in RUNTIMES:
        return None
    ext = extension(spec.runtime)
    if ext is None:  # spec_from_dict accepted it, so the extension was registered then
        raise BuildError(f"{spec.name}: no recipe for runtime {spec.runtime!r} (a runtime extension no longer "
                         "registered)")
    return ext


def recipe_for(spec: VariantSpec) -> Recipe:
    ext = _extension_of(spec)
    return ext.recipe if ext else RECIPES[recipe_name(spec)]


def evaluates(spec: VariantSpec) -> bool:
    """Whether the build scores the artifact's predictions (not for a runtime extension that says
    its variants may be built to crash or hang)."""
    ext = _extension_of(spec)
    return ext is None or ext.evaluate
