"""Measuring a multi-label variant: exact match as its accuracy, every group's own figures, the
memo that keeps per-group labels, `slimbench compare` and the gate judging each group's accuracy by
the accuracy rule, the report's label-groups table -- and, end to end, `slimbench run` on a tiny
multi-label CSV."""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from slimbench.analysis.results import parse_run
from slimbench.labels import LabelGroup, LabelGroups, group_figure, split_group_figure
from slimbench.measure import accuracy_figures

GROUPS = LabelGroups((LabelGroup("sentiment", ("negative", "none", "positive"), "none"),
                      LabelGroup("topic", ("food", "none"), "none")))
# five texts: (sentiment, topic) indices
GOLD = [(0, 0), (2, 1), (1, 0), (2, 0), (0, 1)]
PRED = [(0, 0), (2, 0), (1, 0), (0, 0), (0, 1)]  # text 2: topic wrong (a false find); text 4: sentiment wrong
REFERENCE = [(0, 0), (2, 1), (2, 0), (2, 0), (0, 1)]  # standard: only text 3's sentiment wrong (a false find)


def test_a_multilabel_variants_accuracy_is_its_exact_match_and_each_group_has_its_own():
    f = accuracy_figures(PRED, GOLD, GROUPS.width, REFERENCE, groups=GROUPS)
    assert f["accuracy"]["value"] == f["exact_match"]["value"] == pytest.approx(3 / 5)
    assert f["accuracy"]["n"] == 5 and f["accuracy"]["unit"] == "ratio"
    assert f["accuracy:sentiment"]["value"] == pytest.approx(4 / 5)
    assert f["accuracy:topic"]["value"] == pytest.approx(4 / 5)
    # labels to find (gold not none): sentiment 0, 2, 2, 0 (4), topic food x3 (3) = 7; found right: 3 + 3 = 6;
    # false finds: text 4's sentiment (0 for 2) and text 2's topic (food for none) = 2; missed: text 4's = 1
    assert f["implicit_micro_f1"]["value"] == pytest.approx(2 * 6 / (2 * 6 + 2 + 1))
    assert f["macro_f1"]["value"] == pytest.approx((f["macro_f1:sentiment"]["value"] + f["macro_f1:topic"]["value"]) / 2)
    # against standard: exact right 3 (PRED) vs 4 (REFERENCE); only standard right: texts 2 and 4; only variant: 3
    assert f["agreement_with_standard"]["value"] == pytest.approx(2 / 5)
    assert (f["only_standard_right"]["value"], f["only_variant_right"]["value"]) == (2, 1)
    assert (f["only_standard_right:sentiment"]["value"], f["only_variant_right:sentiment"]["value"]) == (1, 1)
    assert (f["only_standard_right:topic"]["value"], f["only_variant_right:topic"]["value"]) == (1, 0)
    assert f["agreement_with_standard:topic"]["value"] == pytest.approx(4 / 5)


def test_one_group_is_the_single_label_figures():
    """Exact match over one group is accuracy: the grouped figures reduce to the single-label ones."""
    one = LabelGroups((LabelGroup("sentiment", ("negative", "none", "positive"), None),))
    pred, gold, ref = [0, 2, 1, 0, 0], [0, 2, 1, 2, 0], [0, 2, 2, 2, 0]
    single = accuracy_figures(pred, gold, 3, ref)
    grouped = accuracy_figures([[p] for p in pred], [[g] for g in gold], 3, [[r] for r in ref], groups=one)
    for name, fig in single.items():
        assert grouped[name] == fig, name


def test_group_figure_names_round_trip():
    assert group_figure("accuracy", "fuel") == "accuracy:fuel"
    assert split_group_figure("accuracy:fuel") == ("accuracy", "fuel")
    assert split_group_figure("accuracy") == ("accuracy", None)
    assert split_group_figure("p50_s") == ("p50_s", None)


# --- the memo of predicted labels -----------------------------------------------------------------------

