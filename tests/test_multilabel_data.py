"""Multi-label data: the label table, the three ways to give one (columns, JSONL "labels", a label
config), the per-group errors, the split, the vader-multilabel dataset and the figures."""

from __future__ import annotations

import json

import numpy as np
import pytest

from slimbench.data import (
    VADER_GROUPS,
    Example,
    check_trainable,
    load_dataset,
    stratified_split,
    vader_multilabel,
)
from slimbench.errors import ArtifactError, DatasetError
from slimbench.labels import LabelGroup, LabelGroups, read_label_config
from slimbench.stats import exact_match, group_accuracies, group_macro_f1s, implicit_micro_f1
from slimbench.testing import vader_dir, write_multilabel_files

GROUPS = LabelGroups((LabelGroup("budget", ("economy", "none", "premium"), "none"),
                      LabelGroup("body", ("sedan", "suv"), None, 2.0)))


def test_the_label_table_has_offsets_slices_names_and_round_trips_json():
    assert GROUPS.sizes == (3, 2) and GROUPS.offsets == (0, 3) and GROUPS.width == 5
    assert GROUPS.slices() == [slice(0, 3), slice(3, 5)]
    assert GROUPS.flat_names() == ("budget=economy", "budget=none", "budget=premium", "body=sedan", "body=suv")
    assert GROUPS.none_indices() == (1, None) and GROUPS.weights == (1.0, 2.0)
    again = LabelGroups.from_json(json.loads(json.dumps(GROUPS.to_json())), "here")
    assert again == GROUPS and again.fingerprint() == GROUPS.fingerprint()
    other = LabelGroups((GROUPS.groups[0], LabelGroup("body", ("suv", "sedan"), None, 2.0)))
    assert other.fingerprint() != GROUPS.fingerprint()  # value order is logit order: part of the identity


def test_decoding_is_per_group_slice():
    logits = np.array([[0.0, 5.0, 1.0, 3.0, -1.0],   # budget none, body sedan
                       [9.0, 0.0, 1.0, 0.0, 0.5]])   # budget economy, body suv
    assert GROUPS.decode(logits).tolist() == [[1, 0], [0, 1]]
    proba = GROUPS.proba(logits)
    assert np.allclose(proba[:, :3].sum(1), 1) and np.allclose(proba[:, 3:].sum(1), 1)
    assert GROUPS.named([1, 0]) == {"body": "sedan"}  # none left out
    assert GROUPS.named([1, 0], include_none=True) == {"budget": "none", "body": "sedan"}
    named = GROUPS.named_proba(proba[1])
    assert list(named) == ["budget", "body"] and list(named["body"]) == ["sedan", "suv"]
    assert named["budget"]["economy"] == pytest.approx(float(proba[1, 0]))
    with pytest.raises(ValueError, match="do not fit label groups of 5 outputs"):
        GROUPS.decode(np.zeros((1, 4)))


@pytest.mark.parametrize("config, message", [
    ([], "a JSON object of label groups"),
    ({"budget": ["economy"]}, r"'budget' has 1 value\(s\)"),
    ({"budget": ["a", "a"]}, "lists a value twice"),
    ({"budget": {"values": ["a", "b"], "none": "c"}}, "its none value 'c' is not one of"),
    ({"budget": {"values": ["a", "b"], "weight": 0}}, "weight 0 must be a number > 0"),
    ({"budget": "economy"}, "must be a list of values"),
    ({"budget": ["a", ""]}, "non-empty strings"),
])
def test_a_bad_label_config_is_named(tmp_path, config, message):
    path = tmp_path / "labels.json"
    path.write_text(json.dumps(config))
    with pytest.raises(DatasetError, match=message):
        read_label_config(path)
    with pytest.raises(ArtifactError, match=message):  # the same table read back from a manifest
        LabelGroups.from_json(config, "manifest", ArtifactError)


def test_a_label_config_in_either_shape(tmp_path):
    path = tmp_path / "labels.json"
    path.write_text(json.dumps({"budget": ["economy", "none", "premium"],
                                "body": {"values": ["sedan", "suv"], "none": None, "weight": 2}}))
    assert read_label_config(path) == GROUPS
    path.write_text(json.dumps(GROUPS.to_json()))
    assert read_label_config(path) == GROUPS


