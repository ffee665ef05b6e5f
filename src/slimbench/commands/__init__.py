"""The commands `slimbench.cli` loads: `compare` (with `ab`, the paired A/B measurement it runs),
`gate` (and `baseline`), `sweep` and `plan`; `options`, the inputs every entry point shares.

This module holds what the build-side commands (`slimbench list|build|sweep|plan`) share: their input
flags and the build context those inputs make. A command module imports this, never `slimbench.cli`,
which loads the commands (so no command can reach back into the module that registers it)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from slimbench.build.context import BuildContext


def add_common(p: argparse.ArgumentParser) -> None:
    """The shared inputs (`slimbench.commands.options.INPUTS`) as flags of `p`."""
    from slimbench.commands.options import add_inputs

    add_inputs(p.add_argument)


def artifacts_root(args: argparse.Namespace) -> Path | None:
    """The artifact folder of --cache (None: the default cache root), made this process's and its
    children's cache root."""
    if args.cache is None:
        return None
    from slimbench.cache.paths import artifacts_dir
    from slimbench.commands.options import use_cache_root

    use_cache_root(args.cache)
    return artifacts_dir()


def build_context(args: argparse.Namespace, threads: int | None = None, quiet: bool = False) -> BuildContext:
    """The build context of a command's inputs (already resolved: flags, project file, defaults)."""
    from slimbench.build.context import default_context
    from slimbench.spec.zoo import Zoo

    return default_context(Zoo.load(args.models), root=artifacts_root(args), threads=threads,
                           log=(lambda s: None) if quiet else print, dataset=args.dataset, base=args.base,
                           text_column=args.text_column, label_column=args.label_column,
                           test_file=args.test_file, max_length=args.max_length)
