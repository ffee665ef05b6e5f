#!/usr/bin/env bash
# The steps of `tox -e report`, timed, from a frozen worktree (so the files measured do not change
# under the run) with the project's installed environment; outputs stay in that worktree's reports/.
#   git worktree add -f /work/evid <commit> && bash reports/evidence/first-report/report-run.sh /work/evid
# Phase seconds of the bench pass: the "timing workers done" and "fresh-process probes done" lines.
set -e
tree=${1:?usage: report-run.sh WORKTREE}
cd "$tree"
source "${VENV:-/work/main/.tox/report}/bin/activate"
export HF_HUB_OFFLINE=1 PYTHONPATH="$tree/src"
uptime
t0=$(date +%s)
slimbench build
t1=$(date +%s)
slimbench sweep --out reports/sweep.json
t2=$(date +%s)
rm -f reports/results.json
python -m pytest bench --benchmark-only --benchmark-json=reports/results.json -p no:cacheprovider || echo "bench exit $?"
t3=$(date +%s)
slimbench report reports/results.json --out reports --strict || echo "report exit $?"
t4=$(date +%s)
echo "build $((t1-t0)) sweep $((t2-t1)) bench $((t3-t2)) report $((t4-t3)) total $((t4-t0))"
