"""The inputs every slimbench entry point shares -- where the specs and the cache are, which
checkpoint and which dataset -- declared once, for `slimbench build|list|sweep|compare` (argparse,
`--dataset`) and for `pytest bench` (the plugin, `--slimbench-dataset`: pytest's own options and
other plugins' own the short names).

The cache root reaches child processes (timing workers, probes, a compare's `slimbench list`) as
$SLIMBENCH_CACHE: `use_cache_root` sets it once, for this process and everything it starts.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from slimbench.paths import CACHE_ENV

# (flag without dashes, keyword arguments of argparse's add_argument / pytest's addoption)
INPUTS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("models", {"type": Path, "default": None,
                "help": "directory of variant specs (*.toml); default: the repository's models/"}),
    ("cache", {"type": Path, "default": None,
               "help": f"cache root for assets and artifacts (default: ${CACHE_ENV} or ~/.cache/slimbench)"}),
    ("base", {"default": None, "metavar": "DIR|hub:ID",
              "help": "your checkpoint in place of the pinned MiniLM: a local Hugging Face directory "
                      "(safetensors), or hub:ORG/NAME to download it (the only network use). A checkpoint "
                      "that already has a classification head for your labels becomes `standard` as it is"}),
    ("dataset", {"default": "movie-snippets", "metavar": "NAME|FILE",
                 "help": "movie-snippets (default), synthetic, or a CSV/TSV/JSONL file"}),
    ("text-column", {"default": "text", "help": "text column of a CSV/TSV/JSONL dataset (default: text)"}),
    ("label-column", {"default": "label",
                      "help": "label column (strings or ints, two or more classes; default: label)"}),
    ("test-file", {"type": Path, "default": None,
                   "help": "a separate test file (same columns); default: a deterministic split of --dataset"}),
)


def add_inputs(add: Callable[..., Any], prefix: str = "", skip: tuple[str, ...] = ()) -> None:
    """Declare the shared inputs with `add` (a parser's add_argument or a pytest group's addoption),
    each flag as --PREFIXNAME."""
    for flag, kwargs in INPUTS:
        if flag not in skip:
            add(f"--{prefix}{flag}", **kwargs)


def use_cache_root(cache: Path | None) -> None:
    """Make `cache` the cache root of this process and its children (no-op for None: the default)."""
    if cache is not None:
        os.environ[CACHE_ENV] = str(Path(cache).expanduser().resolve())
