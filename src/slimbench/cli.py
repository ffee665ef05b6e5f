"""`slimbench run|build|list|sweep|report|gate|compare|plan`: the command line, one line per error, no tracebacks."""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import tempfile
import traceback
from collections.abc import Sequence

from slimbench.commands import add_common, build_context
from slimbench.errors import SlimbenchError, SpecError


def cmd_list(args: argparse.Namespace) -> int:
    ctx = build_context(args, quiet=True)
    if args.json:  # for tools: `slimbench compare` resolves each checkout's artifacts this way
        import json

        print(json.dumps({"variants": [
            {"name": spec.name, "runtime": spec.runtime, "built": ctx.is_built(spec.name),
             "artifact": str(ctx.artifact_dir(spec.name))} for spec in ctx.zoo.specs.values()]}))
        return 0
    for spec in ctx.zoo.specs.values():
        state = "built" if ctx.is_built(spec.name) else "not built"
        print(f"{spec.name:24s} {spec.runtime:12s} {spec.precision:5s} {state:10s} {spec.description}")
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    from slimbench.build.pipeline import build

    if not [n for n in args.variants.split(",") if n.strip()]:
        raise SpecError(f"--variants {args.variants!r} names no variant; give comma-separated names, or 'all'")
    ctx = build_context(args, threads=args.threads)
    names = [s.name for s in ctx.zoo.select(args.variants)]
    if args.seed is not None:
        trained = [n for n in names if ctx.zoo.get(n).method != "none"]
        if not trained:
            raise SpecError(f"--seed {args.seed}: none of {', '.join(names)} trains (fine-tune or distil); "
                            "name a variant with a [train] method")
        ctx.zoo = ctx.zoo.with_seed(args.seed, names)
        print(f"seed replicate: {', '.join(trained)} trained with seed {args.seed} instead of their specs' "
              "(their own artifacts; `pytest bench` and the report use the specs' seeds)")
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
    add_common(p)
    p.add_argument("--json", action="store_true", help="one JSON document: name, runtime, built, artifact path")
    p.set_defaults(func=cmd_list)
    p = sub.add_parser("build", help="build variants (and what they derive from) into the artifact cache")
    add_common(p)
    p.add_argument("--variants", default=None, help="comma-separated variant names (default: all)")
    p.add_argument("--threads", type=int, default=None, help="torch threads for training (default: all cores)")
    p.add_argument("--force", action="store_true", help="rebuild the named variants even if cached")
    p.add_argument("--seed", type=int, default=None,
                   help="train the named variants that train (fine-tune, distil) with this seed instead of "
                        "their spec's train.seed: a seed replicate, built beside the spec's own, to see how "
                        "much of a recipe's accuracy is the seed's (e.g. --variants light --seed 1)")
    p.set_defaults(func=cmd_build)
    for module in ("slimbench.api", "slimbench.commands.sweep", "slimbench.render.command", "slimbench.commands.gate",
                   "slimbench.commands.compare", "slimbench.commands.plan"):
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as err:
            if err.name != module:
                raise
            continue
        mod.register_cli(sub)
    return parser


def _resolve_inputs(args: argparse.Namespace) -> None:
    """Inputs not given on the command line: from the project's [tool.slimbench] or slimbench.toml,
    else the defaults (commands that take no inputs are left alone)."""
    from slimbench.commands.options import resolve_inputs

    if hasattr(args, "dataset"):
        resolve_inputs(lambda name: getattr(args, name, None), lambda name, value: setattr(args, name, value))
        if args.command in ("build", "sweep") and getattr(args, "variants", None) is None:
            args.variants = "all"


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # run the `finally` clauses that discard half-written builds


INTERNAL_ERROR = 3
DEBUG_ENV = "SLIMBENCH_DEBUG"


def _write_traceback(err: BaseException) -> str:
    """Put the full traceback in a temporary file (the terminal gets one line); returns its path."""
    text = "".join(traceback.format_exception(err))
    try:
        fd, path = tempfile.mkstemp(prefix="slimbench-traceback-", suffix=".txt")
        with os.fdopen(fd, "w") as fh:
            fh.write(f"slimbench {' '.join(sys.argv[1:])}\n\n{text}")
        return path
    except OSError:
        return "(could not be written: set SLIMBENCH_DEBUG=1 to see it)"


def main(argv: Sequence[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _terminate)
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        _resolve_inputs(args)
        return int(args.func(args) or 0)
    except SlimbenchError as err:
        print(f"slimbench: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        print("slimbench: interrupted; partial builds were discarded, finished ones are kept", file=sys.stderr)
        return 130
    except OSError as err:  # the environment, not slimbench: a full disk, a permission, a missing directory
        where = f": {err.filename}" if err.filename else ""
        print(f"slimbench: error: {err.strerror or err}{where}", file=sys.stderr)
        return 2
    except Exception as err:  # a bug: one line here, the whole story in a file
        if os.environ.get(DEBUG_ENV):
            raise
        first = (str(err).strip().splitlines() or [""])[0][:200]
        print(f"slimbench: internal error: {type(err).__name__}: {first} -- this is a bug in slimbench; the full "
              f"traceback is in {_write_traceback(err)} (please include it in a report)", file=sys.stderr)
        return INTERNAL_ERROR


if __name__ == "__main__":
    sys.exit(main())
