"""The known-truth runtime `calibration`: variants whose costs are known in advance, to prove that
the probes and the timing workers measure truly (a 5 ms sleep must measure ~5 ms, a 200 MiB
allocation ~200 MiB more peak RSS), and variants that crash, hang or fail on purpose.

Test scaffolding, registered as a runtime extension (slimbench.extensions): set
`SLIMBENCH_EXTENSIONS=slimbench.testing.calibration` (the test suite's conftest does) and a spec
may say `runtime = "calibration"` with a `[calibration]` table of `KEYS`:

- sleep_s: each predict sleeps that long; load_alloc_bytes: bytes held (resident) from load on;
  predict_alloc_bytes: bytes touched during each predict; spin_after_s: after each call a thread
  busy-spins that long, as a runtime's idle pool threads do while they wait for more work;
- fault: "segfault" | "hang" | "raise" (in predict) or "load-segfault" (at load);
- padding_bytes: the artifact's weights file is exactly that many (incompressible) bytes;
  build_s: the build itself takes that long (a build to interrupt).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from slimbench.extensions import RuntimeExtension, register
from slimbench.runtimes.runners import TOKENIZER_FILE, BaseRunner, busy_spin

RUNTIME = "calibration"
KEYS: dict[str, type] = {"sleep_s": float, "load_alloc_bytes": int, "predict_alloc_bytes": int, "fault": str,
                         "padding_bytes": int, "build_s": float, "spin_after_s": float}


def _segfault() -> None:
    import ctypes

    ctypes.string_at(0)  # a real SIGSEGV, as a crashing native runtime would give


class CalibrationRunner(BaseRunner):
    """A runner with known costs: it sleeps a fixed time per call, holds a known number of bytes
    after load, touches a known number per call, or faults (the module's docstring has the keys)."""

    name = RUNTIME

    def __init__(self, artifact_dir: Path, threads: int, manifest: dict[str, Any]):
        super().__init__(artifact_dir, threads, manifest)
        cal = manifest.get("calibration", {})
        self.sleep_s = float(cal.get("sleep_s", 0.0))
        self.predict_alloc = int(cal.get("predict_alloc_bytes", 0))
        self.fault = cal.get("fault")
        self.spin_after_s = float(cal.get("spin_after_s", 0.0))
        if self.fault == "load-segfault":
            _segfault()
        # np.ones writes every page, so the bytes are resident (np.zeros/bytearray would stay lazy).
        self.held = np.ones(int(cal.get("load_alloc_bytes", 0)), dtype=np.uint8)

    def predict_logits(self, texts: Sequence[str]) -> np.ndarray:
        if self.fault == "segfault":
            _segfault()
        elif self.fault == "hang":
            time.sleep(3600)
        elif self.fault == "raise":
            raise RuntimeError("calibration runner asked to fail")
        ids, _ = self.encoder(texts)
        if self.predict_alloc:
            scratch = np.ones(self.predict_alloc, dtype=np.uint8)
            del scratch
        if self.sleep_s:
            time.sleep(self.sleep_s)
        logits = np.zeros((len(texts), 2), dtype=np.float32)
        logits[:, 1] = (ids.sum(axis=1) % 2).astype(np.float32)  # deterministic, input-dependent
        if self.spin_after_s:
            import threading

            threading.Thread(target=busy_spin, args=(self.spin_after_s,), daemon=True).start()
        return logits


def build_calibration(ctx: Any, spec: Any, out: Path) -> dict[str, Any]:
    """The artifact of a calibration variant: the tiny tokenizer and a weights file of
    `padding_bytes`, after `build_s` of waiting."""
    from slimbench.synthetic import write_tiny_tokenizer

    cal = dict(spec.options)
    time.sleep(float(cal.get("build_s", 0.0)))
    write_tiny_tokenizer(out / TOKENIZER_FILE)
    weights = out / "weights.bin"
    weights.write_bytes(np.random.default_rng(0).bytes(int(cal.get("padding_bytes", 0))))
    return {"format": RUNTIME, "model_file": weights.name, "calibration": cal, "parameters": 0}


# evaluate=False: a calibration variant may be built to crash or hang, and its labels mean nothing
register(RuntimeExtension(RUNTIME, KEYS, CalibrationRunner, build_calibration, evaluate=False))
