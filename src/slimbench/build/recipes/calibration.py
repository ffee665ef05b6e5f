"""The calibration recipe: a variant with known costs (test scaffolding for the probes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from slimbench.build.context import BuildContext
from slimbench.runtime import TOKENIZER_FILE
from slimbench.zoo import VariantSpec


def calibration(ctx: BuildContext, spec: VariantSpec, out: Path) -> dict[str, Any]:
    """A variant with known costs (see runtime.CalibrationRunner): proves the probes measure truly.

    `padding_bytes` writes a weights file of exactly that many (incompressible) bytes; `build_s`
    makes the build itself take that long (a build to interrupt, in the tests).
    """
    import time

    from slimbench.synthetic import write_tiny_tokenizer

    time.sleep(float(spec.calibration.get("build_s", 0.0)))
    write_tiny_tokenizer(out / TOKENIZER_FILE)
    cal = dict(spec.calibration)
    weights = out / "weights.bin"
    weights.write_bytes(np.random.default_rng(0).bytes(int(cal.get("padding_bytes", 0))))
    return {"format": "calibration", "model_file": weights.name, "calibration": cal, "parameters": 0}
