"""Could sparse-50 reach its 50 % in one prune -> recover round instead of two (one recovery epoch,
~130-160 s, fewer)? Builds sparse-50 from the zoo's spec with `[prune] rounds` set to each value
asked for, beside the spec's own build, into CACHE (standard must be built there), and prints each
build's validation and test accuracy, its stages and its training seconds. Issue 15.

    PYTHONPATH=src python experiments/first-run/sparse_rounds.py CACHE [ROUNDS ...]

(ROUNDS defaults to 1; ~3 min a build on 2 cores; the spec's own build, rounds = 2, is read from the
cache, built first if it is not there.)
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import tempfile
from pathlib import Path

from slimbench.cli import main as slimbench
from slimbench.spec.zoo import default_models_dir

SPEC = "75-sparse-50.toml"


def build(cache: Path, rounds: int | None) -> None:
    """Build sparse-50 with the zoo's specs, its `rounds` replaced when given."""
    with tempfile.TemporaryDirectory(prefix="sparse-rounds-") as tmp:
        models = default_models_dir()
        if rounds is not None:
            models = Path(tmp) / "models"
            shutil.copytree(default_models_dir(), models)
            spec = models / SPEC
            text, n = re.subn(r"(?m)^rounds = \d+$", f"rounds = {rounds}", spec.read_text())
            assert n == 1, f"no `rounds = N` line in {spec}"
            spec.write_text(text)
        code = slimbench(["build", "--models", str(models), "--cache", str(cache), "--variants", "sparse-50"])
        assert code == 0, f"slimbench build exited {code}"


def row(manifest: dict) -> str:
    stages = "; ".join(
        f"{s['stage']} to {s['target_sparsity']:.2%}: val {s.get('val_accuracy_pruned', float('nan')):.4f} pruned"
        + (f" -> {s['val_accuracy']:.4f} recovered" if s.get("recovery") else "")
        for s in manifest["pruning"]["stages"])
    steps = manifest.get("build_steps_s", {})
    return (f"| {manifest['spec']['prune']['rounds']} | {str(manifest['spec_hash'])[:12]} | "
            f"{manifest['val_accuracy']:.4f} | {manifest['test_accuracy']:.4f} | {stages} | "
            f"{steps.get('train', 0):.0f} | {sum(steps.values()):.0f} |")


def main() -> None:
    cache = Path(sys.argv[1])
    wanted = [int(r) for r in sys.argv[2:]] or [1]
    build(cache, None)  # the spec's own (read from the cache when built)
    for rounds in wanted:
        build(cache, rounds)
    print("| rounds | spec hash | val acc | test acc | stages | train s | build s |")
    print("|---|---|---|---|---|---|---|")
    for path in sorted((cache / "artifacts").glob("sparse-50-*/manifest.json")):
        manifest = json.loads(path.read_text())
        if manifest.get("name") == "sparse-50":
            print(row(manifest))


if __name__ == "__main__":
    main()
