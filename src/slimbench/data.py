"""Datasets: the default movie-review snippets, user CSV/TSV/JSONL files, deterministic splits.

A split is a pure function of the texts, labels and a seed: each example's place is decided by the
sha256 of `seed + text` within its class, so it is identical across runs, machines and Python hash
seeds, and stratified by construction.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import math
import sys
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slimbench.errors import DatasetError
from slimbench.labels import LabelGroups, index_rows, read_label_config

MOVIE_FILE = "movieReviewSnippets_GroundTruth.txt"
TRANSFER_FILES = (
    "amazonReviewSnippets_GroundTruth.txt",
    "nytEditorialSnippets_GroundTruth.txt",
    "tweets_GroundTruth.txt",
)
BINARY_LABELS = ("negative", "positive")
VADER_MULTILABEL = "vader-multilabel"
BUILT_IN_DATASETS = ("movie-snippets", "synthetic", VADER_MULTILABEL)


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


def _check_file(path: Path) -> None:
    if path.is_dir():
        raise DatasetError(f"dataset {path} is a directory; give a CSV, TSV or JSONL file")
    if not path.is_file():
        raise DatasetError(f"dataset file {path} does not exist")


def _read_text(path: Path) -> str:
    _check_file(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise DatasetError(f"cannot read dataset file {path}: {err.strerror or err}") from None
    if not raw.strip():
        raise DatasetError(f"dataset file {path} is empty")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise DatasetError(
            f"{path}: line {line} is not valid UTF-8 (byte {raw[err.start]:#04x} at offset {err.start})"
            " -- re-save the file as UTF-8"
        ) from err


def _lines(content: str) -> list[str]:
    """Lines ended by LF or CRLF only. `str.splitlines()` also splits at U+2028, U+0085, form feed,
    vertical tab and more, which are valid characters inside a text."""
    lines = content.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def read_rated_snippets(path: Path, threshold: float = 0.5) -> list[Example]:
    """Hutto & Gilbert ground truth (`id<TAB>mean rating<TAB>text`): |rating| >= threshold, binary.

    Ratings are the mean of >= 20 human raters on -4..+4; near-neutral sentences are dropped.
    Duplicate texts keep their first occurrence so no sentence can sit in two splits.
    """
    out: list[Example] = []
    seen: set[str] = set()
    for rating, text in read_ratings(path):
        if abs(rating) < threshold or not text or text in seen:
            continue
        seen.add(text)
        out.append(Example(text=text, label=int(rating > 0)))
    return out


def read_ratings(path: Path) -> list[tuple[float, str]]:
    """(mean rating, text) of every non-blank line of a Hutto & Gilbert ground-truth file."""
    out = []
    for lineno, line in enumerate(_lines(_read_text(path)), start=1):
        if not line.strip():
            continue
        parts = line.split("\t", 2)
        if len(parts) != 3:
            raise DatasetError(f"{path}:{lineno}: expected 'id<TAB>rating<TAB>text', got {line[:60]!r}")
        try:
            rating = float(parts[1])
        except ValueError:
            raise DatasetError(f"{path}:{lineno}: rating {parts[1]!r} is not a number") from None
        out.append((rating, parts[2].strip()))
    return out


def read_unlabelled_snippets(paths: Iterable[Path]) -> list[str]:
    """Texts of other Hutto & Gilbert files, used only as unlabelled distillation transfer data."""
    texts: list[str] = []
    for path in paths:
        for line in _lines(_read_text(path)):
            parts = line.split("\t", 2)
            if len(parts) == 3 and parts[2].strip():
                texts.append(parts[2].strip())
    return texts


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


def movie_snippets(directory: Path, seed: int = 0) -> Splits:
    """The default dataset: 10,070 Rotten Tomatoes snippets with |mean human rating| >= 0.5."""
    examples = read_rated_snippets(directory / MOVIE_FILE)
    train, val, test = stratified_split(examples, val_frac=0.10, test_frac=0.11, seed=seed)
    return Splits("movie-snippets", BINARY_LABELS, train, val, test)


# the four Hutto & Gilbert files and the `source` value each gives its snippets
VADER_SOURCES = (
    ("movie-review", MOVIE_FILE),
    ("product-review", "amazonReviewSnippets_GroundTruth.txt"),
    ("editorial", "nytEditorialSnippets_GroundTruth.txt"),
    ("tweet", "tweets_GroundTruth.txt"),
)
VADER_GROUPS = LabelGroups.from_json({
    "source": {"values": [name for name, _ in VADER_SOURCES], "none": None},
    "sentiment": ["negative", "none", "positive"],
}, "slimbench.data.VADER_GROUPS")


def vader_multilabel(directory: Path, seed: int = 0, threshold: float = 0.5) -> Splits:
    """A real multi-label dataset: every snippet of the four Hutto & Gilbert ground-truth files
    (movie reviews, Amazon product reviews, NYT editorials, tweets) with two human label groups:
    its `source` (the file; never none) and its `sentiment` from the mean rating of >= 20 human
    raters (>= threshold positive, <= -threshold negative, in between none: the snippet states no
    clear sentiment). A text in two files keeps its first occurrence. Split 74/11/15 %, stratified
    on the (source, sentiment) combination."""
    sources = {name: k for k, (name, _) in enumerate(VADER_SOURCES)}
    sentiment = {v: k for k, v in enumerate(VADER_GROUPS.groups[1].values)}
    examples: list[Example] = []
    seen: set[str] = set()
    for name, filename in VADER_SOURCES:
        for rating, text in read_ratings(directory / filename):
            if not text or text in seen:
                continue
            seen.add(text)
            mood = "positive" if rating >= threshold else "negative" if rating <= -threshold else "none"
            examples.append(Example(text, -1, (sources[name], sentiment[mood])))
    train, val, test = stratified_split(examples, val_frac=0.11, test_frac=0.15, seed=seed)
    return Splits(VADER_MULTILABEL, VADER_GROUPS.flat_names(), train, val, test, VADER_GROUPS)


def label_counts(part: Sequence[Example]) -> dict[int, int]:
    return dict(sorted(Counter(e.label for e in part).items()))


# --- user datasets -------------------------------------------------------------------------------

MIN_TEST_EXAMPLES = 100  # below this an accuracy's 95 % interval is wider than +-10 points


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


def _check_columns(path: Path, text_column: str, label_column: str) -> None:
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
        for lineno, line in enumerate(_lines(content), start=1):
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
    return _read_columns(Path(path), text_column, (label_column,))


def _read_columns(path: Path, text_column: str, label_columns: Sequence[str], lift: str | None = None) -> Table:
    """Rows holding the text column and the label columns (several: one per label group, `lift`ed
    from a JSON row's object of label groups; a row without a group is refused later, by line)."""
    for label_column in label_columns:
        _check_columns(path, text_column, label_column)
    _check_file(path)
    suffix = path.suffix.lower()
    if suffix not in (".jsonl", ".json", ".csv", ".tsv", ".txt"):
        raise DatasetError(f"{path}: unsupported extension {suffix!r}; use .csv, .tsv or .jsonl")
    content = _read_text(path)
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


# --- multi-label user datasets --------------------------------------------------------------------

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
    for line in _lines(_read_text(path)):
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
    table = _read_columns(path, text_column, names, LABELS_KEY)
    examples, groups = grouped_examples(table, text_column, names, config)
    where = {e.text: f"{path}:{line}" for e, line in zip(examples, table.lines, strict=True)}
    if test_path is None:
        train, val, test = stratified_split(examples, val_frac=0.10, test_frac=0.15, seed=seed)
    else:
        test_table = _read_columns(Path(test_path), text_column, groups.names, LABELS_KEY)
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


def single_label_only(splits: Splits, what: str) -> Splits:
    """`splits`, refused if it is multi-label and `what` (a measuring path) reads one label per text:
    its figures would be silently wrong."""
    if splits.groups is not None:
        raise DatasetError(f"{what} does not measure multi-label datasets yet ({splits.name!r} has label groups "
                           f"{', '.join(splits.groups.names)}); `slimbench build` builds their variants and "
                           "slimbench.load_predictor predicts with them (docs/multilabel.md)")
    return splits


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


DEFAULT_DATASET = "movie-snippets"


def load_dataset(source: str = DEFAULT_DATASET, text_column: str = "text", label_column: str = "label",
                 test_path: Path | None = None) -> Splits:
    """`movie-snippets` (default), `synthetic` (tiny, for tests), `vader-multilabel` (two label
    groups per snippet), or a CSV/TSV/JSONL path: with several label columns (`label_column`
    "budget,fuel"), a label config file (`label_column` "labels.json") or JSON Lines rows holding a
    "labels" object, a multi-label dataset."""
    _check_columns(Path(source), text_column, label_column)
    if source in (DEFAULT_DATASET, VADER_MULTILABEL):
        from slimbench.assets import sentiment_dir

        return movie_snippets(sentiment_dir()) if source == DEFAULT_DATASET else vader_multilabel(sentiment_dir())
    if source == "synthetic":
        return synthetic_splits()
    path = Path(source)
    if not path.exists():
        raise DatasetError(f"dataset {source!r} is neither 'movie-snippets', 'synthetic', {VADER_MULTILABEL!r} nor an "
                           "existing file")
    if test_path is not None and not Path(test_path).exists():
        raise DatasetError(f"test file {test_path} does not exist")
    request = label_request(label_column)
    if request is None and label_column == "label":
        names = json_label_groups(path)
        request = (names, None) if names else None
    if request is not None:
        return grouped_dataset(path, text_column, request[0], request[1], test_path)
    return table_dataset(path, text_column, label_column, test_path)


def synthetic_examples(n: int, seed: int = 0) -> list[Example]:
    """The synthetic task's sentences (`slimbench.synthetic`): filler words plus sentiment cues."""
    from slimbench.synthetic import synthetic_rows

    return [Example(text, label) for text, label in synthetic_rows(n, seed)]


def synthetic_splits(n: int = 600, seed: int = 0) -> Splits:
    train, val, test = stratified_split(synthetic_examples(n, seed), val_frac=0.15, test_frac=0.2, seed=seed)
    return Splits("synthetic", ("negative", "positive"), train, val, test)


def transfer_texts(source: str = DEFAULT_DATASET) -> list[str]:
    """Unlabelled texts for distillation: the other snippet files for the default dataset, else none."""
    if source != DEFAULT_DATASET:
        return []
    from slimbench.assets import sentiment_dir

    directory = sentiment_dir()
    return read_unlabelled_snippets(directory / f for f in TRANSFER_FILES)
