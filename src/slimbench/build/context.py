"""The build context: where artifacts are cached, which data and base models a build reads, and
each variant's artifact directory (its spec hash over the spec and every input). The CLI, the
pytest plugin and the sweep share it as their application context."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from slimbench.build.autocast import AUTO, AutocastChoice
from slimbench.build.steps import StepClock
from slimbench.data import Splits
from slimbench.errors import ArtifactError
from slimbench.machine import library_versions  # noqa: F401 -- re-exported: build.builder, build.pipeline
from slimbench.runtimes.runners import MANIFEST
from slimbench.spec.zoo import Zoo

RANDOM_BASE = "random"


@dataclass
class BuildContext:
    """Everything a build needs besides the spec: where to cache, which data, which base models."""

    zoo: Zoo
    root: Path
    splits_loader: Callable[[], Splits]
    transfer_loader: Callable[[], list[str]] = field(default=lambda: [])
    base_resolver: Callable[[str], Path] | None = None
    threads: int = field(default_factory=lambda: os.cpu_count() or 1)
    log: Callable[[str], None] = print
    base_override: str | None = None  # the user's checkpoint (directory or hub:ID) in place of "minilm"
    steps: StepClock = field(default_factory=StepClock)  # the current build's time per step
    _splits: Splits | None = None
    _bases: dict[str, Path] = field(default_factory=dict)
    _fingerprints: dict[str, str] = field(default_factory=dict)
    _autocast: AutocastChoice | None = None
    max_length: int | None = None  # the tokens every variant reads, when --max-length replaced the specs' own

    @property
    def splits(self) -> Splits:
        if self._splits is None:
            self._splits = self.splits_loader()
        return self._splits

    def inputs(self) -> dict[str, str]:
        from slimbench.cache.assets import asset_fingerprint

        return {"dataset": self.splits.fingerprint(), **asset_fingerprint()}

    def effective_base(self, base: str) -> str:
        return self.base_override if base == "minilm" and self.base_override else base

    def train_autocast(self) -> AutocastChoice:
        """What `train.autocast = "auto"` means on this machine (slimbench.build.autocast): measured
        once and kept under the artifact root."""
        if self._autocast is None:
            from slimbench.build.autocast import resolve

            self._autocast = resolve(self.root)
        return self._autocast

    def spec_hash(self, name: str) -> str:
        inputs = self.inputs()
        for spec in self.zoo.ancestors(name):
            if spec.train.get("autocast") == AUTO:  # the dtype it trains in makes other bytes
                inputs["train_autocast"] = self.train_autocast().dtype
            if spec.precision == "int8":  # its manifest's accuracies: one sentence at a time since 2026-12-03
                inputs["int8_scoring"] = "batch 1"
            base = self.effective_base(spec.base or "")
            if base and base not in ("minilm", RANDOM_BASE):
                if base not in self._fingerprints:
                    from slimbench.build.base_models import fingerprint

                    self._fingerprints[base] = fingerprint(self.resolve_base(spec.base or ""))
                inputs[f"base:{spec.name}"] = self._fingerprints[base]
        return self.zoo.spec_hash(name, inputs)

    def artifact_dir(self, name: str) -> Path:
        return self.root / f"{name}-{self.spec_hash(name)[:12]}"

    def is_built(self, name: str) -> bool:
        return (self.artifact_dir(name) / MANIFEST).is_file()

    def resolve_base(self, base: str) -> Path:
        """The checkpoint directory for a spec's base (the user's override replaces "minilm")."""
        if self.base_resolver is not None:
            return self.base_resolver(base)
        effective = self.effective_base(base)
        if effective not in self._bases:
            from slimbench.build import base_models

            self._bases[effective] = base_models.resolve(effective)
        return self._bases[effective]


def find_artifact(ctx: BuildContext, name: str) -> Path:
    """The built artifact of `name`, or a clear error saying how to build it."""
    ctx.zoo.get(name)
    target = ctx.artifact_dir(name)
    if not (target / MANIFEST).is_file():
        raise ArtifactError(f"variant {name!r} is not built (expected {target}); run `slimbench build --variants {name}`")
    return target


def default_context(zoo: Zoo | None = None, root: Path | None = None, threads: int | None = None,
                    log: Callable[[str], None] = print, dataset: str = "movie-snippets",
                    base: str | None = None, text_column: str = "text", label_column: str = "label",
                    test_file: Path | None = None, max_length: str | int | None = None) -> BuildContext:
    """The default pipeline: pinned MiniLM and, unless another dataset is named, the movie snippets
    (the other Hutto & Gilbert snippet files serve as unlabelled distillation transfer data).
    `max_length` (N, "auto" or None: auto for a dataset file, the specs' own for a built-in one)
    sets how many tokens every variant reads (slimbench.build.max_length)."""
    from slimbench.build import max_length as lengths
    from slimbench.cache.paths import artifacts_dir
    from slimbench.data import load_dataset, transfer_texts

    ctx = BuildContext(
        zoo=zoo or Zoo.load(), root=root or artifacts_dir(),
        splits_loader=lambda: load_dataset(dataset, text_column, label_column, test_file),
        transfer_loader=lambda: transfer_texts(dataset),
        threads=threads or os.cpu_count() or 1, log=log, base_override=base,
    )
    wanted = lengths.parse(max_length)
    if wanted is None:
        wanted = lengths.default_for(dataset)
    if wanted is not None:
        n = lengths.resolve(wanted, ctx.resolve_base("minilm"), [e.text for e in ctx.splits.train], log)
        ctx.zoo, ctx.max_length = lengths.with_max_length(ctx.zoo, n), n
    return ctx
