# Sourced by latency_budget.sh and block_length.sh (with $out set): `run NAME [pytest args...]` runs
# one `pytest bench --benchmark-only` pass into $out/NAME.json, its log into NAME.log, the load
# average before it into NAME.uptime, and appends "NAME SECONDS" to $out/wall.txt (a failed pass
# also adds a "NAME: pytest exit N" line), as latency_budget.py reads them.
run() {  # name, extra pytest args...
  local name=$1
  shift
  uptime > "$out/$name.uptime"
  local start
  start=$(date +%s)
  python -m pytest bench --benchmark-only -p no:cacheprovider --benchmark-json="$out/$name.json" "$@" \
    > "$out/$name.log" 2>&1 || echo "$name: pytest exit $?" >> "$out/wall.txt"
  echo "$name $(( $(date +%s) - start ))" >> "$out/wall.txt"
}
