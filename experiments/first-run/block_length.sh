#!/usr/bin/env bash
# A/B of the latency phase's block length (issue 15): latency-only bench passes of the built default
# zoo in the order A B B A ..., A = the defaults (a fast variant repeats the round's sentences until its
# block lasts 120 ms; the phase's budget 150 s), B = `--latency-min-block-ms 60 --latency-max-s 100`
# (blocks half as long for the variants that repeat, so a round takes about a third less, and a
# budget a third shorter). The question: does B give intervals as tight as A's in less time?
#
# usage (from a checkout, the zoo built in $SLIMBENCH_CACHE, nothing else running):
#   bash experiments/first-run/block_length.sh OUT_DIR [PAIRS=2]
# then: python experiments/first-run/latency_budget.py OUT_DIR
set -euo pipefail
out=$1
pairs=${2:-2}
mkdir -p "$out"
export HF_HUB_OFFLINE=1
# shellcheck source=bench_pass.sh
source "$(dirname "$0")/bench_pass.sh"
for i in $(seq 1 "$pairs"); do
  if (( i % 2 )); then order="A B"; else order="B A"; fi
  for arm in $order; do
    if [ "$arm" = A ]; then run "A-$i" -k test_latency; else run "B-$i" -k test_latency --latency-min-block-ms 60 --latency-max-s 100; fi
  done
done
