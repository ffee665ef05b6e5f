"""A user's dataset with one label column: CSV, TSV or JSON Lines, read strictly (a malformed row
is one error naming the file and line), turned into examples and split."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slimbench.data.files import check_file, read_text, text_lines
from slimbench.data.splits import Example, Splits, stratified_split
from slimbench.errors import DatasetError


@dataclass(frozen=True)
class Table:
    """Rows of a dataset file, each with the line it starts on (for error messages)."""

    path: Path
    rows: tuple[dict[str, str], ...]
    lines: tuple[int, ...]


@contextlib.contextmanager
def _csv_field_limit() -> Iterator[None]:
    """Lift csv's 128 KiB field limit (a long review is a valid text) and restore it afterwards."""
    old = csv.field_size_limit()
    try:
        csv.field_size_limit(sys.maxsize)
    except OverflowError:  # platforms whose C long is 32-bit
        csv.field_size_limit(2**31 - 1)
    try:
        yield
    finally:
        csv.field_size_limit(old)


def check_columns(path: Path, text_column: str, label_column: str) -> None:
    if text_column == label_column:
        raise DatasetError(f"{path}: the text column and the label column are both {text_column!r}; "
                           "name two different columns (--text-column / --label-column)")


def _read_delimited(path: Path, content: str, delimiter: str) -> tuple[list[dict[str, str]], list[int]]:
    """Rows of a CSV/TSV with a header; every row must have the header's number of fields."""
    shown = "TAB" if delimiter == "\t" else repr(delimiter)
    rows: list[dict[str, str]] = []
    lines: list[int] = []
    header: list[str] | None = None
    # newline="" keeps line ends inside quoted fields; csv itself splits records at \n, \r\n and \r only.
    reader = csv.reader(io.StringIO(content, newline=""), delimiter=delimiter, strict=True)
    start = 1
    with _csv_field_limit():
        while True:
            try:
                record = next(reader)
            except StopIteration:
                break
            except csv.Error as err:
                raise DatasetError(f"{path}:{start}: malformed {shown}-separated row ({err}); quote a text "
                                   "that contains the separator, a quote or a line break, doubling its "
                                   "quotes") from None
            line, start = start, reader.line_num + 1
            if not record or (len(record) == 1 and not record[0].strip()):
                continue  # a blank line
            if header is None:
                header = [h.strip() for h in record]
                dupes = sorted({h for h in header if header.count(h) > 1})
                if dupes:
                    raise DatasetError(f"{path}:{line}: the header names column(s) {dupes} more than once")
                continue
            if len(record) != len(header):
                raise DatasetError(
                    f"{path}:{line}: {len(record)} fields, but the header has {len(header)} ({header}); a text "
                    f"that contains the separator {shown} must be quoted (\"...\"), or the row is incomplete")
            rows.append(dict(zip(header, record, strict=True)))
            lines.append(line)
    if header is None:
        raise DatasetError(f"dataset file {path} is empty")
    if not rows:
        raise DatasetError(f"{path} has no data rows")
    return rows, lines


def _json_value(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value) if isinstance(value, (dict, list)) else str(value)


def _read_json_rows(path: Path, content: str, columns: Sequence[str] = (),
                    lift: str | None = None) -> tuple[list[dict[str, str]], list[int]]:
    """JSON Lines (one object per line), or a JSON array of objects in a .json file. The `columns`
    (text and label) must each hold one value: a list or an object there would become a text or a
    class named by its JSON (a label ["positive"] a class '["positive"]'). With `lift` (a multi-label
    file's "labels"), the entries of the object under that key become columns of the row."""
    items: list[tuple[int, object]] = []
    if path.suffix.lower() == ".json" and content.lstrip().startswith("["):
        try:
            array = json.loads(content, strict=False)
        except (ValueError, RecursionError) as err:
            raise DatasetError(f"{path}: not valid JSON ({getattr(err, 'msg', err)})") from None
        items = [(k, obj) for k, obj in enumerate(array, start=1)] if isinstance(array, list) else []
        where = "item"
    else:
        where = "line"
        for lineno, line in enumerate(text_lines(content), start=1):
            if not line.strip():
                continue
            try:
                # strict=False: a raw control character (a form feed, a tab) inside a string is a text.
                items.append((lineno, json.loads(line, strict=False)))
            except (ValueError, RecursionError) as err:
                raise DatasetError(f"{path}:{lineno}: not valid JSON ({getattr(err, 'msg', err)})") from None
    rows: list[dict[str, str]] = []
    lines: list[int] = []
    for k, obj in items:
        if not isinstance(obj, dict):
            raise DatasetError(f"{path}: {where} {k} is not a JSON object ({{\"text\": ..., \"label\": ...}})")
        if lift is not None and lift in obj:
            obj = _lifted(path, k, obj, lift)
        for col in columns:
            value = obj.get(col)
            if isinstance(value, (dict, list)):
                kind, shown = "list" if isinstance(value, list) else "object", json.dumps(value)
                raise DatasetError(f"{path}:{k}: {col!r} is a JSON {kind} ({shown[:60]}), not one "
                                   f"{'text' if col == columns[0] else 'label'}; give each row a single string "
                                   "or number there")
        rows.append({str(key): _json_value(v) for key, v in obj.items()})
        lines.append(k)
    if not rows:
        raise DatasetError(f"{path} has no data rows")
    return rows, lines


