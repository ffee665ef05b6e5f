"""Issue 15's lead, measured on whole builds: standard fine-tuned in fp32 and then with its training
steps under torch's CPU bf16 autocast (`train.autocast`; evaluation stays fp32), same recipe, seed and
data, one after the other in one window; validation accuracy per epoch, training seconds, test
accuracy. The artifacts go to temporary directories, never to the cache.

    python experiments/training/bf16_standard.py     (~10-13 min; the assets cached)
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any


def build_standard(autocast: str) -> dict[str, Any]:
    """standard from the zoo's own spec with `train.autocast` set to `autocast`, built into a temporary
    directory; its manifest."""
    import tomllib

    from slimbench.build.context import default_context
    from slimbench.build.pipeline import build
    from slimbench.spec.schema import spec_from_dict
    from slimbench.spec.zoo import Zoo, default_models_dir

    data = tomllib.loads((default_models_dir() / "00-standard.toml").read_text())
    data["train"] = {**data["train"], "autocast": autocast}
    with tempfile.TemporaryDirectory() as tmp:
        ctx = default_context(zoo=Zoo([spec_from_dict(data)]), root=Path(tmp))
        out = build(ctx, ["standard"])["standard"]
        return json.loads((out / "manifest.json").read_text())


def main() -> None:
    rows = [("fp32", build_standard("fp32")), ("bf16 autocast training", build_standard("bf16"))]
    print("\n| standard | val accuracy per epoch | best | training s | test accuracy |\n|---|---|---|---|---|")
    for name, m in rows:
        epochs = " / ".join(f"{h['val_accuracy']:.4f}" for h in m["training"]["history"])
        print(f"| {name} | {epochs} | {m['val_accuracy']:.4f} | {m['build_steps_s'].get('train', 0):.0f} | "
              f"{m['test_accuracy']:.4f} |")


if __name__ == "__main__":
    main()
