from __future__ import annotations

import json

import pytest

from slimbench.data import (
    Example,
    label_counts,
    read_rated_snippets,
    stratified_split,
    table_dataset,
)
from slimbench.errors import DatasetError
from slimbench.testing import synthetic_examples


def test_rated_snippets_threshold_crlf_and_duplicates(tmp_path):
    f = tmp_path / "gt.txt"
    f.write_bytes(b"1\t2.5\tA fine film.\r\n2\t-0.4\tMeh.\r\n3\t-1.0\tDull.\r\n4\t0.5\tA fine film.\r\n5\t-0.5\tBad")
    ex = read_rated_snippets(f)
    assert ex == [Example("A fine film.", 1), Example("Dull.", 0), Example("Bad", 0)]


@pytest.mark.parametrize("content, message", [
    (b"1\t2.5\n", r"gt.txt:1: expected 'id<TAB>rating<TAB>text'"),
    (b"1\tgood\tNice\n", r"gt.txt:1: rating 'good' is not a number"),
    (b"1\t1.0\tNice\n2\t1.0\tCaf\xe9\n", r"gt.txt: line 2 is not valid UTF-8 \(byte 0xe9"),
    (b"  \n", "is empty"),
])
def test_rated_snippets_malformed_rows_are_named(tmp_path, content, message):
    f = tmp_path / "gt.txt"
    f.write_bytes(content)
    with pytest.raises(DatasetError, match=message):
        read_rated_snippets(f)


def test_split_is_deterministic_stratified_and_disjoint():
    examples = synthetic_examples(1000, seed=3)
    a = stratified_split(examples, 0.1, 0.2, seed=0)
    b = stratified_split(list(reversed(examples)), 0.1, 0.2, seed=0)
    assert a == b  # independent of input order (hash-based, not set or list order)
    train, val, test = a
    assert len(train) + len(val) + len(test) == 1000
    assert not ({e.text for e in train} & {e.text for e in test}) and not ({e.text for e in val} & {e.text for e in test})
    overall = label_counts(examples)
    for part, frac in ((test, 0.2), (val, 0.1)):
        for label, n in label_counts(part).items():
            assert abs(n - frac * overall[label]) <= 1  # stratified: each class in proportion
    assert stratified_split(examples, 0.1, 0.2, seed=1) != a  # the seed matters


def test_table_dataset_csv_jsonl_multiclass(tmp_path):
    rows = [{"review": f"text number {i}", "stars": ["low", "mid", "high"][i % 3]} for i in range(60)]
    jl = tmp_path / "d.jsonl"
    jl.write_text("\n".join(json.dumps(r) for r in rows))
    splits = table_dataset(jl, text_column="review", label_column="stars")
    assert splits.labels == ("high", "low", "mid") and splits.num_labels == 3
    assert len(splits.train) + len(splits.val) + len(splits.test) == 60
    csv = tmp_path / "d.csv"
    csv.write_text("text,label\n" + "\n".join(f"t{i},{i % 2}" for i in range(20)))
    test = tmp_path / "t.csv"
    test.write_text("text,label\nx,1\ny,0\n")
    s2 = table_dataset(csv, test_path=test)
    assert s2.labels == ("0", "1") and [e.label for e in s2.test] == [1, 0]
    assert len(s2.train) + len(s2.val) == 20


@pytest.mark.parametrize("content, kwargs, message", [
    ("text,label\na,1\n", {"label_column": "y"}, r"column 'y' not found; columns are \['label', 'text'\]"),
    ("text,label\na,1\n,0\n", {}, "row 3 has an empty 'text'"),
    ("text,label\na,1\nb,1\n", {}, "only one class"),
    ("text,label\n", {}, "no data rows"),
])
def test_table_dataset_errors(tmp_path, content, kwargs, message):
    f = tmp_path / "d.csv"
    f.write_text(content)
    with pytest.raises(DatasetError, match=message):
        table_dataset(f, **kwargs)


def test_unknown_test_labels_are_named(tmp_path):
    f = tmp_path / "d.csv"
    f.write_text("text,label\n" + "\n".join(f"t{i},{'ab'[i % 2]}" for i in range(10)))
    t = tmp_path / "t.csv"
    t.write_text("text,label\nx,c\n")
    with pytest.raises(DatasetError, match=r"t.csv: labels \['c'\] do not occur in the training data"):
        table_dataset(f, test_path=t)
