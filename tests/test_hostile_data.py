"""Hostile and unusual datasets: every valid file is read exactly, every invalid one is refused with
one line naming the file and the line -- never a traceback, never a silently different dataset."""

from __future__ import annotations

import csv
import io
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from slimbench.build.builder import BuildContext, build
from slimbench.data import (
    MIN_TEST_EXAMPLES,
    Splits,
    check_trainable,
    load_dataset,
    read_table,
    size_warnings,
    table_dataset,
)
from slimbench.errors import DatasetError
from slimbench.spec.zoo import Zoo
from slimbench.testing import synthetic_examples, tiny_zoo_specs, write_specs

REPO = Path(__file__).resolve().parents[1]
ODD = ["line\u2028separator", "next\u0085line", "form\x0cfeed", "vertical\x0btab", "para\u2029graph",
       "file\x1csep", "group\x1dsep", "record\x1esep"]


def texts_of(path: Path, **kw: str) -> list[str]:
    return [row["text"] for row in read_table(path, **kw).rows]


# --- valid input is read exactly -------------------------------------------------------------------

def test_jsonl_and_quoted_csv_keep_unicode_line_breaks_inside_texts(tmp_path):
    jl = tmp_path / "d.jsonl"
    jl.write_text("\n".join(json.dumps({"text": t, "label": k % 2}, ensure_ascii=False) for k, t in enumerate(ODD))
                  + "\n", encoding="utf-8")
    assert texts_of(jl) == ODD
    raw = tmp_path / "raw.jsonl"  # a raw form feed inside a JSON string (strict JSON escapes it): still a text
    raw.write_text('{"text": "a\x0cb", "label": 1}\r\n{"text": "c", "label": 0}\r\n')
    assert texts_of(raw) == ["a\x0cb", "c"]
    c = tmp_path / "d.csv"
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["text", "label"])
    writer.writerows([[t, k % 2] for k, t in enumerate([*ODD, "two\nlines", "a, comma", 'a "quote"'])])
    c.write_text(buf.getvalue(), encoding="utf-8")
    assert texts_of(c) == [*ODD, "two\nlines", "a, comma", 'a "quote"']


def test_a_row_over_128_kib_is_read(tmp_path):
    long = "word " * 60_000  # 300 KB in one field: csv's default limit is 128 KiB
    c = tmp_path / "big.csv"
    c.write_text(f'text,label\n"{long}",1\nshort,0\n')
    assert texts_of(c)[0] == long
    assert csv.field_size_limit() == 131072  # the limit is restored for everyone else


def test_json_array_file(tmp_path):
    f = tmp_path / "d.json"
    f.write_text(json.dumps([{"text": "a", "label": "x"}, {"text": "b", "label": "y"}]))
    assert texts_of(f) == ["a", "b"]


def test_crlf_bom_blank_lines_and_tsv(tmp_path):
    f = tmp_path / "d.csv"
    f.write_bytes("\ufefftext,label\r\n\r\ngood,1\r\n   \r\nbad,0\r\n".encode())
    table = read_table(f)
    assert [r["text"] for r in table.rows] == ["good", "bad"] and table.lines == (3, 5)
    t = tmp_path / "d.tsv"
    t.write_text("text\tlabel\na, b, c\t1\nd\t0\n")
    assert texts_of(t) == ["a, b, c", "d"]


# --- invalid input: one line naming the file and the line -------------------------------------------

@pytest.mark.parametrize("name, content, message", [
    ("d.csv", "text,label\ngreat, really great,1\nbad,0\n",
     r"d.csv:2: 3 fields, but the header has 2 \(\['text', 'label'\]\); a text that contains the separator ',' must "
     "be quoted"),
    ("d.csv", "text,label\ngood,1\nbad\n", r"d.csv:3: 1 fields, but the header has 2"),
    ("d.csv", 'text,label\n"good" movie,1\n', r"d.csv:2: malformed ','-separated row"),
    ("d.csv", "text,text\na,b\n", r"d.csv:1: the header names column\(s\) \['text'\] more than once"),
    ("d.tsv", "text\tlabel\na\tb\t1\n", r"d.tsv:2: 3 fields, but the header has 2"),
    ("d.jsonl", '{"text": "a", "label": 1}\n{"text": "b"}\n', r"d.jsonl:2: no 'label' key"),
    ("d.jsonl", '{"text": "a", "label": 1}\n[1, 2]\n', r"d.jsonl: line 2 is not a JSON object"),
    ("d.jsonl", '{"text": "a", "label": 1}\n' + "[" * 50_000 + "\n", r"d.jsonl:2: not valid JSON"),
    ("d.json", "[1, 2", r"d.json: not valid JSON"),
    ("d.parquet", "PAR1", r"unsupported extension '.parquet'"),
])
def test_malformed_rows_are_named(tmp_path, name, content, message):
    f = tmp_path / name
    f.write_text(content)
    with pytest.raises(DatasetError, match=message):
        table_dataset(f)


