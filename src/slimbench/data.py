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
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from slimbench.errors import DatasetError

MOVIE_FILE = "movieReviewSnippets_GroundTruth.txt"
TRANSFER_FILES = (
    "amazonReviewSnippets_GroundTruth.txt",
    "nytEditorialSnippets_GroundTruth.txt",
    "tweets_GroundTruth.txt",
)
BINARY_LABELS = ("negative", "positive")


@dataclass(frozen=True)
class Example:
    text: str
    label: int


@dataclass(frozen=True)
class Splits:
    """A labelled dataset split three ways; `test` is never used for training or selection."""

    name: str
    labels: tuple[str, ...]
    train: tuple[Example, ...]
    val: tuple[Example, ...]
    test: tuple[Example, ...]

    @property
    def num_labels(self) -> int:
        return len(self.labels)

    def fingerprint(self) -> str:
        """sha256 over every (split, label, text): changes iff the data or the split changes."""
        h = hashlib.sha256()
        h.update(json.dumps(self.labels).encode())
        for split_name, part in (("train", self.train), ("val", self.val), ("test", self.test)):
            for ex in part:
                h.update(f"{split_name}\t{ex.label}\t{ex.text}\n".encode())
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
        text = parts[2].strip()
        if abs(rating) < threshold or not text or text in seen:
            continue
        seen.add(text)
        out.append(Example(text=text, label=int(rating > 0)))
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
    """Split per class by hash order: the first ceil(test_frac*n) go to test, then val, rest train."""
    if not 0 <= val_frac < 1 or not 0 <= test_frac < 1 or val_frac + test_frac >= 1:
        raise DatasetError(f"invalid split fractions val={val_frac} test={test_frac}")
    by_label: dict[int, list[Example]] = {}
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


def movie_snippets(directory: Path, seed: int = 0) -> Splits:
    """The default dataset: 10,070 Rotten Tomatoes snippets with |mean human rating| >= 0.5."""
    examples = read_rated_snippets(directory / MOVIE_FILE)
    train, val, test = stratified_split(examples, val_frac=0.10, test_frac=0.11, seed=seed)
    return Splits("movie-snippets", BINARY_LABELS, train, val, test)


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


def _read_json_rows(path: Path, content: str, columns: Sequence[str] = ()) -> tuple[list[dict[str, str]], list[int]]:
    """JSON Lines (one object per line), or a JSON array of objects in a .json file. The `columns`
    (text and label) must each hold one value: a list or an object there would become a text or a
    class named by its JSON (a label ["positive"] a class '["positive"]')."""
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
        for col in columns:
            value = obj.get(col)
            if isinstance(value, (dict, list)):
                kind, shown = "list" if isinstance(value, list) else "object", json.dumps(value)
                raise DatasetError(f"{path}:{k}: {col!r} is a JSON {kind} ({shown[:60]}), not one "
                                   f"{'label' if col == columns[-1] else 'text'}; give each row a single string "
                                   "or number there")
        rows.append({str(key): _json_value(v) for key, v in obj.items()})
        lines.append(k)
    if not rows:
        raise DatasetError(f"{path} has no data rows")
    return rows, lines


def read_table(path: Path, text_column: str = "text", label_column: str = "label") -> Table:
    """Rows of a CSV, TSV or JSONL file, each holding the text and label columns."""
    path = Path(path)
    _check_columns(path, text_column, label_column)
    _check_file(path)
    suffix = path.suffix.lower()
    if suffix not in (".jsonl", ".json", ".csv", ".tsv", ".txt"):
        raise DatasetError(f"{path}: unsupported extension {suffix!r}; use .csv, .tsv or .jsonl")
    content = _read_text(path)
    if suffix in (".jsonl", ".json"):
        rows, lines = _read_json_rows(path, content, (text_column, label_column))
        for row, line in zip(rows, lines, strict=True):
            for col in (text_column, label_column):
                if col not in row:
                    raise DatasetError(f"{path}:{line}: no {col!r} key; keys are {sorted(row)} "
                                       "(choose with --text-column / --label-column)")
    else:
        rows, lines = _read_delimited(path, content, "\t" if suffix in (".tsv", ".txt") else ",")
        for col in (text_column, label_column):
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
    labels: dict[str, set[int]] = {}
    rows: Counter[str] = Counter()
    for e in (*splits.train, *splits.val, *splits.test):
        labels.setdefault(e.text, set()).add(e.label)
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
    missing = [splits.labels[k] for k in range(splits.num_labels) if k not in label_counts(splits.train)]
    if missing:
        raise DatasetError(f"{what}: class(es) {missing} of {splits.name!r} have no training rows; every class "
                           "needs examples to learn from")
    if not splits.val:
        raise DatasetError(f"{what}: the validation split of {splits.name!r} is empty; the recipe chooses its "
                           "epoch on it -- give a larger dataset")


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
    """`movie-snippets` (default), `synthetic` (tiny, for tests), or a CSV/TSV/JSONL path."""
    _check_columns(Path(source), text_column, label_column)
    if source == DEFAULT_DATASET:
        from slimbench.assets import sentiment_dir

        return movie_snippets(sentiment_dir())
    if source == "synthetic":
        return synthetic_splits()
    path = Path(source)
    if not path.exists():
        raise DatasetError(f"dataset {source!r} is neither 'movie-snippets', 'synthetic' nor an existing file")
    if test_path is not None and not Path(test_path).exists():
        raise DatasetError(f"test file {test_path} does not exist")
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
