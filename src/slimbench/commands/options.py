"""The inputs every slimbench entry point shares -- where the specs and the cache are, which
checkpoint and which dataset, which variants -- declared once, for `slimbench build|list|sweep|run|
compare` (argparse, `--dataset`) and for `pytest bench` (the plugin, `--slimbench-dataset`: pytest's
own options and other plugins' own the short names).

Each input may instead be given once in the project's configuration: a `[tool.slimbench]` table in
./pyproject.toml, or the top level of ./slimbench.toml (keys spelled as the flags: `base`,
`dataset`, `text-column`, `label-column`, `test-file`, `max-length`, `variants`, `cache`, `models`; relative paths
are taken from the file's folder). A flag given on the command line wins over the file, the file
over the built-in default.

The cache root reaches child processes (timing workers, probes, a compare's `slimbench list`) as
$SLIMBENCH_CACHE: `use_cache_root` sets it once, for this process and everything it starts.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slimbench.cache.paths import CACHE_ENV
from slimbench.errors import SpecError

# (flag without dashes, built-in default, keyword arguments of argparse's add_argument / pytest's addoption)
INPUTS: tuple[tuple[str, Any, dict[str, Any]], ...] = (
    ("models", None, {"type": Path,
                      "help": "directory of variant specs (*.toml); default: the default zoo shipped with slimbench"}),
    ("cache", None, {"type": Path,
                     "help": f"cache root for assets and artifacts (default: ${CACHE_ENV} or ~/.cache/slimbench)"}),
    ("base", None, {"metavar": "DIR|hub:ID",
                    "help": "your checkpoint in place of the pinned MiniLM: a local Hugging Face directory "
                            "(safetensors), or hub:ORG/NAME to download it (the only network use). A checkpoint "
                            "that already has a classification head for your labels becomes `standard` as it is"}),
    ("dataset", "movie-snippets", {"metavar": "NAME|FILE",
                                   "help": "movie-snippets (default), synthetic, vader-multilabel (two label groups "
                                           "per snippet), or a CSV/TSV/JSONL file"}),
    ("text-column", "text", {"help": "text column of a CSV/TSV/JSONL dataset (default: text)"}),
    ("label-column", "label", {"help": "label column (strings or ints, two or more classes; default: label); "
                                       "several comma-separated columns, or a label config file (*.json), for a "
                                       "multi-label dataset (docs/multilabel.md)"}),
    ("test-file", None, {"type": Path,
                         "help": "a separate test file (same columns); default: a deterministic split of the dataset"}),
    ("max-length", None, {"metavar": "N|auto",
                          "help": "tokens every variant reads (longer texts are cut): N, or auto = the length "
                                  "that covers 99%% of the training texts, capped by the checkpoint. Default: "
                                  "auto for a dataset file of your own; the specs' own lengths (64, the "
                                  "ultra-light students 32) for the built-in datasets"}),
)
PATH_INPUTS = ("models", "cache", "test-file")
# keys of [tool.slimbench] that are not inputs: other parts of slimbench read them
OTHER_TABLES = ("gate",)
CONFIG_KEYS = (*(flag for flag, _, _ in INPUTS), "variants")


def add_inputs(add: Callable[..., Any], prefix: str = "", skip: tuple[str, ...] = ()) -> None:
    """Declare the shared inputs with `add` (a parser's add_argument or a pytest group's addoption),
    each flag as --PREFIXNAME. Their parsed default is None, so that `resolve_inputs` can tell a flag
    that was not given (the project's file or the built-in default then decides)."""
    for flag, _, kwargs in INPUTS:
        if flag not in skip:
            add(f"--{prefix}{flag}", default=None, **kwargs)


@dataclass(frozen=True)
class ProjectConfig:
    """The `[tool.slimbench]` inputs of a project, and the file they came from."""

    values: Mapping[str, Any]
    path: Path | None = None


def project_config(folder: Path | None = None) -> ProjectConfig:
    """./slimbench.toml (top level), else ./pyproject.toml's [tool.slimbench]; empty if neither."""
    folder = Path(folder or Path.cwd())
    for name, table in (("slimbench.toml", ()), ("pyproject.toml", ("tool", "slimbench"))):
        path = folder / name
        if not path.is_file():
            continue
        try:
            data: Any = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
            raise SpecError(f"{path}: cannot read it: {err}") from None
        for key in table:
            data = data.get(key, {}) if isinstance(data, dict) else {}
        if not isinstance(data, dict):
            raise SpecError(f"{path}: [{'.'.join(table)}] must be a table")
        values = {k: v for k, v in data.items() if k not in OTHER_TABLES}
        if not values and name == "pyproject.toml":
            continue
        where = f"{path} [{'.'.join(table)}]" if table else str(path)
        unknown = sorted(set(values) - set(CONFIG_KEYS))
        if unknown:
            raise SpecError(f"{where}: unknown key{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
                            f"known: {', '.join(CONFIG_KEYS)}")
        for key, value in values.items():
            if key == "variants" and isinstance(value, list) and all(isinstance(v, str) for v in value):
                values[key] = ",".join(value)
            elif key == "max-length" and isinstance(value, int) and not isinstance(value, bool):
                values[key] = str(value)
            elif not isinstance(value, str):
                raise SpecError(f"{where}: {key} must be a string, got {value!r}")
            label_config = key == "label-column" and value.lower().endswith(".json")  # a multi-label config file
            if key in PATH_INPUTS or ((key in ("base", "dataset") or label_config) and _looks_like_path(folder, value)):
                values[key] = str((path.parent / Path(value).expanduser()).resolve())
        return ProjectConfig(values, path)
    return ProjectConfig({})


def _looks_like_path(folder: Path, value: str) -> bool:
    """A base or dataset that names a file or folder relative to the config file (not a hub id or a
    built-in dataset name)."""
    return not value.startswith("hub:") and (folder / value).exists()


def resolve_inputs(get: Callable[[str], Any], set_value: Callable[[str, Any], None],
                   config: ProjectConfig | None = None) -> ProjectConfig:
    """Fill every input that was not given (`get(name)` is None; name as the flag with `_`) from the
    project's file, else the built-in default. Returns the config used."""
    config = config if config is not None else project_config()
    for flag, default, kwargs in [*INPUTS, ("variants", None, {})]:
        name = flag.replace("-", "_")
        if get(name) is not None:
            continue
        value = config.values.get(flag, default)
        if value is not None and kwargs.get("type") is Path:
            value = Path(value)
        set_value(name, value)
    return config


def use_cache_root(cache: Path | None) -> None:
    """Make `cache` the cache root of this process and its children (no-op for None: the default)."""
    if cache is not None:
        os.environ[CACHE_ENV] = str(Path(cache).expanduser().resolve())
