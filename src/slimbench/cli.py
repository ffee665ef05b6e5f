"""`slimbench build|list|bench|report|gate`: the command line, one line per error, no tracebacks."""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from slimbench.errors import SlimbenchError


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--models", type=Path, default=None,
                   help="directory of variant specs (*.toml); default: the repository's models/")
    p.add_argument("--cache", type=Path, default=None,
                   help="cache root for assets and artifacts (default: $SLIMBENCH_CACHE or ~/.cache/slimbench)")


def cmd_list(args: argparse.Namespace) -> int:
    from slimbench.build.builder import default_context
    from slimbench.zoo import Zoo

    zoo = Zoo.load(args.models)
    ctx = default_context(zoo, root=_artifacts(args), log=lambda s: None)
    for spec in zoo.specs.values():
        state = "built" if ctx.is_built(spec.name) else "not built"
        print(f"{spec.name:24s} {spec.runtime:12s} {spec.precision:5s} {state:10s} {spec.description}")
    return 0


def _artifacts(args: argparse.Namespace) -> Path | None:
    if args.cache is None:
        return None
    import os

    os.environ["SLIMBENCH_CACHE"] = str(args.cache.resolve())
    from slimbench.paths import artifacts_dir

    return artifacts_dir()


def cmd_build(args: argparse.Namespace) -> int:
    from slimbench.build.builder import build, default_context
    from slimbench.zoo import Zoo

    zoo = Zoo.load(args.models)
    names = [s.name for s in zoo.select(args.variants)]
    ctx = default_context(zoo, root=_artifacts(args), threads=args.threads)
    built = build(ctx, names, force=args.force)
    for name in names:
        print(f"{name}: {built[name]}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="slimbench",
        description="Build compressed variants of a transformer text classifier and measure what each "
                    "costs (size, load time, latency, peak memory) and loses (accuracy).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("list", help="list the variants of the zoo and whether they are built")
    _add_common(p)
    p.set_defaults(func=cmd_list)
    p = sub.add_parser("build", help="build variants (and what they derive from) into the artifact cache")
    _add_common(p)
    p.add_argument("--variants", default="all", help="comma-separated variant names (default: all)")
    p.add_argument("--threads", type=int, default=None, help="torch threads for training (default: all cores)")
    p.add_argument("--force", action="store_true", help="rebuild the named variants even if cached")
    p.set_defaults(func=cmd_build)
    for module in ("slimbench.report", "slimbench.gate"):
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as err:
            if err.name != module:
                raise
            continue
        mod.register_cli(sub)
    return parser


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # run the `finally` clauses that discard half-written builds


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        return int(args.func(args) or 0)
    except SlimbenchError as err:
        print(f"slimbench: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        print("slimbench: interrupted; partial builds were discarded, finished ones are kept", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