def test_the_memo_believes_per_group_labels_and_refuses_impossible_ones():
    from slimbench.cache.memo import _labels_problem

    manifest = {"label_groups": GROUPS.to_json(), "dataset": {"labels": list(GROUPS.flat_names()), "test": 5},
                "test_accuracy": 0.6}
    hit = [list(p) for p in PRED]
    assert _labels_problem(hit, 5, manifest, GOLD) is None
    assert "value index for each of the artifact's 2 label groups" in _labels_problem([0, 1, 2, 0, 1], 5, manifest, None)
    assert "value index for each" in _labels_problem([[0], [1], [2], [0], [1]], 5, manifest, None)
    assert "outside its group's values" in _labels_problem([[0, 2], *hit[1:]], 5, manifest, None)  # topic has 2
    wrong = {**manifest, "test_accuracy": 0.2}
    assert "accuracy 0.6 on the test split" in _labels_problem(hit, 5, wrong, GOLD)


# --- slimbench compare ------------------------------------------------------------------------------------

def test_compare_judges_exact_match_and_every_groups_accuracy_by_the_accuracy_rule():
    from slimbench.commands.ab import ACCURACY_TOLERANCE, _accuracy_verdicts

    gold = GOLD * 40  # 200 texts: one wrong group value in 5 is a drop of 20 points
    verdicts = _accuracy_verdicts("onnx-int8", REFERENCE * 40, PRED * 40, gold, GROUPS.width, GROUPS, "test")
    by = {v.figure: v for v in verdicts}
    assert list(by) == ["accuracy", "accuracy:sentiment", "accuracy:topic"]
    assert by["accuracy"].baseline == pytest.approx(0.8) and by["accuracy"].candidate == pytest.approx(0.6)
    assert by["accuracy"].kind == "regression" and "exact match" in by["accuracy"].how
    assert by["accuracy:topic"].kind == "regression"  # 100 % -> 80 %
    assert by["accuracy:sentiment"].kind is None  # 80 % -> 80 %: a different text wrong, the same accuracy
    assert all(v.floor == ACCURACY_TOLERANCE for v in verdicts)
    single = _accuracy_verdicts("onnx-int8", [0, 1] * 50, [0, 1] * 50, [0, 1] * 50, 2, None, "test")
    assert [v.figure for v in single] == ["accuracy"]


def test_compares_markdown_gives_a_groups_accuracy_in_points():
    from slimbench.commands.ab import _accuracy_verdicts
    from slimbench.commands.compare import render_markdown

    verdicts = _accuracy_verdicts("onnx-int8", REFERENCE * 40, PRED * 40, GOLD * 40, GROUPS.width, GROUPS, "test")
    md = render_markdown(verdicts, {}, "# compare")
    assert re.search(r"\| onnx-int8 +\| accuracy:topic +\|", md) and "-20.00 points" in md and "0.5 points" in md


# --- the gate and the report, on recorded runs -------------------------------------------------------------

def _grouped_run(topic_accuracy: dict[str, float]) -> Any:
    from test_gate import run_doc

    doc = run_doc()
    for bench in doc["benchmarks"]:
        info = bench["extra_info"]
        if info["metric"] != "accuracy":
            continue
        v, n = info["variant"], info["figures"]["accuracy"]["n"]
        info["figures"].update({
            "exact_match": copy.deepcopy(info["figures"]["accuracy"]),
            "implicit_micro_f1": {"value": 0.9, "unit": "ratio", "n": n},
            "accuracy:sentiment": {"value": 0.91, "unit": "ratio", "n": n},
            "macro_f1:sentiment": {"value": 0.88, "unit": "ratio", "n": n},
            "accuracy:topic": {"value": topic_accuracy.get(v, 0.95), "unit": "ratio", "n": n},
            "macro_f1:topic": {"value": 0.93, "unit": "ratio", "n": n},
        })
        if v != "standard":
            info["figures"]["agreement_with_standard:topic"] = {"value": 0.97, "unit": "ratio", "n": n}
    return parse_run(doc, source="grouped.json")