@pytest.mark.parametrize("kind", ["csv", "jsonl", "config"])
def test_the_three_ways_to_give_a_multilabel_dataset_agree(tmp_path, kind):
    files = write_multilabel_files(tmp_path, n=300)
    if kind == "csv":
        splits = load_dataset(str(files["csv"]), label_column="sentiment,topic")
    elif kind == "jsonl":
        splits = load_dataset(str(files["jsonl"]))  # its "labels" objects name the groups
    else:
        splits = load_dataset(str(files["jsonl"]), label_column=str(files["config"]))
    assert splits.groups is not None and splits.groups.names == ("sentiment", "topic")
    assert splits.groups.groups[0].values == ("negative", "none", "positive")
    assert splits.groups.groups[1].none == "none"
    assert splits.num_labels == 7 and splits.labels[0] == "sentiment=negative"
    assert len(splits.train) + len(splits.val) + len(splits.test) == 300
    assert all(e.label == -1 and len(e.groups) == 2 for e in splits.train)
    check_trainable(splits, 16, "test")
    texts = [{e.text for e in part} for part in (splits.train, splits.val, splits.test)]
    assert not (texts[0] & texts[1] or texts[0] & texts[2] or texts[1] & texts[2])
    if kind == "csv":
        by_csv = splits
        jsonl = load_dataset(str(files["jsonl"]))
        assert jsonl.groups is not None and jsonl.groups.to_json() == by_csv.groups.to_json()
        # the same rows and split, another file: only the name differs
        assert [e.groups for e in jsonl.test] == [e.groups for e in by_csv.test]


def test_the_label_config_orders_the_values_and_names_none(tmp_path):
    files = write_multilabel_files(tmp_path, n=200)
    files["config"].write_text(json.dumps({"topic": {"values": ["none", "script", "music", "cast"], "none": "none"},
                                           "sentiment": ["positive", "negative", "none"]}))
    splits = load_dataset(str(files["csv"]), label_column=str(files["config"]))
    assert splits.groups is not None and splits.groups.names == ("topic", "sentiment")
    assert splits.labels[:4] == ("topic=none", "topic=script", "topic=music", "topic=cast")


def test_multilabel_fingerprints_follow_values_and_table(tmp_path):
    files = write_multilabel_files(tmp_path, n=200)
    a = load_dataset(str(files["csv"]), label_column="sentiment,topic")
    b = load_dataset(str(files["csv"]), label_column="topic,sentiment")
    assert a.fingerprint() == load_dataset(str(files["csv"]), label_column="sentiment,topic").fingerprint()
    assert a.fingerprint() != b.fingerprint()


def _write(path, text):
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("name, content, label_column, message", [
    ("a.jsonl", '{"text": "one", "labels": {"fuel": "gas", "body": "suv"}}\n{"text": "two", "labels": {"fuel": "ev"}}\n',
     "label", r"a.jsonl:2: no value for label group 'body'"),
    ("b.csv", "text,fuel,body\none,gas,suv\ntwo,,sedan\n", "fuel,body", r"b.csv:3: label group 'fuel' is empty"),
    ("c.csv", "text,fuel,body\none,none,suv\ntwo,none,sedan\n", "fuel,body", r"c.csv: label group 'fuel' has only 'none'"),
    ("d.csv", "text,fuel,body\none,gas,suv\ntwo,gas,sedan\n", "fuel,body",
     r"d.csv: label group 'fuel' has only one value \('gas'\)"),
    ("e.csv", "text,fuel\none,gas\n", "fuel,body", r"e.csv: column 'body' not found"),
    ("f.csv", "text,fuel\none,gas\n", "fuel,,body", "names an empty column"),
    ("g.csv", "text,fuel\none,gas\n", "fuel,fuel", r"names \['fuel'\] more than once"),
    ("h.jsonl", '{"text": "one", "labels": {"fuel": ["gas"], "body": "suv"}}\n', "label",
     r"h.jsonl:1: 'fuel' is a JSON list"),
    ("i.jsonl", '{"text": "one", "id": 1, "labels": {"fuel": "gas", "id": "x"}}\n', "label",
     r"i.jsonl:1: label group\(s\) \['id'\] under 'labels' clash with the row's own keys"),
    ("j.jsonl", '{"text": "one", "labels": {"fuel": "gas"}}\n{"text": "two", "labels": "ev"}\n', "label",
     r"j.jsonl:2: 'labels' is \"ev\", not an object of label groups"),
    ("k.csv", "text,fuel,body\n,gas,suv\n", "fuel,body", r"k.csv: row 2 has an empty 'text'"),
])
def test_bad_multilabel_input_gets_one_clear_line(tmp_path, name, content, label_column, message):
    with pytest.raises(DatasetError, match=message) as err:
        load_dataset(_write(tmp_path / name, content), label_column=label_column)
    assert "\n" not in str(err.value)


def test_a_value_outside_the_label_config_is_named_by_line(tmp_path):
    files = write_multilabel_files(tmp_path, n=100)
    files["config"].write_text(json.dumps({"sentiment": ["negative", "positive"], "topic": ["music", "cast", "script",
                                                                                            "none"]}))
    with pytest.raises(DatasetError, match=r"queries.jsonl:\d+: label group 'sentiment' has value 'none', which the "
                                           r"label config does not have"):
        load_dataset(str(files["jsonl"]), label_column=str(files["config"]))


