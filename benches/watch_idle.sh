#!/usr/bin/env bash
# corral idle with a watched tree (issue 23): its CPU while nothing changes under a
# `--watch` of WATCH_FILES files (10,000) in WATCH_DIRS directories (100), beside a
# node_modules/ of as many files (ignored, so never watched), against the same corral
# without --watch; then one burst (every file touched at once) and what it costs: the
# reloads it made (must be 1) and corral's CPU seconds until that reload was done.
#
#   benches/watch_idle.sh                 # 30 s windows
#   WATCH_SMOKE=1 benches/watch_idle.sh   # 1,000 files, 3 s windows: a few seconds
#
# The binary is $WATCH_CORRAL (default: target/release/corral, rebuilt with nice cargo
# build --release --locked). Workers are `sleep`; all files are in WATCH_SCRATCH (default
# ${TMPDIR:-/tmp}/corral-watch), deleted at the start of each run. Prints a Markdown table,
# also saved to benches/watch_idle/results.md (not in smoke mode).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
FILES="${WATCH_FILES:-10000}"
DIRS="${WATCH_DIRS:-100}"
SECS="${WATCH_SECONDS:-30}"
if [[ "${WATCH_SMOKE:-}" == 1 ]]; then FILES=1000; DIRS=20; SECS=3; fi
SCRATCH="${WATCH_SCRATCH:-${TMPDIR:-/tmp}/corral-watch}"
RESULTS="$HERE/watch_idle/results.md"
# shellcheck source=benches/lib.sh
source "$HERE/lib.sh"

if [[ -n "${WATCH_CORRAL:-}" ]]; then CORRAL="$(realpath "$WATCH_CORRAL")"; else build_corral; fi
rm -rf "$SCRATCH"
mkdir -p "$SCRATCH/tree/src" "$SCRATCH/tree/node_modules"
say "making $FILES files in $DIRS directories (and as many in node_modules/)"
(
  cd "$SCRATCH/tree"
  per=$((FILES / DIRS))
  for ((d = 0; d < DIRS; d++)); do
    mkdir -p "src/d$d" "node_modules/m$d"
    for ((f = 0; f < per; f++)); do : >"src/d$d/f$f.js"; : >"node_modules/m$d/f$f.js"; done
  done
)

# start_corral OUT ARGS...: corral headless in the tree, its JSON events to OUT; sets SUP_PID.
start_corral() {
  local out="$1"
  shift
  (cd "$SCRATCH/tree" && exec "${ORPHAN_GUARD[@]}" "$CORRAL" --no-ui --log-format json \
    --no-control "$@" -w 2 -- sleep 100000 >"$out" 2>"$out.err") &
  track_sup
  wait_until 30 grep -q '"worker":2,"pid"' "$out" || die "corral did not start: $(cat "$out.err")"
  sleep 1 # past start-up
}

# idle_cpu: SUP_PID's CPU over SECS of nothing, in % of one core.
idle_cpu() {
  local t0 c0
  t0="$(now_ns)"
  c0="$(cpu_ticks "$SUP_PID")"
  sleep "$SECS"
  cpu_since "$SUP_PID" "$t0" "$c0" 3
}

# inotify watches SUP_PID holds.
watches() {
  local fd n=0
  for fd in /proc/"$SUP_PID"/fd/*; do
    if [[ "$(readlink "$fd")" == "anon_inode:inotify" ]]; then
      n=$((n + $(grep -c '^inotify' "/proc/$SUP_PID/fdinfo/${fd##*/}")))
    fi
  done
  echo "$n"
}

say "corral without --watch, idle for ${SECS}s"
start_corral "$SCRATCH/plain.json"
PLAIN="$(idle_cpu)"
stop_pid "$SUP_PID" 10

say "corral --watch src (and . with node_modules/), idle for ${SECS}s"
start_corral "$SCRATCH/watch.json" --watch src --watch . --reload-settle 0
WATCHES="$(watches)"
WATCHED="$(idle_cpu)"
say "one burst: every file touched at once"
t0="$(now_ns)"
c0="$(cpu_ticks "$SUP_PID")"
find "$SCRATCH/tree/src" -type f -exec touch {} +
wait_until 60 grep -q reload_finished "$SCRATCH/watch.json" || die "no reload after the burst"
BURST_CPU="$(awk -v t="$(($(cpu_ticks "$SUP_PID") - c0))" -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", t / hz }')"
BURST_MS="$((($(now_ns) - t0) / 1000000))"
sleep 2 # a second reload would show by now
RELOADS="$(grep -c '"reload_started"' "$SCRATCH/watch.json" || true)"
stop_pid "$SUP_PID" 10

table="| measure | value |
|---|---|
| files watched (directories with a watch) | $FILES ($WATCHES; node_modules/ has none) |
| corral idle, no --watch | ${PLAIN}% of one core over ${SECS}s |
| corral idle, --watch | ${WATCHED}% of one core over ${SECS}s |
| touching all $FILES files at once | $RELOADS reload; ${BURST_CPU}s of corral's CPU; reload done after ${BURST_MS} ms (300 ms debounce, 2 workers) |"
printf '%s\n' "$table"
if [[ "${WATCH_SMOKE:-}" != 1 ]]; then
  {
    printf '# corral idle with a watched tree\n\n%s, %s\n\n' "$(date -u +%F)" "$(nproc) CPUs"
    printf '%s\n\nbenches/watch_idle.sh (WATCH_FILES=%s WATCH_SECONDS=%s)\n' "$table" "$FILES" "$SECS"
  } >"$RESULTS"
fi
[[ "$RELOADS" == 1 ]] || die "a burst made $RELOADS reloads, not 1"
