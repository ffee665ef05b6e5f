#!/usr/bin/env bash
# A/B/C of the throughput rounds' warm-up (issue 15): throughput-only bench passes of the built default
# zoo in the order A B C C B A ..., each arm a `--throughput-warmup` (sentences of the untimed call a
# worker makes before its timed batch of 32, after having been stopped while the others ran):
# A = 32 (a whole batch: what the rounds did when they timed two batches and dropped the first),
# B = 4, C = 0 (none). The question: do B and C time the same batches as fast, with intervals on the
# ratios as tight as A's, in less time?
#
# usage (from a checkout, the zoo built in $SLIMBENCH_CACHE, nothing else running):
#   bash experiments/first-run/throughput_warmup.sh OUT_DIR [PAIRS=1]
# then: python experiments/first-run/throughput_warmup.py OUT_DIR
set -euo pipefail
out=$1
pairs=${2:-1}
mkdir -p "$out"
export HF_HUB_OFFLINE=1
# shellcheck source=bench_pass.sh
source "$(dirname "$0")/bench_pass.sh"
declare -A warmup=([A]=32 [B]=4 [C]=0)
for i in $(seq 1 "$pairs"); do
  for arm in A B C C B A; do
    run "$arm-$i-$(date +%H%M%S)" -k test_throughput --throughput-warmup "${warmup[$arm]}"
  done
done
