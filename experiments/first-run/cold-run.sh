#!/usr/bin/env bash
# A first `make report` as a new user runs it: a fresh clone and an empty slimbench cache (no
# artifact, no asset, no memo) and an empty pip download cache (PIP_CACHE_DIR; wheels come from PyPI,
# or from local wheel directories where pip's configuration names them, as on this project's VM),
# every log line stamped with the time; then the per-step profile.
#   bash experiments/first-run/cold-run.sh [WORKDIR]     (default /tmp/cold; 30-60 min on 2 cores)
set -u
d=${1:-/tmp/cold}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(git -C "$here" rev-parse --show-toplevel)
rm -rf "$d" && mkdir -p "$d" && git clone -q "$repo" "$d/repo" && cd "$d/repo" || exit 1
export SLIMBENCH_CACHE="$d/cache" PIP_CACHE_DIR="$d/pip-cache"
uptime
start=$(date +%s)
(make report 2>&1; echo "make exit $?") | while IFS= read -r l; do printf '%s %s\n' "$(date +%T)" "$l"; done > "$d/log"
echo "fresh clone -> reports/REPORT.md: $(( $(date +%s) - start )) s" | tee -a "$d/log"
python3 "$here/build_profile.py" "$SLIMBENCH_CACHE" "$d/log"
