"""The test split is scored as each sentence would be predicted alone: batch-invariant (fp32)
runners in length-sorted batches, INT8 runners -- whose activation scales span the batch -- one
sentence at a time; the results say which, and the report explains it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from slimbench.runtimes.runners import LogitsToLabels, open_runner, predict_in_batches

pytestmark = pytest.mark.slow  # subprocess runs and builds: the full suite only (pytest -m "not slow" skips them)


class _Recording(LogitsToLabels):
    def __init__(self, invariant: bool):
        self.batch_invariant = invariant
        self.sizes: list[int] = []

    def predict_logits(self, texts):
        self.sizes.append(len(texts))
        return np.array([[0.0, float(len(t))] for t in texts])


def test_a_batch_dependent_runner_predicts_one_text_at_a_time():
    texts = [f"text {'x' * (i % 7)}" for i in range(150)]
    batched, alone = _Recording(True), _Recording(False)
    assert predict_in_batches(batched, texts, 64) == predict_in_batches(alone, texts, 64) == [1] * 150
    assert batched.sizes == [64, 64, 22]
    assert alone.sizes == [1] * 150


def test_int8_runners_are_batch_dependent_and_fp32_ones_are_not(tiny_built):
    invariant = {}
    for name in ("standard", "quantized", "onnx", "onnx-int8"):
        with open_runner(tiny_built[name]) as runner:
            invariant[name] = runner.batch_invariant
    assert invariant == {"standard": True, "quantized": False, "onnx": True, "onnx-int8": False}


def test_an_int8_rows_hash_says_how_its_accuracy_was_scored(tmp_path):
    """Artifacts built when INT8 rows were scored in batches rebuild; fp32 rows keep their hash."""
    from slimbench.build.context import BuildContext
    from slimbench.spec.schema import spec_from_dict
    from slimbench.spec.zoo import Zoo
    from slimbench.testing import synthetic_splits

    zoo = Zoo([spec_from_dict({"name": "standard", "base": "random", "train": {"method": "finetune"}}),
               spec_from_dict({"name": "quantized", "source": "standard", "steps": ["torch-dynamic-int8"],
                               "precision": "int8"})])
    ctx = BuildContext(zoo=zoo, root=tmp_path, splits_loader=synthetic_splits, log=lambda _: None)
    inputs = ctx.inputs()
    assert ctx.spec_hash("standard") == zoo.spec_hash("standard", inputs)
    assert ctx.spec_hash("quantized") != zoo.spec_hash("quantized", inputs)


def test_the_report_says_which_rows_were_scored_one_sentence_at_a_time(tmp_path):
    from pathlib import Path

    from slimbench.analysis.results import load_runs
    from slimbench.render.report import render_markdown

    golden = Path(__file__).parent / "golden" / "report" / "paired_run.json"
    data = json.loads(golden.read_text())
    assert "predicted each sentence alone" not in render_markdown(load_runs([golden]))  # not recorded: not said
    for bench in data["benchmarks"]:
        info = bench["extra_info"]
        if info["metric"] == "accuracy":
            info["context"]["timing"] = {"batch": 1 if info["variant"] == "fast" else 64}
    path = tmp_path / "run.json"
    path.write_text(json.dumps(data))
    text = render_markdown(load_runs([path]))
    assert ("`fast` predicted each sentence alone, as at batch 1" in text
            and "the others in batches of 64, whose labels do not depend on the batch" in text)
