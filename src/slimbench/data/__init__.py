"""Datasets: the default movie-review snippets, the multi-label `vader-multilabel`, user CSV/TSV/JSONL
files (one label column or several label groups), deterministic splits.

`load_dataset` is the one entry; the modules: `splits` (Example, Splits, the split), `vader` (the
built-in datasets), `tables` (a user's file with one label column), `multilabel` (several label
groups), `checks` (trainable? warnings), `files` (reading a file strictly).
"""

from __future__ import annotations

from pathlib import Path

from slimbench.data.checks import MIN_TEST_EXAMPLES as MIN_TEST_EXAMPLES
from slimbench.data.checks import check_trainable as check_trainable
from slimbench.data.checks import data_warnings as data_warnings
from slimbench.data.checks import size_warnings as size_warnings
from slimbench.data.multilabel import check_values_trained as check_values_trained
from slimbench.data.multilabel import grouped_dataset, json_label_groups, label_request
from slimbench.data.splits import Example as Example
from slimbench.data.splits import Splits, synthetic_splits
from slimbench.data.splits import label_counts as label_counts
from slimbench.data.splits import stratified_split as stratified_split
from slimbench.data.splits import synthetic_examples as synthetic_examples
from slimbench.data.tables import check_columns, table_dataset
from slimbench.data.tables import read_table as read_table
from slimbench.data.vader import TRANSFER_FILES, movie_snippets, read_unlabelled_snippets, vader_multilabel
from slimbench.data.vader import VADER_GROUPS as VADER_GROUPS
from slimbench.data.vader import VADER_MULTILABEL as VADER_MULTILABEL
from slimbench.data.vader import read_rated_snippets as read_rated_snippets
from slimbench.errors import DatasetError

DEFAULT_DATASET = "movie-snippets"
BUILT_IN_DATASETS = (DEFAULT_DATASET, "synthetic", VADER_MULTILABEL)


def load_dataset(source: str = DEFAULT_DATASET, text_column: str = "text", label_column: str = "label",
                 test_path: Path | None = None) -> Splits:
    """`movie-snippets` (default), `synthetic` (tiny, for tests), `vader-multilabel` (two label
    groups per snippet), or a CSV/TSV/JSONL path: with several label columns (`label_column`
    "budget,fuel"), a label config file (`label_column` "labels.json") or JSON Lines rows holding a
    "labels" object, a multi-label dataset."""
    check_columns(Path(source), text_column, label_column)
    if source in (DEFAULT_DATASET, VADER_MULTILABEL):
        from slimbench.cache.assets import sentiment_dir

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


def transfer_texts(source: str = DEFAULT_DATASET) -> list[str]:
    """Unlabelled texts for distillation: the other snippet files for the default dataset, else none."""
    if source != DEFAULT_DATASET:
        return []
    from slimbench.cache.assets import sentiment_dir

    directory = sentiment_dir()
    return read_unlabelled_snippets(directory / f for f in TRANSFER_FILES)
