"""Does a variant's test accuracy depend on how the test sentences are batched?

Dynamic INT8 (torch's and onnxruntime's) quantizes each activation tensor with one scale computed
over the whole tensor -- every sentence of the batch, padding included -- so a sentence's prediction
can depend on the sentences batched with it. The build and the bench's accuracy pass score the test
split in length-sorted batches of 64 (`runtime.predict_in_batches`); the latency column is batch 1.
This scores each variant three ways and counts the sentences whose label differs from batch 1's.

    python experiments/recipes/int8_batching.py [VARIANT ...]     (~1 min; needs the zoo built)
"""

from __future__ import annotations

import sys

import numpy as np

DEFAULT = ("onnx", "standard", "quantized", "onnx-int8", "onnx-static-int8", "ultra-light-onnx-int8")


def main() -> None:
    from slimbench.build.context import default_context
    from slimbench.runtimes.runners import open_runner, predict_in_batches

    ctx = default_context(log=lambda _: None)
    test = [e.text for e in ctx.splits.test]
    gold = np.array([e.label for e in ctx.splits.test])
    print("| variant | length-sorted batches of 64 (the accuracy pass) | file order, batches of 64 | batch 1 | "
          "labels unlike batch 1's (sorted / file order) |")
    print("|---|---|---|---|---|")
    for name in sys.argv[1:] or DEFAULT:
        runner = open_runner(ctx.artifact_dir(name), threads=2)
        try:
            sorted64 = np.array(predict_in_batches(runner, test, 64))
            file64 = np.concatenate([np.array(runner.predict(test[i : i + 64])) for i in range(0, len(test), 64)])
            one = np.array([runner.predict([t])[0] for t in test])
        finally:
            runner.close()
        label = {v: k for k, v in enumerate(ctx.splits.labels)}
        ids = [np.array([label.get(p, p) for p in preds]) for preds in (sorted64, file64, one)]
        accs = " | ".join(f"{100 * (p == gold).mean():.2f} %" for p in ids)
        print(f"| {name} | {accs} | {(ids[0] != ids[2]).sum()} / {(ids[1] != ids[2]).sum()} |")


if __name__ == "__main__":
    main()
