"""slimbench: honest benchmarks for compressed transformer text classifiers."""

from __future__ import annotations

import os

# No code path may reach a model hub unless the user explicitly asks for a hub id.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

__version__ = "0.1.0"
