"""A user's multi-label dataset: several label columns, a label config file, or JSON Lines rows
holding a "labels" object (`slimbench.labels` holds the table of groups); every single-label check
applies per group."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from slimbench.data.files import read_text, text_lines
from slimbench.data.splits import Example, Splits, stratified_split
from slimbench.data.tables import Table, read_columns
from slimbench.errors import DatasetError
from slimbench.labels import LabelGroups, index_rows, read_label_config

LABELS_KEY = "labels"  # a JSON row's object of label groups: {"text": ..., "labels": {"budget": ...}}


def label_request(label_column: str) -> tuple[tuple[str, ...], LabelGroups | None] | None:
    """The label groups --label-column asks for: several comma-separated columns (one group each),
    or a label config file (*.json, `slimbench.labels`) naming the groups and their values; None
    for one label column (the single-label path)."""
    if label_column.lower().endswith(".json"):
        groups = read_label_config(Path(label_column))
        return groups.names, groups
    if "," not in label_column:
        return None
    names = tuple(n.strip() for n in label_column.split(","))
    if not all(names):
        raise DatasetError(f"--label-column {label_column!r} names an empty column; give the label groups' columns "
                           "separated by commas (budget,fuel,body)")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise DatasetError(f"--label-column {label_column!r} names {dupes} more than once")
    return names, None


def json_label_groups(path: Path) -> tuple[str, ...] | None:
    """The groups of a JSON Lines file whose first row holds a "labels" object and no "label" (its
    keys, in order), else None: such a file is multi-label without naming its columns."""
    if path.suffix.lower() != ".jsonl" or not path.is_file():
        return None
    for line in text_lines(read_text(path)):
        if line.strip():
            try:
                first = json.loads(line, strict=False)
            except (ValueError, RecursionError):
                return None  # read_table says what is wrong with it
            labels = first.get(LABELS_KEY) if isinstance(first, dict) else None
            return tuple(labels) if isinstance(labels, dict) and labels and "label" not in first else None
    return None


def grouped_examples(table: Table, text_column: str, names: Sequence[str], groups: LabelGroups | None = None,
                     known: str = "the label config") -> tuple[list[Example], LabelGroups]:
    """Multi-label examples of table rows, and their label table (`groups` as given, else built
    from the rows: `slimbench.labels.index_rows`)."""
    texts = []
    for line, row in zip(table.lines, table.rows, strict=True):
        text = (row.get(text_column) or "").strip()
        if not text:
            raise DatasetError(f"{table.path}: row {line} has an empty {text_column!r}")
        texts.append(text)
    groups, indices = index_rows(table.path, table.lines, table.rows, names, groups, known)
    return [Example(t, -1, i) for t, i in zip(texts, indices, strict=True)], groups


def grouped_dataset(path: Path, text_column: str, names: Sequence[str], config: LabelGroups | None = None,
                    test_path: Path | None = None, seed: int = 0) -> Splits:
    """A multi-label user dataset: one file split deterministically (stratified on each row's
    combination of group values), or a train file plus a given test file."""
    table = read_columns(path, text_column, names, LABELS_KEY)
    examples, groups = grouped_examples(table, text_column, names, config)
    where = {e.text: f"{path}:{line}" for e, line in zip(examples, table.lines, strict=True)}
    if test_path is None:
        train, val, test = stratified_split(examples, val_frac=0.10, test_frac=0.15, seed=seed)
    else:
        test_table = read_columns(Path(test_path), text_column, groups.names, LABELS_KEY)
        known = "the training data" if config is None else "the label config"
        test_examples, _ = grouped_examples(test_table, text_column, groups.names, groups, known)
        where.update({e.text: f"{test_path}:{line}" for e, line in zip(test_examples, test_table.lines, strict=True)})
        train, val, _ = stratified_split(examples, val_frac=0.10, test_frac=0.0, seed=seed)
        test = tuple(test_examples)
    splits = Splits(path.stem, groups.flat_names(), train, val, test, groups)
    check_values_trained(splits, where)
    return splits


def check_values_trained(splits: Splits, where: Mapping[str, str]) -> None:
    """Every group value the validation or test split holds has training rows (a value the model
    never saw in training cannot be predicted; its rows would only lower the figures)."""
    if splits.groups is None:
        return
    trained: list[set[int]] = [set() for _ in splits.groups.groups]
    for e in splits.train:
        for k, i in enumerate(e.groups):
            trained[k].add(i)
    for split_name, part in (("validation", splits.val), ("test", splits.test)):
        for e in part:
            for k, i in enumerate(e.groups):
                if i not in trained[k]:
                    g = splits.groups.groups[k]
                    raise DatasetError(f"{where.get(e.text, splits.name)}: label group {g.name!r} has value "
                                       f"{g.values[i]!r}, which no row of the training split has (this row is in "
                                       f"the {split_name} split); give more rows with that value")
