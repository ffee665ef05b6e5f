"""The built-in datasets from the pinned VADER ground-truth files (Hutto & Gilbert, ICWSM 2014):
`movie-snippets` (binary sentiment of Rotten Tomatoes snippets), `vader-multilabel` (every snippet of
the four files with two label groups: its source and its sentiment), and the other files' texts as
unlabelled distillation transfer data."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from slimbench.data.files import read_text, text_lines
from slimbench.data.splits import Example, Splits, stratified_split
from slimbench.errors import DatasetError
from slimbench.labels import LabelGroups

MOVIE_FILE = "movieReviewSnippets_GroundTruth.txt"


TRANSFER_FILES = (
    "amazonReviewSnippets_GroundTruth.txt",
    "nytEditorialSnippets_GroundTruth.txt",
    "tweets_GroundTruth.txt",
)


BINARY_LABELS = ("negative", "positive")
VADER_MULTILABEL = "vader-multilabel"


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
    for lineno, line in enumerate(text_lines(read_text(path)), start=1):
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
        for line in text_lines(read_text(path)):
            parts = line.split("\t", 2)
            if len(parts) == 3 and parts[2].strip():
                texts.append(parts[2].strip())
    return texts


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
