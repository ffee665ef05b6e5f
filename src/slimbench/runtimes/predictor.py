"""Seed 001's predictor over a built variant: texts in, named labels out.

    with slimbench.load_predictor(artifact_dir) as p:
        p.predict(["I need a cheap, frugal city car"])   # [{"budget": "economy", "fuel": "low"}]
        p.predict(texts, include_none=True)              # every group, "none" ones too
        p.predict_proba(texts)                           # [{"budget": {"economy": 0.91, ...}, ...}]

A multi-label variant names each group whose value is not none (all of them with `include_none`);
a single-label variant is one group, `label`. Any runtime's artifact works the same way (torch,
torch INT8, ONNX, ONNX INT8, NumPy): the runner returns the logits, the label table decodes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from slimbench.errors import ArtifactError
from slimbench.labels import LabelGroup, LabelGroups
from slimbench.runtimes.runners import BaseRunner, open_runner

SINGLE_GROUP = "label"  # the one group of a single-label variant


class Predictor:
    """A built variant, loaded once, predicting named labels per text."""

    def __init__(self, artifact_dir: str | Path, threads: int = 1):
        self.runner: BaseRunner = open_runner(Path(artifact_dir).expanduser(), threads)
        self.multilabel = self.runner.groups is not None
        self.groups = self.runner.groups or _single_group(self.runner.manifest)

    def predict(self, texts: str | Sequence[str], include_none: bool = False) -> list[dict[str, str]]:
        """{group: value} per text, leaving out the groups whose value is none unless `include_none`.
        A single string is one text (a list of one dict comes back)."""
        batch = _texts(texts)
        if not batch:
            return []
        rows = self.groups.decode(self.runner.predict_logits(batch))
        return [self.groups.named(row.tolist(), include_none) for row in rows]

    def predict_proba(self, texts: str | Sequence[str]) -> list[dict[str, dict[str, float]]]:
        """{group: {value: probability}} per text, every group and value (each group sums to 1)."""
        batch = _texts(texts)
        if not batch:
            return []
        return [self.groups.named_proba(row) for row in self.groups.proba(self.runner.predict_logits(batch))]

    def close(self) -> None:
        self.runner.close()

    def __enter__(self) -> Predictor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _texts(texts: str | Sequence[str]) -> list[str]:
    batch = [texts] if isinstance(texts, str) else list(texts)
    bad = [type(t).__name__ for t in batch if not isinstance(t, str)]
    if bad:
        raise TypeError(f"predict takes texts (str), got {bad[0]}")
    return batch


def _single_group(manifest: dict[str, Any]) -> LabelGroups:
    """A single-label variant as one group named `label`, its values the dataset's class names."""
    labels = (manifest.get("dataset") or {}).get("labels") or []
    if len(labels) < 2:
        raise ArtifactError(f"{manifest.get('name')!r}: its manifest names no classes (dataset.labels {labels!r}); "
                            "rebuild the variant")
    return LabelGroups((LabelGroup(SINGLE_GROUP, tuple(str(v) for v in labels)),))
