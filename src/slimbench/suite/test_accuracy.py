"""Accuracy on the fixed test split (never used for training or selection): accuracy, macro-F1 and
agreement with the standard variant's predictions (on label groups: exact match, and each group's
figures). The predictions come from the variant's timing worker (its own process and runtime); the
timed value is that worker's one pass over the split."""

import pytest

from slimbench.cache.memo import TEST_SPLIT_BATCH
from slimbench.measure import accuracy_figures, truncation_figures
from slimbench.plugin.session import REPLAY_CLOCK, VariantFailed
from slimbench.runtimes.runners import batch_invariant

pytestmark = pytest.mark.benchmark(timer=REPLAY_CLOCK)


def test_accuracy(benchmark, variant, slimbench_session, measure):
    def predictions():
        timed = slimbench_session.timed()
        if variant.name in timed.errors:
            raise VariantFailed(timed.errors[variant.name])
        return timed.labels[variant.name], timed.accuracy_pass_s[variant.name]

    pred, pass_s = measure(predictions)
    measure(lambda: REPLAY_CLOCK.replay(benchmark, [pass_s]))
    splits = slimbench_session.splits
    reference = slimbench_session.labels("standard")
    # with label groups: exact match as the accuracy, and each group's figures (measure.grouped_accuracy_figures)
    figures = accuracy_figures(pred, slimbench_session.gold(), splits.num_labels, reference, groups=splits.groups)
    tokenizer, max_length = variant.artifact_dir / "tokenizer.json", variant.manifest.get("max_length")
    if tokenizer.is_file() and isinstance(max_length, int):  # how much of the test texts it never reads
        figures.update(truncation_figures(tokenizer, max_length, slimbench_session.test_texts()))
    # how the sentences were batched: one at a time where the labels depend on the batch (INT8)
    batch = TEST_SPLIT_BATCH if batch_invariant(variant.context()) else 1
    slimbench_session.record(benchmark, variant, "accuracy", figures, timing={"batch": batch})
