"""A labelled dataset and its deterministic split.

A split is a pure function of the texts, labels and a seed: each example's place is decided by the
sha256 of `seed + text` within its class (a multi-label example's class: its combination of group
values), so it is identical across runs, machines and Python hash seeds, and stratified by
construction. Also the synthetic task's splits (`slimbench.synthetic`), for tests.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from slimbench.errors import DatasetError
from slimbench.labels import LabelGroups


@dataclass(frozen=True)
class Example:
    """A text and its label; in a multi-label dataset `label` is -1 and `groups` holds the index of
    each group's value (in the order of `Splits.groups`)."""

    text: str
    label: int
    groups: tuple[int, ...] = ()

    @property
    def target(self) -> int | tuple[int, ...]:
        """What a classifier must predict: the label, or the tuple of per-group values."""
        return self.groups if self.groups else self.label


@dataclass(frozen=True)
class Splits:
    """A labelled dataset split three ways; `test` is never used for training or selection."""

    name: str
    labels: tuple[str, ...]
    train: tuple[Example, ...]
    val: tuple[Example, ...]
    test: tuple[Example, ...]
    groups: LabelGroups | None = None  # a multi-label dataset's table; `labels` then names every logit

    @property
    def num_labels(self) -> int:
        """The classifier's number of outputs (a multi-label dataset: the sum of its group sizes)."""
        return len(self.labels)

    def fingerprint(self) -> str:
        """sha256 over every (split, label, text): changes iff the data or the split changes. A
        multi-label dataset hashes its label table and each example's tuple of group values too."""
        h = hashlib.sha256()
        h.update(json.dumps(self.labels).encode())
        if self.groups is not None:
            h.update(json.dumps(self.groups.to_json(), sort_keys=True).encode())
        for split_name, part in (("train", self.train), ("val", self.val), ("test", self.test)):
            for ex in part:
                label = ",".join(map(str, ex.groups)) if self.groups is not None else ex.label
                h.update(f"{split_name}\t{label}\t{ex.text}\n".encode())
        return h.hexdigest()


def _split_key(seed: int, text: str) -> str:
    return hashlib.sha256(f"{seed}\0{text}".encode()).hexdigest()


def stratified_split(
    examples: Sequence[Example], val_frac: float, test_frac: float, seed: int = 0
) -> tuple[tuple[Example, ...], tuple[Example, ...], tuple[Example, ...]]:
    """Split per class by hash order: the first ceil(test_frac*n) go to test, then val, rest train.
    A multi-label dataset's class is its combination of group values (`strata`)."""
    if not 0 <= val_frac < 1 or not 0 <= test_frac < 1 or val_frac + test_frac >= 1:
        raise DatasetError(f"invalid split fractions val={val_frac} test={test_frac}")
    if any(ex.groups for ex in examples):
        key = strata(examples)
        by_label: dict[Any, list[Example]] = {}
        for ex in examples:
            by_label.setdefault(key[ex.groups], []).append(ex)
    else:
        by_label = {}
        for ex in examples:
            by_label.setdefault(ex.label, []).append(ex)
    train: list[Example] = []
    val: list[Example] = []
    test: list[Example] = []
    for label in sorted(by_label):
        group = sorted(by_label[label], key=lambda e: _split_key(seed, e.text))
        n_test = math.ceil(test_frac * len(group))
        n_val = math.ceil(val_frac * len(group))
        test += group[:n_test]
        val += group[n_test : n_test + n_val]
        train += group[n_test + n_val :]
    # Interleave classes deterministically (by key) so no split is sorted by label.
    def order(part: list[Example]) -> tuple[Example, ...]:
        return tuple(sorted(part, key=lambda e: _split_key(seed + 1, e.text)))

    return order(train), order(val), order(test)


RARE_COMBINATION = 10  # rows: a rarer combination of group values is split in one pool with the other rare ones


def strata(examples: Sequence[Example]) -> dict[tuple[int, ...], tuple[int, ...]]:
    """A multi-label example's stratum: its combination of group values, or () -- one pool -- for a
    combination of fewer than RARE_COMBINATION rows (split per combination, each rare one would put
    its first row in the test split)."""
    counts = Counter(ex.groups for ex in examples)
    return {combo: combo if n >= RARE_COMBINATION else () for combo, n in counts.items()}


def label_counts(part: Sequence[Example]) -> dict[int, int]:
    return dict(sorted(Counter(e.label for e in part).items()))


def synthetic_examples(n: int, seed: int = 0) -> list[Example]:
    """The synthetic task's sentences (`slimbench.synthetic`): filler words plus sentiment cues."""
    from slimbench.synthetic import synthetic_rows

    return [Example(text, label) for text, label in synthetic_rows(n, seed)]


def synthetic_splits(n: int = 600, seed: int = 0) -> Splits:
    train, val, test = stratified_split(synthetic_examples(n, seed), val_frac=0.15, test_frac=0.2, seed=seed)
    return Splits("synthetic", ("negative", "positive"), train, val, test)