def test_text_column_equal_to_label_column(tmp_path):
    f = tmp_path / "d.csv"
    f.write_text("text,label\na,1\nb,0\n")
    with pytest.raises(DatasetError, match="the text column and the label column are both 'text'"):
        table_dataset(f, text_column="text", label_column="text")
    with pytest.raises(DatasetError, match="are both 'label'"):
        load_dataset("movie-snippets", text_column="label", label_column="label")  # refused before any download


def test_a_directory_as_the_dataset(tmp_path):
    with pytest.raises(DatasetError, match=f"dataset {tmp_path} is a directory; give a CSV, TSV or JSONL file"):
        load_dataset(str(tmp_path))
    f = tmp_path / "d.csv"
    f.write_text("text,label\na,1\nb,0\n")
    with pytest.raises(DatasetError, match="test file .*nope.csv does not exist"):
        load_dataset(str(f), test_path=tmp_path / "nope.csv")


@pytest.mark.parametrize("args, message", [
    (["--text-column", "x", "--label-column", "x"], "the text column and the label column are both 'x'"),
    (["--variants", ""], "--variants '' names no variant"),
    (["--variants", ",,"], "--variants ',,' names no variant"),
])
@pytest.mark.slow
def test_cli_refuses_with_one_line(tmp_path, args, message):
    proc = subprocess.run([sys.executable, "-m", "slimbench.cli", "build", "--dataset", str(tmp_path), *args,
                           "--cache", str(tmp_path / "cache")], capture_output=True, text=True, cwd=REPO,
                          timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1 and message in proc.stderr, proc.stderr


# --- fuzz: generated byte and row shapes -------------------------------------------------------------

def _csv_bytes(rows: list[list[str]], rng: random.Random) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator=rng.choice(["\n", "\r\n"])).writerows(rows)
    return buf.getvalue().encode("utf-8")


PIECES = ["good", "bad", ",", '"', "\n", "\r\n", "\r", "\t", "\u2028", "\u0085", "\x0c", "\x0b", "\u00e9", "\U0001f600",
          "\\", "{", "}", "[", "]", ":", "\x00", " ", "#", "'", "\ufeff"]


def _text(rng: random.Random) -> str:
    return "".join(rng.choice(PIECES) for _ in range(rng.randint(1, 8))).strip() or "x"


@pytest.mark.parametrize("seed", range(40))
def test_fuzzed_valid_files_round_trip(tmp_path, seed):
    """Files a correct writer produces (csv.writer, json.dumps) are read back text for text."""
    rng = random.Random(seed)
    rows = [[_text(rng), rng.choice(["pos", "neg"])] for _ in range(rng.randint(1, 30))]
    rows = [[t, lab] for t, lab in rows if t.strip()]
    kind = rng.choice(["csv", "jsonl", "tsv"])
    f = tmp_path / f"d.{kind}"
    if kind == "jsonl":
        f.write_text("\n".join(json.dumps({"text": t, "label": lab}, ensure_ascii=rng.random() < 0.5)
                               for t, lab in rows) + "\n", encoding="utf-8")
    else:
        buf = io.StringIO()
        csv.writer(buf, delimiter="," if kind == "csv" else "\t").writerows([["text", "label"], *rows])
        f.write_text(buf.getvalue(), encoding="utf-8")
    try:
        got = read_table(f)
    except DatasetError as err:
        # csv (by design) cannot carry a lone CR or NUL in an unquoted field; anything else must be read
        assert kind != "jsonl" and str(f) in str(err), err
        return
    assert [(r["text"], r["label"]) for r in got.rows] == [(t, lab) for t, lab in rows]


@pytest.mark.parametrize("seed", range(60))
def test_fuzzed_broken_files_fail_with_one_named_line(tmp_path, seed):
    """Random edits of a valid file (dropped/added bytes, split rows, random bytes): a dataset or a
    DatasetError naming the file, never another exception."""
    rng = random.Random(1000 + seed)
    kind = rng.choice(["csv", "jsonl", "tsv", "json"])
    rows = [[_text(rng), rng.choice(["1", "0"])] for _ in range(rng.randint(2, 12))]
    if kind in ("jsonl", "json"):
        data = "\n".join(json.dumps({"text": t, "label": lab}) for t, lab in rows).encode()
    else:
        data = _csv_bytes([["text", "label"], *rows], rng)
    data = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.choice(["flip", "cut", "insert", "junk", "truncate"])
        at = rng.randrange(max(1, len(data)))
        if op == "flip" and data:
            data[at] = rng.randrange(256)
        elif op == "cut":
            del data[at : at + rng.randint(1, 5)]
        elif op == "insert":
            data[at:at] = rng.choice([b",", b'"', b"\n", b"\t", b"{", b"\xff", b"\x00", b"\r", "\u2028".encode()])
        elif op == "junk":
            data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        else:
            del data[at:]
    f = tmp_path / f"d.{kind}"
    f.write_bytes(bytes(data))
    try:
        splits = table_dataset(f)
    except DatasetError as err:
        assert str(f) in str(err) and "\n" not in str(err), err
        return
    assert splits.num_labels >= 2 and all(e.text.strip() for e in splits.train + splits.val + splits.test)


# --- recipes that need more rows than there are; test splits too small to mean anything ------------