def _lifted(path: Path, k: int, obj: dict[str, Any], key: str) -> dict[str, Any]:
    """A JSON row with the entries of its `key` object (its label groups) as columns of their own."""
    inner = obj[key]
    if not isinstance(inner, dict):
        raise DatasetError(f"{path}:{k}: {key!r} is {json.dumps(inner)[:60]}, not an object of label groups "
                           f"({{\"{key}\": {{\"budget\": \"economy\", \"fuel\": \"none\"}}}})")
    clash = sorted(set(inner) & (set(obj) - {key}))
    if clash:
        raise DatasetError(f"{path}:{k}: label group(s) {clash} under {key!r} clash with the row's own keys; rename "
                           "one of them")
    return {**{n: v for n, v in obj.items() if n != key}, **inner}


def read_table(path: Path, text_column: str = "text", label_column: str = "label") -> Table:
    """Rows of a CSV, TSV or JSONL file, each holding the text and label columns."""
    return read_columns(Path(path), text_column, (label_column,))


def read_columns(path: Path, text_column: str, label_columns: Sequence[str], lift: str | None = None) -> Table:
    """Rows holding the text column and the label columns (several: one per label group, `lift`ed
    from a JSON row's object of label groups; a row without a group is refused later, by line)."""
    for label_column in label_columns:
        check_columns(path, text_column, label_column)
    check_file(path)
    suffix = path.suffix.lower()
    if suffix not in (".jsonl", ".json", ".csv", ".tsv", ".txt"):
        raise DatasetError(f"{path}: unsupported extension {suffix!r}; use .csv, .tsv or .jsonl")
    content = read_text(path)
    if suffix in (".jsonl", ".json"):
        rows, lines = _read_json_rows(path, content, (text_column, *label_columns), lift)
        for row, line in zip(rows, lines, strict=True):
            for col in (text_column, label_columns[0]) if lift is None else (text_column,):
                if col not in row:
                    raise DatasetError(f"{path}:{line}: no {col!r} key; keys are {sorted(row)} "
                                       "(choose with --text-column / --label-column)")
    else:
        rows, lines = _read_delimited(path, content, "\t" if suffix in (".tsv", ".txt") else ",")
        for col in (text_column, *label_columns):
            if col not in rows[0]:
                raise DatasetError(f"{path}: column {col!r} not found; columns are {sorted(rows[0])} "
                                   "(choose with --text-column / --label-column)")
    return Table(path, tuple(rows), tuple(lines))


def examples_from_rows(
    table: Table, text_column: str, label_column: str, labels: Sequence[str] | None = None,
) -> tuple[list[Example], tuple[str, ...]]:
    """Turn table rows into examples; label names are sorted unless given (for a test file)."""
    path = table.path
    pairs: list[tuple[str, str]] = []
    for line, row in zip(table.lines, table.rows, strict=True):
        text = (row.get(text_column) or "").strip()
        label = (row.get(label_column) or "").strip()
        if not text:
            raise DatasetError(f"{path}: row {line} has an empty {text_column!r}")
        if not label:
            raise DatasetError(f"{path}: row {line} has an empty {label_column!r}")
        pairs.append((text, label))
    if labels is None:
        names = sorted({lab for _, lab in pairs}, key=lambda s: (not s.lstrip("-").isdigit(), int(s) if s.lstrip("-").isdigit() else 0, s))
        if len(names) < 2:
            raise DatasetError(f"{path}: only one class ({names[0]!r}); a classifier needs at least two")
    else:
        names = list(labels)
        unknown = sorted({lab for _, lab in pairs} - set(names))
        if unknown:
            raise DatasetError(f"{path}: labels {unknown} do not occur in the training data {names}")
    index = {name: k for k, name in enumerate(names)}
    return [Example(text, index[lab]) for text, lab in pairs], tuple(names)


def table_dataset(
    path: Path, text_column: str = "text", label_column: str = "label", test_path: Path | None = None,
    seed: int = 0,
) -> Splits:
    """A user dataset: one file split deterministically, or a train file plus a given test file."""
    examples, labels = examples_from_rows(read_table(path, text_column, label_column), text_column, label_column)
    if test_path is None:
        train, val, test = stratified_split(examples, val_frac=0.10, test_frac=0.15, seed=seed)
    else:
        test_examples, _ = examples_from_rows(read_table(test_path, text_column, label_column), text_column,
                                              label_column, labels)
        train, val, _ = stratified_split(examples, val_frac=0.10, test_frac=0.0, seed=seed)
        test = tuple(test_examples)
    return Splits(path.stem, labels, train, val, test)
