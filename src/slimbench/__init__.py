"""slimbench: honest benchmarks for compressed transformer text classifiers."""

from __future__ import annotations

import os
from typing import Any

# No code path may reach a model hub unless the user explicitly asks for a hub id.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

__version__ = "0.1.0"


def run(*args: Any, **kwargs: Any) -> Any:
    """Build, measure and report in one call; see `slimbench.api.run` (imported on first use, so that
    `import slimbench` stays cheap)."""
    from slimbench.api import run as _run

    return _run(*args, **kwargs)


def load_predictor(*args: Any, **kwargs: Any) -> Any:
    """A built variant as seed 001's predictor (`predict`, `predict_proba`); see
    `slimbench.api.load_predictor`."""
    from slimbench.api import load_predictor as _load

    return _load(*args, **kwargs)
