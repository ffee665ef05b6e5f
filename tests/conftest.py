"""Shared fixtures: a tiny zoo built once per session from configs (no download)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from slimbench.build.builder import BuildContext, build
from slimbench.spec.zoo import Zoo
from slimbench.testing import make_tiny_checkpoint, synthetic_splits, tiny_zoo_specs, write_specs

# The known-truth runtime ("calibration": fixed sleeps, allocations, faults) is test scaffolding, a
# runtime extension; timing workers and probes inherit the variable.
os.environ.setdefault("SLIMBENCH_EXTENSIONS", "slimbench.testing.calibration")


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "base")


@pytest.fixture(scope="session")
def tiny_zoo(tiny_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Zoo:
    return Zoo.load(write_specs(tmp_path_factory.mktemp("models"), tiny_zoo_specs(tiny_base)))


def make_context(zoo: Zoo, root: Path) -> BuildContext:
    splits = synthetic_splits()
    return BuildContext(zoo=zoo, root=root, splits_loader=lambda: splits, threads=2, log=lambda s: None)


@pytest.fixture(scope="session")
def context_for():
    """make_context(zoo, root): a build context over the synthetic dataset."""
    return make_context


@pytest.fixture(scope="session")
def tiny_ctx(tiny_zoo: Zoo, tmp_path_factory: pytest.TempPathFactory) -> BuildContext:
    return make_context(tiny_zoo, tmp_path_factory.mktemp("artifacts"))


@pytest.fixture(scope="session")
def tiny_built(tiny_ctx: BuildContext) -> dict[str, Path]:
    """Every variant of the tiny zoo, built once (about ten seconds)."""
    return build(tiny_ctx, tiny_ctx.zoo.names)
