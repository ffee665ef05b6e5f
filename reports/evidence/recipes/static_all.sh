#!/usr/bin/env bash
# Issue 14's "static INT8 faster than dynamic": is onnx-static-int8 with the FFN output projections
# static too (only the fused Attention dynamic, which has no static form in onnxruntime) faster than
# dynamic INT8, and at what validation accuracy? Builds that spec as an extra variant
# (`onnx-static-int8-all`) in a throw-away worktree, then times it interleaved with standard,
# onnx-int8 and the kept onnx-static-int8, twice.
#   SLIMBENCH_CACHE=... bash reports/evidence/recipes/static_all.sh [WORKTREE]   (~5 min; standard built)
set -eu
wt=${1:-/tmp/static-all}
repo=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
git -C "$repo" worktree add -f "$wt" HEAD --detach
cd "$wt"
sed -e 's/^name = "onnx-static-int8"/name = "onnx-static-int8-all"/' \
    -e 's/^dynamic_after_gelu = true/dynamic_after_gelu = false/' \
    models/55-onnx-static-int8.toml > models/56-onnx-static-int8-all.toml
export HF_HUB_OFFLINE=1 PYTHONPATH="$wt/src"
python -m slimbench.cli build --variants onnx-static-int8-all,onnx-static-int8,onnx-int8,standard
for i in 1 2; do
  pytest bench --benchmark-only -q -p no:cacheprovider -k test_latency \
    --variants standard,onnx-int8,onnx-static-int8,onnx-static-int8-all --benchmark-json="$wt/lat-$i.json"
done
python - "$wt" <<'PY'
import json, sys
print("| run | variant | p50 (ms) | p50 ÷ standard [95 % CI] | rounds |\n|---|---|---|---|---|")
for i in (1, 2):
    for b in json.load(open(f"{sys.argv[1]}/lat-{i}.json"))["benchmarks"]:
        ei = b["extra_info"]
        if not b["name"].startswith("test_latency") or ei["variant"] == "standard":
            continue
        f = ei["figures"]; q = f["p50_ratio"]
        print(f"| {i} | {ei['variant']} | {f['p50_s']['value'] * 1000:.3f} | {q['value']:.4f} "
              f"[{q['low']:.4f}, {q['high']:.4f}] | {q['n']} |")
PY
