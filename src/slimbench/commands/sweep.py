"""`slimbench sweep`: a sparsity ladder -- accuracy against the fraction of encoder weights pruned.

Each rung is an ordinary variant built from a generated spec (`<source>-sparse-<NN>`: global
magnitude pruning of the source to NN % sparsity, one-shot, or with `--recover-epochs` of recovery
distillation from the source), so rungs are cached by spec hash like every other build, and their
accuracy comes from the same public runner path. The ladder is written to `sweep.json`, which
`slimbench report` turns into a table and the accuracy-vs-sparsity plot.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from slimbench.analysis.results import SWEEP_SCHEMA as SCHEMA
from slimbench.analysis.results import load_sweep as load_sweep  # the file's schema lives with the results'
from slimbench.errors import SpecError
from slimbench.fsutil import atomic_write_text

SWEEP_FILE = "sweep.json"
DEFAULT_LEVELS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def parse_levels(text: str) -> list[float]:
    """'0,10,...,90' (percent) or '0,0.1,...' (fractions) -> sorted unique fractions in [0, 1)."""
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise SpecError(f"--levels must be comma-separated numbers, got {text!r}") from None
    if any(v > 1 for v in values):
        values = [v / 100 for v in values]
    if not values or any(not 0 <= v < 1 for v in values):
        raise SpecError(f"--levels must be sparsities in [0, 100) percent, got {text!r}")
    return sorted(set(values))


def rung_spec(source: Any, level: float, scope: str, recover_epochs: int) -> dict[str, Any]:
    """The spec dict of one rung (a pruned variant of `source`)."""
    train: dict[str, Any] = {"method": "none"}
    if recover_epochs:
        train = {"method": "distill", "epochs": recover_epochs, "lr": 3e-5, "batch_size": 32, "warmup": 0.1,
                 "weight_decay": 0.0, "temperature": 2.0, "alpha": 0.7, "seed": 0}
    how = "one-shot" if not recover_epochs else f"{recover_epochs} epoch(s) of recovery distillation"
    return {"name": f"{source.name}-sparse-{round(level * 100):02d}", "source": source.name,
            "description": f"{source.name} with {level:.0%} of encoder weights zeroed ({scope} magnitude, {how})",
            "runtime": "torch", "precision": "fp32", "max_length": source.max_length,
            "truncation": source.truncation, "prune": {"sparsity": level, "scope": scope}, "train": train}


def run_sweep(ctx: Any, source: str, levels: Sequence[float], scope: str = "global",
              recover_epochs: int = 0) -> dict[str, Any]:
    """Build every rung (cached) and collect its figures; level 0 is the source itself."""
    from slimbench.build.pipeline import build
    from slimbench.measure import gzip_size
    from slimbench.runtimes.runners import read_manifest
    from slimbench.spec.schema import spec_from_dict
    from slimbench.spec.zoo import Zoo

    base = ctx.zoo.get(source)
    if base.runtime != "torch" or base.precision != "fp32" or base.steps or base.prune:
        raise SpecError(f"sweep source must be an unpruned torch fp32 variant; {source!r} is "
                        f"{base.runtime}/{base.precision}")
    rungs = {lv: spec_from_dict(rung_spec(base, lv, scope, recover_epochs), where="sweep") for lv in levels if lv > 0}
    ctx.zoo = Zoo([*ctx.zoo.specs.values(), *[s for s in rungs.values() if s.name not in ctx.zoo.specs]])
    built = build(ctx, [source, *[s.name for s in rungs.values()]])
    rows = []
    for lv in levels:
        name = rungs[lv].name if lv > 0 else source
        m = read_manifest(built[name])
        pruning = m.get("pruning") or {}
        sparsity = pruning.get("sparsity", {})
        weights = built[name] / str(m.get("model_file", "model.safetensors"))
        rows.append({
            "variant": name, "target_sparsity": lv,
            "encoder_sparsity": (sparsity.get("prunable") or {}).get("sparsity", 0.0),
            "model_sparsity": (sparsity.get("all") or {}).get("sparsity", _zero_fraction(weights)),
            "val_accuracy": m.get("val_accuracy"), "test_accuracy": m.get("test_accuracy"),
            "file_bytes": weights.stat().st_size,
            "compressed_bytes": pruning.get("compressed_bytes") or gzip_size(weights),
        })
    return {"schema": SCHEMA, "source": source, "scope": scope, "recover_epochs": recover_epochs,
            "method": "magnitude (|w|) pruning of the encoder's Linear weights; embeddings, pooler and "
                      "classifier kept dense", "test_split": len(ctx.splits.test), "levels": rows}


def _zero_fraction(path: Path) -> float:
    from safetensors.numpy import load_file

    try:
        tensors = load_file(str(path))
    except Exception:  # not a safetensors file: nothing to count
        return 0.0
    total = sum(t.size for t in tensors.values())
    return float(sum(int((t == 0).sum()) for t in tensors.values()) / max(1, total))


def cmd_sweep(args: argparse.Namespace) -> int:
    from slimbench.commands import build_context

    ctx = build_context(args, threads=args.threads)
    doc = run_sweep(ctx, args.source, parse_levels(args.levels), args.scope, args.recover_epochs)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, json.dumps(doc, indent=1) + "\n")
    print(f"{'sparsity':>9s} {'test acc':>9s} {'file MB':>8s} {'gzip MB':>8s}")
    for row in doc["levels"]:
        print(f"{row['encoder_sparsity']:9.1%} {row['test_accuracy']:9.4f} {row['file_bytes'] / 1e6:8.1f} "
              f"{row['compressed_bytes'] / 1e6:8.1f}")
    print(f"wrote {args.out}; `slimbench report` adds it to the report")
    return 0


def register_cli(subparsers: Any) -> None:
    from slimbench.commands import add_common

    p = subparsers.add_parser(
        "sweep", help="build a sparsity ladder (magnitude pruning 0-90 %%) and record accuracy at each rung",
        description="Prune SOURCE's encoder weights by magnitude to each sparsity of --levels, evaluate "
                    "validation and test accuracy through the public runner, and write sweep.json for "
                    "`slimbench report` (table + accuracy-vs-sparsity plot). Rungs are cached builds.")
    add_common(p)
    p.add_argument("--source", default="standard", help="the variant to prune (default: standard)")
    p.add_argument("--levels", default=",".join(str(round(v * 100)) for v in DEFAULT_LEVELS),
                   help="sparsities in percent, comma-separated (default: 0,10,...,90)")
    p.add_argument("--scope", choices=("global", "layer"), default="global",
                   help="rank weights across all encoder matrices (global, default) or within each (layer)")
    p.add_argument("--recover-epochs", type=int, default=0,
                   help="epochs of recovery distillation from SOURCE per rung (default 0: one-shot pruning)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    p.add_argument("--out", type=Path, default=Path("reports") / SWEEP_FILE,
                   help="where to write the ladder (default: reports/sweep.json)")
    p.set_defaults(func=cmd_sweep)
