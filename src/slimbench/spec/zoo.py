"""The variant zoo: the spec files of a directory (the default zoo ships inside the package), their
dependency order and their hashes.

The spec hash covers the spec, its ancestors' hashes and the pinned inputs, so a cached build is
reused exactly when nothing it depends on changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path

from slimbench.errors import SpecError
from slimbench.spec.schema import BUILDER_VERSION, VariantSpec, spec_from_dict


def load_spec(path: Path) -> VariantSpec:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise SpecError(f"{path}: cannot read spec: {err}") from None
    return spec_from_dict(data, where=str(path))


DEFAULT_ZOO_DIR = Path(__file__).resolve().parents[1] / "default_zoo"
# Opt-in sets of variants shipped beside the default zoo; a spec directory holding an EXTENDS file
# that reads "default" is the default zoo plus its own specs (`--models DIR`, or SLIMBENCH_MODELS=DIR
# for `make report`).
QUANTIZATION_ZOO_DIR = Path(__file__).resolve().parents[1] / "quantization_zoo"
EXTENDS_FILE = "EXTENDS"


def default_models_dir() -> Path:
    """$SLIMBENCH_MODELS, else the default zoo's specs that ship inside the package (so an installed
    slimbench works from any folder)."""
    env = os.environ.get("SLIMBENCH_MODELS")
    return Path(env) if env else DEFAULT_ZOO_DIR


def checkout_models_dir(checkout: Path) -> Path:
    """The default zoo of a slimbench checkout: its package's specs, or models/ at its root in a
    checkout from before the specs moved into the package."""
    inside = checkout / "src" / "slimbench" / "default_zoo"
    return inside if inside.is_dir() else checkout / "models"


class Zoo:
    """All known variant specs, with dependency order and hashes."""

    def __init__(self, specs: Iterable[VariantSpec]):
        self.specs: dict[str, VariantSpec] = {}
        for spec in specs:
            if spec.name in self.specs:
                raise SpecError(f"variant {spec.name!r} is defined twice")
            self.specs[spec.name] = spec
        for spec in self.specs.values():
            for parent in spec.parents():
                if parent not in self.specs:
                    raise SpecError(f"variant {spec.name!r} names source {parent!r}, which is not in the zoo "
                                    f"(known: {', '.join(self.names)})")
        for name in self.specs:
            self.ancestors(name)  # raises on cycles

    @classmethod
    def load(cls, directory: Path | None = None) -> Zoo:
        directory = directory or default_models_dir()
        files = sorted(directory.glob("*.toml"))
        if not files:
            raise SpecError(f"no variant specs (*.toml) found in {directory}")
        extends = directory / EXTENDS_FILE
        if extends.is_file():
            if extends.read_text(encoding="utf-8").strip() != "default":
                raise SpecError(f"{extends}: an EXTENDS file reads \"default\" (the default zoo's specs come first)")
            files = sorted(DEFAULT_ZOO_DIR.glob("*.toml")) + files
        specs: list[VariantSpec] = []
        where: dict[str, Path] = {}
        for f in files:
            spec = load_spec(f)
            if spec.name in where:
                raise SpecError(f"variant {spec.name!r} is defined twice: in {where[spec.name]} and in {f}; "
                                "rename one of them")
            where[spec.name] = f
            specs.append(spec)
        return cls(specs)

    @property
    def names(self) -> list[str]:
        return list(self.specs)

    def get(self, name: str) -> VariantSpec:
        try:
            return self.specs[name]
        except KeyError:
            raise SpecError(f"unknown variant {name!r}; known variants: {', '.join(self.names)}") from None

    def select(self, names: str | Iterable[str] | None) -> list[VariantSpec]:
        """Specs for a comma-separated string or list of names (all when None/'all')."""
        if names is None or names == "all":
            return list(self.specs.values())
        if isinstance(names, str):
            names = [n.strip() for n in names.split(",") if n.strip()]
        return [self.get(n) for n in names]

    def ancestors(self, name: str) -> list[VariantSpec]:
        """The variant's ancestors, oldest first, then the variant itself."""
        chain: list[VariantSpec] = []
        seen: set[str] = set()
        current: str | None = name
        while current:
            if current in seen:
                raise SpecError(f"variant {name!r} has a cyclic source chain through {current!r}")
            seen.add(current)
            spec = self.get(current)
            chain.append(spec)
            current = spec.source
        return list(reversed(chain))

    def with_seed(self, seed: int, names: Iterable[str]) -> Zoo:
        """This zoo with `train.seed` = `seed` in those of `names` that train (fine-tune or distil;
        structured pruning also draws its importance sample with it). Their spec hashes change, so a
        seed replicate builds into its own artifact directories, beside the spec's own seed; what
        is not named keeps its seed, and what derives from a replicate is a replicate too."""
        chosen = set(names)
        return Zoo(replace(s, train={**s.train, "seed": seed}) if s.name in chosen and s.method != "none" else s
                   for s in self.specs.values())

    def build_order(self, names: Iterable[str]) -> list[VariantSpec]:
        """The named variants and their ancestors, each once, every source before what derives from it."""
        order: list[VariantSpec] = []
        for name in names:
            order += [spec for spec in self.ancestors(name) if spec not in order]
        return order

    def spec_hash(self, name: str, inputs: Mapping[str, str] | None = None) -> str:
        """sha256 of the spec, its ancestors and the pinned inputs (assets, dataset fingerprint)."""
        h = hashlib.sha256()
        h.update(f"builder={BUILDER_VERSION}\n".encode())
        h.update(json.dumps(inputs or {}, sort_keys=True).encode())
        for spec in self.ancestors(name):
            h.update(json.dumps(spec.canonical(), sort_keys=True).encode())
        return h.hexdigest()
