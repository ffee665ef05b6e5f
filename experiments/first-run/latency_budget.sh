#!/usr/bin/env bash
# A/B of the latency phase's time budget (issue 15): full bench passes of the built default zoo in
# the order A B B A ..., A = `--latency-max-s 0` (no budget: rounds go on up to 120 while a ratio's
# CI is wider than +-3 %, the behaviour before the budget), B = the default budget (120 s).
# First one accuracy-only pass, so that every pass below reads its labels from the memo alike.
#
# usage (from a checkout, the zoo built in $SLIMBENCH_CACHE, nothing else running):
#   bash experiments/first-run/latency_budget.sh OUT_DIR [PAIRS=2]
# then: python experiments/first-run/latency_budget.py OUT_DIR
set -euo pipefail
out=$1
pairs=${2:-2}
mkdir -p "$out"
export HF_HUB_OFFLINE=1
# shellcheck source=bench_pass.sh
source "$(dirname "$0")/bench_pass.sh"
run memo-fill -k test_accuracy
for i in $(seq 1 "$pairs"); do
  if (( i % 2 )); then order="nobudget budget"; else order="budget nobudget"; fi
  for arm in $order; do
    if [ "$arm" = nobudget ]; then run "$arm-$i" --latency-max-s 0; else run "$arm-$i"; fi
  done
done
echo done >> "$out/wall.txt"
