"""What makes a dataset unusable for training (an error) or its figures mean less than they seem (a
warning)."""

from __future__ import annotations

import math
from collections import Counter

from slimbench.data.splits import Splits, label_counts
from slimbench.errors import DatasetError

MIN_TEST_EXAMPLES = 100  # below this an accuracy's 95 % interval is wider than +-10 points


def data_warnings(splits: Splits) -> list[str]:
    """What makes a dataset's figures mean less than they seem, one line each (not errors: a smoke
    test may want them): a test split too small, test sentences that also occur in the training or
    validation split (a --test-file made of training texts), texts given different labels."""
    out = []
    n = len(splits.test)
    if n < MIN_TEST_EXAMPLES:
        half = 100 * 1.96 * math.sqrt(0.25 / max(n, 1))
        out.append(f"the test split of {splits.name!r} has only {n} examples (fewer than {MIN_TEST_EXAMPLES}): an "
                   f"accuracy measured on it is uncertain by up to +-{half:.0f} points (95 %); use a larger dataset "
                   "or a larger --test-file")
    seen = {e.text for e in splits.train} | {e.text for e in splits.val}
    leaked = sum(e.text in seen for e in splits.test)
    if leaked:
        out.append(f"{leaked} of the {n} test sentences also occur in the training or validation split of "
                   f"{splits.name!r}: their accuracy measures memory, not generalisation; give a --test-file of other "
                   "sentences")
    labels: dict[str, set[int | tuple[int, ...]]] = {}
    rows: Counter[str] = Counter()
    for e in (*splits.train, *splits.val, *splits.test):
        labels.setdefault(e.text, set()).add(e.target)
        rows[e.text] += 1
    torn = [t for t, seen_labels in labels.items() if len(seen_labels) > 1]
    if torn:
        out.append(f"{len(torn)} texts occur with different labels ({sum(rows[t] for t in torn)} rows) in "
                   f"{splits.name!r}: no classifier can get them all right (e.g. {torn[0][:60]!r})")
    return out


# the build's warnings (build.pipeline) under their first name
size_warnings = data_warnings


def check_trainable(splits: Splits, batch_size: int, what: str) -> None:
    """Refuse to train on fewer rows than the recipe needs: one full batch, every class present in
    the training split, and a validation split to choose the epoch on."""
    n = len(splits.train)
    if n < batch_size:
        raise DatasetError(f"{what}: the training split of {splits.name!r} has {n} rows, but the recipe needs at "
                           f"least {batch_size} (one batch of batch_size {batch_size}); give a larger dataset")
    if splits.groups is not None:
        _check_groups_trainable(splits, what)
        missing = []
    else:
        missing = [splits.labels[k] for k in range(splits.num_labels) if k not in label_counts(splits.train)]
    if missing:
        raise DatasetError(f"{what}: class(es) {missing} of {splits.name!r} have no training rows; every class "
                           "needs examples to learn from")
    if not splits.val:
        raise DatasetError(f"{what}: the validation split of {splits.name!r} is empty; the recipe chooses its "
                           "epoch on it -- give a larger dataset")


def _check_groups_trainable(splits: Splits, what: str) -> None:
    """A multi-label dataset's training split gives every group at least two of its values."""
    assert splits.groups is not None
    for k, g in enumerate(splits.groups.groups):
        seen = sorted({e.groups[k] for e in splits.train})
        if len(seen) < 2:
            only = g.values[seen[0]] if seen else "nothing"
            raise DatasetError(f"{what}: label group {g.name!r} of {splits.name!r} has only {only!r} in the training "
                               "split; a group needs at least two values to be learnt -- give rows of its other values")