def test_the_gate_fails_a_drop_in_one_groups_accuracy():
    from slimbench.analysis.gate import gate

    baseline = _grouped_run({})
    current = _grouped_run({"onnx-int8": 0.93})  # 2 points below the baseline's 0.95, the exact match unchanged
    findings = [(f.kind, f.variant, f.figure) for f in gate(baseline, current).findings]
    assert ("regression", "onnx-int8", "accuracy:topic") in findings
    assert not any(fig == "accuracy:sentiment" for _, _, fig in findings)
    assert gate(baseline, _grouped_run({})).passed


def test_a_budget_may_name_a_groups_accuracy_but_not_a_groups_timing():
    from slimbench.analysis.gate_rules import GateConfigError, parse_budget_key

    budget = parse_budget_key("onnx-int8", "accuracy:topic_min", 0.9, "[budgets.onnx-int8]")
    assert budget.figure == "accuracy:topic" and budget.metric == "accuracy" and budget.bound == "min"
    with pytest.raises(GateConfigError, match="unknown budget 'p50_s:topic_max'"):
        parse_budget_key("onnx-int8", "p50_s:topic_max", 0.01, "[budgets.onnx-int8]")


def test_the_report_shows_a_label_groups_table_only_for_a_multilabel_run():
    from test_gate import make_run

    from slimbench.render.report import render_markdown

    md = render_markdown([_grouped_run({"onnx-int8": 0.93})], plots=False)
    section = md[md.index("### Label groups"):]
    assert "2 label groups (sentiment, topic)" in section and "**exact match**" in section
    assert "| `onnx-int8` " in section and "93.0 % · 0.930 · 97.0 %" in section
    assert "91.0 % · 0.880" in section
    assert "On this dataset's 2 label groups, accuracy is the exact match" in md
    assert "### Label groups" not in render_markdown([make_run()], plots=False)


# --- end to end ------------------------------------------------------------------------------------------------

@pytest.mark.slow  # a tiny model fine-tuned and two variants measured in a child process (about a minute)
def test_slimbench_run_measures_a_multilabel_dataset_end_to_end(tmp_path, tiny_base):
    from slimbench.analysis.results import load_run
    from slimbench.testing import write_multilabel_files

    files = write_multilabel_files(tmp_path / "data", n=400)
    fast = ["--latency-rounds", "4", "--latency-max-rounds", "0", "--latency-block", "3", "--latency-warmup", "2",
            "--latency-min-block-ms", "0", "--throughput-rounds", "2", "--throughput-batch", "4",
            "--load-samples", "1", "--load-min-samples", "1", "--memory-samples", "1", "--worker-processes", "1",
            "--threads", "1"]
    proc = subprocess.run([sys.executable, "-m", "slimbench.cli", "run", "--base", str(tiny_base),
                           "--dataset", str(files["jsonl"]), "--label-column", str(files["config"]),
                           "--variants", "standard,onnx-int8", "--cache", str(tmp_path / "cache"), *fast],
                          capture_output=True, text=True, cwd=tmp_path, timeout=900,
                          env=dict(os.environ, HF_HUB_OFFLINE="1"))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = tmp_path / "slimbench-out"
    run = load_run(out / "results.json")
    for name in ("standard", "onnx-int8"):
        acc = run.get(name, "accuracy")
        assert acc is not None and acc.ok, name
        assert acc.figures["accuracy"].value == acc.figures["exact_match"].value
        assert {"accuracy:sentiment", "accuracy:topic", "macro_f1:topic", "implicit_micro_f1"} <= set(acc.figures)
        assert acc.figures["accuracy"].value <= min(acc.figures["accuracy:sentiment"].value,
                                                    acc.figures["accuracy:topic"].value)
        # the run's accuracy is the build's: the manifest's exact match on the same test split
        manifest = json.loads((Path(acc.context["artifact"]) / "manifest.json").read_text())
        assert acc.figures["accuracy"].value == pytest.approx(manifest["test_accuracy"], abs=0.02)
    assert "agreement_with_standard:topic" in run.get("onnx-int8", "accuracy").figures
    report = (out / "REPORT.md").read_text()
    assert "### Label groups" in report and "sentiment" in report
