"""Do `train.stop_after_epochs` builds keep exactly the model of the full schedule? For every trained
variant built in a cache with and without the option: its weights' sha256 (from the manifest), the
epochs run, the test accuracy, and the build and training seconds. Issue 15.

    PYTHONPATH=src python experiments/training/stop_after.py CACHE [NAME ...]

(NAME defaults to standard and ultra-light; a cache where both spec versions were built, e.g. one
where the zoo was built before the option was added and `slimbench build` ran again after.)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def rows(cache: Path, name: str) -> list[dict[str, object]]:
    out = []
    for path in sorted((cache / "artifacts").glob(f"{name}-*/manifest.json")):
        m = json.loads(path.read_text())
        if m.get("name") != name:
            continue
        training = m.get("training") or {}
        weights = str(m.get("model_file", "model.safetensors"))
        out.append({
            "variant": name, "spec hash": str(m["spec_hash"])[:12],
            "stop_after_epochs": m["spec"]["train"].get("stop_after_epochs", "-"),
            "epochs run": len(training.get("history", [])), "best epoch": training.get("best_epoch"),
            "weights sha256": str(m.get("files_sha256", {}).get(weights, "?"))[:16],
            "test acc": f"{m.get('test_accuracy', float('nan')):.4f}",
            "val acc": f"{m.get('val_accuracy', float('nan')):.4f}",
            "train s": round(float(training.get("seconds", 0.0))),
            "build s": round(float(m.get("build_seconds", 0.0))),
            "built at": m.get("built_at", ""),
        })
    return out


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    cache, names = Path(argv[0]), argv[1:] or ["standard", "ultra-light"]
    table = [r for n in names for r in rows(cache, n)]
    if not table:
        print(f"no builds of {', '.join(names)} in {cache}")
        return 1
    keys = list(table[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for r in table:
        print("| " + " | ".join(str(r[k]) for k in keys) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
