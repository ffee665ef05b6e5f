"""Accuracy on the fixed test split (never used for training or selection): accuracy, macro-F1 and
agreement with the standard variant's predictions. The timed value is one pass over the split."""

from slimbench.build.builder import predict_in_batches
from slimbench.measure import accuracy_figures


def test_accuracy(benchmark, variant, slimbench_session, measure):
    runner = measure(lambda: slimbench_session.runner(variant))
    texts = slimbench_session.test_texts()
    gold = [e.label for e in slimbench_session.splits.test]
    pred = measure(lambda: benchmark.pedantic(predict_in_batches, args=(runner, texts), rounds=1, iterations=1))
    if variant.name == "standard":
        slimbench_session.set_reference_predictions(pred)
    reference = measure(slimbench_session.reference_predictions)
    figures = accuracy_figures(pred, gold, slimbench_session.splits.num_labels, reference)
    slimbench_session.record(benchmark, variant, "accuracy", figures)
