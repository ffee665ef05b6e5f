"""Datasets: the default movie-review snippets, user CSV/TSV/JSONL files, deterministic splits.

A split is a pure function of the texts, labels and a seed: each example's place is decided by the
sha256 of `seed + text` within its class, so it is identical across runs, machines and Python hash
seeds, and stratified by construction.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
from collections import Counter
from collections.abc import Iterable, Sequence
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


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise DatasetError(f"dataset file {path} does not exist")
    raw = path.read_bytes()
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


def read_rated_snippets(path: Path, threshold: float = 0.5) -> list[Example]:
    """Hutto & Gilbert ground truth (`id<TAB>mean rating<TAB>text`): |rating| >= threshold, binary.

    Ratings are the mean of >= 20 human raters on -4..+4; near-neutral sentences are dropped.
    Duplicate texts keep their first occurrence so no sentence can sit in two splits.
    """
    out: list[Example] = []
    seen: set[str] = set()
    for lineno, line in enumerate(_read_text(path).splitlines(), start=1):
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
        for line in _read_text(path).splitlines():
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

def read_table(path: Path, text_column: str = "text", label_column: str = "label") -> list[dict[str, str]]:
    """Rows of a CSV, TSV or JSONL file as dicts holding at least the text and label columns."""
    content = _read_text(path)
    suffix = path.suffix.lower()
    rows: list[dict[str, str]] = []
    if suffix in (".jsonl", ".json"):
        for lineno, line in enumerate(content.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                raise DatasetError(f"{path}:{lineno}: not valid JSON ({err.msg})") from None
            if not isinstance(obj, dict):
                raise DatasetError(f"{path}:{lineno}: expected a JSON object per line")
            rows.append({k: "" if v is None else str(v) for k, v in obj.items()})
    elif suffix in (".csv", ".tsv", ".txt"):
        delimiter = "\t" if suffix in (".tsv", ".txt") else ","
        reader = csv.DictReader(content.splitlines(), delimiter=delimiter)
        rows = [dict(r) for r in reader]
    else:
        raise DatasetError(f"{path}: unsupported extension {suffix!r}; use .csv, .tsv or .jsonl")
    if not rows:
        raise DatasetError(f"{path} has no data rows")
    for col in (text_column, label_column):
        if col not in rows[0]:
            raise DatasetError(
                f"{path}: column {col!r} not found; columns are {sorted(rows[0])} "
                f"(choose with --text-column / --label-column)"
            )
    return rows


def examples_from_rows(
    rows: Sequence[dict[str, str]], path: Path, text_column: str, label_column: str,
    labels: Sequence[str] | None = None,
) -> tuple[list[Example], tuple[str, ...]]:
    """Turn table rows into examples; label names are sorted unless given (for a test file)."""
    pairs: list[tuple[str, str]] = []
    for i, row in enumerate(rows, start=2):
        text = (row.get(text_column) or "").strip()
        label = (row.get(label_column) or "").strip()
        if not text:
            raise DatasetError(f"{path}: row {i} has an empty {text_column!r}")
        if not label:
            raise DatasetError(f"{path}: row {i} has an empty {label_column!r}")
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
    examples, labels = examples_from_rows(read_table(path, text_column, label_column), path,
                                          text_column, label_column)
    if test_path is None:
        train, val, test = stratified_split(examples, val_frac=0.10, test_frac=0.15, seed=seed)
    else:
        test_examples, _ = examples_from_rows(read_table(test_path, text_column, label_column), test_path,
                                              text_column, label_column, labels)
        train, val, _ = stratified_split(examples, val_frac=0.10, test_frac=0.0, seed=seed)
        test = tuple(test_examples)
    return Splits(path.stem, labels, train, val, test)


DEFAULT_DATASET = "movie-snippets"


def load_dataset(source: str = DEFAULT_DATASET, text_column: str = "text", label_column: str = "label",
                 test_path: Path | None = None) -> Splits:
    """`movie-snippets` (default), `synthetic` (tiny, for tests), or a CSV/TSV/JSONL path."""
    if source == DEFAULT_DATASET:
        from slimbench.assets import sentiment_dir

        return movie_snippets(sentiment_dir())
    if source == "synthetic":
        from slimbench.testing import synthetic_splits

        return synthetic_splits()
    path = Path(source)
    if not path.exists():
        raise DatasetError(f"dataset {source!r} is neither 'movie-snippets', 'synthetic' nor an existing file")
    return table_dataset(path, text_column, label_column, test_path)


def transfer_texts(source: str = DEFAULT_DATASET) -> list[str]:
    """Unlabelled texts for distillation: the other snippet files for the default dataset, else none."""
    if source != DEFAULT_DATASET:
        return []
    from slimbench.assets import sentiment_dir

    directory = sentiment_dir()
    return read_unlabelled_snippets(directory / f for f in TRANSFER_FILES)