def test_a_test_file_value_unseen_in_training_is_named(tmp_path):
    train = tmp_path / "train.csv"
    rows = [f"text number {i},{'gas' if i % 2 else 'ev'},{'suv' if i % 3 else 'sedan'}" for i in range(40)]
    train.write_text("text,fuel,body\n" + "\n".join(rows) + "\n")
    test = _write(tmp_path / "test.csv", "text,fuel,body\nanother one,gas,suv\nand this,diesel,suv\n")
    with pytest.raises(DatasetError, match=r"test.csv:3: label group 'fuel' has value 'diesel', which the training "
                                           r"data does not have \['ev', 'gas'\]"):
        load_dataset(str(train), label_column="fuel,body", test_path=test)
    # with a label config that lists it, the value is known but still has no training row
    config = _write(tmp_path / "labels.json", json.dumps({"fuel": ["diesel", "ev", "gas"], "body": ["sedan", "suv"]}))
    with pytest.raises(DatasetError, match=r"test.csv:3: label group 'fuel' has value 'diesel', which no row of the "
                                           r"training split has \(this row is in the test split\)"):
        load_dataset(str(train), label_column=config, test_path=test)


def test_the_split_is_stratified_on_the_combination_and_pools_rare_ones():
    common = [Example(f"c{i}", -1, (i % 2, 0)) for i in range(200)]
    rare = [Example(f"r{i}", -1, (i % 3, 1 + i % 4)) for i in range(12)]  # 12 combinations of 1 row each
    train, val, test = stratified_split(common + rare, 0.1, 0.2, seed=0)
    for combo in ((0, 0), (1, 0)):
        assert sum(e.groups == combo for e in test) == 20  # ceil(0.2 * 100) of each common combination
    assert sum(e.text.startswith("r") for e in test) == 3  # ceil(0.2 * 12): the rare rows split as one pool
    assert stratified_split(common + rare, 0.1, 0.2, seed=0) == (train, val, test)


def test_check_trainable_names_a_group_with_one_value_in_training(tmp_path):
    files = write_multilabel_files(tmp_path, n=200)
    splits = load_dataset(str(files["csv"]), label_column="sentiment,topic")
    from dataclasses import replace

    one = replace(splits, train=tuple(e for e in splits.train if e.groups[1] == 0))
    with pytest.raises(DatasetError, match=r"label group 'topic' of 'queries' has only 'cast' in the training split"):
        check_trainable(one, 8, "standard (fine-tuning)")


def test_multilabel_figures_on_known_truth():
    gold = [(0, 1), (1, 1), (2, 0), (1, 0)]
    pred = [(0, 1), (1, 0), (2, 0), (0, 0)]
    assert exact_match(pred, gold) == 0.5
    assert group_accuracies(pred, gold) == [0.75, 0.75]
    # group 0 values 0,1,2: F1 0: tp1 fp1 fn0 -> 2/3; 1: tp1 fp0 fn1 -> 2/3; 2: 1.0
    assert group_macro_f1s(pred, gold, (3, 2))[0] == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)
    # group 0's none is value 1, group 1 has no none: labels to find = group 0 values != 1 (rows 0, 2) + all
    # four of group 1. tp: g0 rows 0, 2; g1 rows 0, 2, 3 -> 5. fp: g0 row 3 (pred 0, wrong); g1 row 1 -> 2.
    # fn: g0 none (row 3's gold is none); g1 row 1 -> 1.
    assert implicit_micro_f1(pred, gold, (1, None)) == pytest.approx(2 * 5 / (2 * 5 + 2 + 1))
    assert implicit_micro_f1([(1,)], [(1,)], (1,)) == 1.0  # nothing to find, nothing found
    scores = GROUPS.scores([(0, 1), (1, 0)], [(0, 1), (2, 0)])
    assert scores["exact_match"] == 0.5 and scores["groups"]["body"]["accuracy"] == 1.0


def test_vader_multilabel_is_real_deterministic_and_balanced_enough():
    directory = vader_dir()
    splits = vader_multilabel(directory)
    assert splits.groups == VADER_GROUPS and splits.num_labels == 7
    everything = (*splits.train, *splits.val, *splits.test)
    texts = [e.text for e in everything]
    assert len(texts) == len(set(texts)) > 20_000
    counts = {(g, v): sum(e.groups[k] == i for e in everything)
              for k, g in enumerate(VADER_GROUPS.groups) for i, v in enumerate(g.values)}
    assert min(counts.values()) > 1000, counts  # every source and every sentiment, none included, is common
    assert splits.fingerprint() == vader_multilabel(directory).fingerprint()
    assert 0.14 < len(splits.test) / len(everything) < 0.16


def test_a_project_file_names_a_label_config_relative_to_itself(tmp_path):
    from slimbench.commands.options import project_config

    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "labels.json").write_text("{}")
    (tmp_path / "slimbench.toml").write_text('dataset = "q.jsonl"\nlabel-column = "conf/labels.json"\n')
    values = project_config(tmp_path).values
    assert values["label-column"] == str((tmp_path / "conf" / "labels.json").resolve())
    (tmp_path / "slimbench.toml").write_text('label-column = "budget,fuel"\n')
    assert project_config(tmp_path).values["label-column"] == "budget,fuel"  # column names stay as they are