def _tiny_dataset(tmp_path: Path, n: int) -> Path:
    f = tmp_path / "few.csv"
    f.write_text("text,label\n" + "\n".join(f"{e.text},{e.label}" for e in synthetic_examples(n, seed=5)) + "\n")
    return f


def test_training_on_too_few_rows_is_refused(tmp_path, tiny_base):
    data = _tiny_dataset(tmp_path, 8)
    splits = table_dataset(data)
    ctx = BuildContext(zoo=Zoo.load(write_specs(tmp_path / "models", tiny_zoo_specs(tiny_base))),
                       root=tmp_path / "artifacts", splits_loader=lambda: splits, threads=1, log=lambda s: None)
    with pytest.raises(DatasetError, match=rf"standard \(fine-tuning\): the training split of 'few' has "
                                           rf"{len(splits.train)} rows, but the recipe needs at least 16"):
        build(ctx, ["standard"])
    assert not any((tmp_path / "artifacts").glob("standard-*"))


def test_check_trainable_names_what_is_missing():
    ex = synthetic_examples(200, seed=1)
    ok = Splits("s", ("negative", "positive"), tuple(ex[:150]), tuple(ex[150:170]), tuple(ex[170:]))
    check_trainable(ok, 32, "v")
    with pytest.raises(DatasetError, match="has 150 rows, but the recipe needs at least 256"):
        check_trainable(ok, 256, "v")
    one_class = Splits("s", ok.labels, tuple(e for e in ex if e.label == 1), ok.val, ok.test)
    with pytest.raises(DatasetError, match=r"class\(es\) \['negative'\] of 's' have no training rows"):
        check_trainable(one_class, 8, "v")
    with pytest.raises(DatasetError, match="validation split of 's' is empty"):
        check_trainable(Splits("s", ok.labels, ok.train, (), ok.test), 8, "v")


def test_small_test_split_warns(tmp_path):
    ex = synthetic_examples(60, seed=2)
    small = Splits("s", ("negative", "positive"), tuple(ex[:40]), tuple(ex[40:50]), tuple(ex[50:]))
    (warning,) = size_warnings(small)
    assert "test split of 's' has only 10 examples" in warning and "+-31 points" in warning
    big = synthetic_examples(MIN_TEST_EXAMPLES, seed=3)
    assert size_warnings(Splits("s", small.labels, small.train, small.val, tuple(big))) == []


# --- issue 45: a label that is a list, test sentences that are training sentences, contradictions ----

@pytest.mark.parametrize("name, content, message", [
    ("d.jsonl", '{"text": "a", "label": "pos"}\n{"text": "b", "label": ["positive"]}\n',
     r"d.jsonl:2: 'label' is a JSON list \(\[\"positive\"\]\), not one label"),
    ("d.jsonl", '{"text": "a", "label": "pos"}\n{"text": "b", "label": {"name": "neg"}}\n',
     r"d.jsonl:2: 'label' is a JSON object"),
    ("d.jsonl", '{"text": ["a", "b"], "label": "pos"}\n', r"d.jsonl:1: 'text' is a JSON list"),
    ("d.json", '[{"text": "a", "label": "pos"}, {"text": "b", "label": [1]}]', r"d.json:2: 'label' is a JSON list"),
])
def test_a_label_or_text_that_is_a_json_list_or_object_is_refused(tmp_path, name, content, message):
    """A JSONL label ["positive"] became a class named '["positive"]' (issue 45)."""
    f = tmp_path / name
    f.write_text(content)
    with pytest.raises(DatasetError, match=message):
        table_dataset(f)


def test_other_keys_may_hold_lists(tmp_path):
    f = tmp_path / "d.jsonl"
    f.write_text("".join(json.dumps({"text": f"t{k}", "label": k % 2, "tags": ["x"]}) + "\n" for k in range(20)))
    assert table_dataset(f).num_labels == 2


def _csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    buf = io.StringIO()
    csv.writer(buf).writerows([("text", "label"), *rows])
    path.write_text(buf.getvalue())
    return path


def test_a_test_file_made_of_training_sentences_is_warned_about_with_counts(tmp_path):
    rows = [(e.text, str(e.label)) for e in synthetic_examples(300, seed=4)]
    train = _csv(tmp_path / "train.csv", rows)
    test = _csv(tmp_path / "test.csv", rows[:120] + [(f"a sentence of its own {k}", "1") for k in range(30)])
    splits = table_dataset(train, test_path=test)
    (warning,) = size_warnings(splits)
    assert "120 of the 150 test sentences also occur in the training or validation split" in warning
    assert not any("also occur" in w for w in size_warnings(table_dataset(train)))  # split on its own: disjoint


def test_contradictory_duplicate_texts_are_warned_about_with_counts(tmp_path):
    rows = [(e.text, str(e.label)) for e in synthetic_examples(300, seed=5)]
    rows += [(text, str(1 - int(label))) for text, label in rows[:7]]  # 7 texts twice, with the other label
    warnings = size_warnings(table_dataset(_csv(tmp_path / "d.csv", rows)))
    assert any("7 texts occur with different labels (14 rows)" in w for w in warnings), warnings
