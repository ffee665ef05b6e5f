"""Fresh-process memory probes of built variants, with the RSS after inference split into anonymous and
file-backed pages: `python experiments/peak-rss/rss_probe.py standard onnx-int8` (SLIMBENCH_CACHE set).
Run it before and after `sync; echo 1 > /proc/sys/vm/drop_caches` (root) to see what the page cache does."""
import sys

from slimbench.build.context import default_context
from slimbench.runtimes.probes import run_probe

ctx = default_context(log=lambda s: None)
texts = [e.text for e in ctx.splits.test][:50]
for v in sys.argv[1:]:
    r = run_probe(ctx.artifact_dir(v), 2, texts, n_predict=50, timeout_s=300)
    h = r.vmhwm_bytes["after_inference"]
    print(v, "hwm", round(h / 1e6), {k: round(x / 1e6) for k, x in r.rss_bytes.items()}, "hwm-file", round((h - r.rss_bytes["file"]) / 1e6), flush=True)
