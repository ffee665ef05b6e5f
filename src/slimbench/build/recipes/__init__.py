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
from slimbench.build.recipes.calibration import calibration
from slimbench.build.recipes.derive import derive
from slimbench.build.recipes.distill import distill_recipe
from slimbench.build.recipes.finetune import finetune_recipe, random_init
from slimbench.build.recipes.prune import prune_recipe
from slimbench.errors import BuildError
from slimbench.zoo import VariantSpec

Recipe = Callable[[BuildContext, VariantSpec, Path], dict[str, Any]]

RECIPES: dict[str, Recipe] = {
    "calibration": calibration,
    "random-init": random_init,
    "prune": prune_recipe,
    "finetune": finetune_recipe,
    "distill": distill_recipe,
    "derive": derive,
}


def recipe_name(spec: VariantSpec) -> str:
    """The recipe a spec asks for (first match: a calibration runtime, a random base untrained,
    a [prune] table, a training method, a source with post-training steps)."""
    if spec.runtime == "calibration":
        return "calibration"
    if spec.base == RANDOM_BASE and spec.method == "none":
        return "random-init"
    if spec.prune:
        return "prune"
    if spec.method in ("finetune", "distill"):
        return spec.method
    if spec.source:
        return "derive"
    raise BuildError(f"{spec.name}: nothing to build (no training method and no source)")


def recipe_for(spec: VariantSpec) -> Recipe:
    return RECIPES[recipe_name(spec)]
