#!/usr/bin/env bash
# A/B of two code versions' whole bench passes (issue 15: the start-up probes' stopping rule and
# their cost): full `pytest bench` passes of the built default zoo in the order A B B A ..., each arm
# from its own worktree (its bench/ and src/). First one accuracy-only pass per arm, so that every
# pass below reads its labels from the memo alike (the memo is keyed by the code).
#
# usage (the zoo built in $SLIMBENCH_CACHE, nothing else running, the venv active):
#   bash experiments/first-run/probe_ab.sh OUT_DIR A_COMMIT B_COMMIT [PAIRS=2]
# then: python experiments/first-run/probe_ab.py OUT_DIR
set -euo pipefail
out=$1
a=$2
b=$3
pairs=${4:-2}
repo=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
mkdir -p "$out"
out=$(cd "$out" && pwd)
export HF_HUB_OFFLINE=1
for arm in A B; do
  commit=$a
  [ "$arm" = B ] && commit=$b
  rm -rf "$out/tree-$arm"
  git -C "$repo" worktree add -f --detach "$out/tree-$arm" "$commit" > /dev/null
  git -C "$out/tree-$arm" rev-parse HEAD > "$out/$arm.commit"
done
run() {  # name, arm, extra pytest args...
  local name=$1 arm=$2
  shift 2
  uptime > "$out/$name.uptime"
  local start
  start=$(date +%s)
  (cd "$out/tree-$arm" && PYTHONPATH="$out/tree-$arm/src" python -m pytest bench --benchmark-only \
    -p no:cacheprovider --benchmark-json="$out/$name.json" "$@" > "$out/$name.log" 2>&1) \
    || echo "$name: pytest exit $?" >> "$out/wall.txt"
  echo "$name $(( $(date +%s) - start ))" >> "$out/wall.txt"
}
run memo-A A -k test_accuracy
run memo-B B -k test_accuracy
for i in $(seq 1 "$pairs"); do
  if (( i % 2 )); then order="A B"; else order="B A"; fi
  for arm in $order; do
    run "$arm-$i" "$arm"
  done
done
for arm in A B; do git -C "$repo" worktree remove --force "$out/tree-$arm"; done
echo done >> "$out/wall.txt"
