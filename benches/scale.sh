#!/usr/bin/env bash
# corral at scale, beside the least a supervisor can do and beside PM2, on this machine, in
# one go (issue 13). The floor is benches/scale/floor.c (a minimal C supervisor: vfork+exec,
# restarts a dead child at once), `seq` and `cat`; the worker is benches/scale/stamp.c, which
# sends "PID MONO_NS REAL_NS" to a unix datagram socket the moment it is exec'd, so every
# time is the worker's own clock reading, not when a supervisor got round to printing. It
# measures (benches/scale/measure.py)
#   1. start -> 1000 workers exec'd (median of 3): corral --no-ui -w 1000, floor 1000,
#   2. the same at 4096 (median of 2), and with --log-format json: the spawned events' "ts"
#      against the worker's exec wall clock, and when the first spawned line comes out,
#   3. corral's CPU with its dashboard in a pty (120x40), idle, at 1000 and at 64 workers,
#   4. kill -9 -> replacement exec'd, p50 and p99 of 200 kills, 4 workers: corral
#      --backoff 0, floor, PM2 fork mode,
#   5. 2,000,000 short lines through headless output (text and json) to a file: corral,
#      `seq > FILE`, PM2's log file; every output checked for every line, in order,
#   6. a `yes` worker under the dashboard: corral's CPU per GB drained, against `cat`'s,
# and prints a Markdown table, also saved to benches/scale/results.md. About 4 minutes.
#
#   benches/scale.sh
#
# It builds floor and stamp (gcc) into the scratch folder, corral (cargo build --release)
# and installs PM2 7 there with npm (never globally) when missing; without Node.js/npm the
# PM2 cells say so. All traffic stays on this machine (unix sockets, pipes, a pty).
# Knobs (environment): SCALE_ROWS (measures to run, by number or name: 1 start, 2 big,
# 3 dashboard, 4 restart, 5 lines, 6 yes; default all), SCALE_KILLS (200), SCALE_QUICK=1
# (small sizes: 100 workers instead of 1000/4096, 20 kills, 200,000 lines, 3 s windows),
# SCALE_SCRATCH (default /tmp/corral-scale), SCALE_NO_BUILD=1 (use target/release/corral as
# it is). Logs of the last run stay in SCALE_SCRATCH/run.*.
#
# It stops only what it started: measure.py tracks every process it launches (supervisors
# get SIGTERM then SIGKILL, each stamp worker that announced itself is checked and killed
# if its supervisor left it), PM2 runs with a private PM2_HOME and is stopped with `pm2
# kill`, and every process it starts directly gets SIGTERM if this script dies (setpriv
# --pdeathsig). At the end it checks that no floor, stamp or corral from the scratch folder
# is left (corral runs from a copy there, so a rebuild during the run changes nothing).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
SCRATCH="${SCALE_SCRATCH:-/tmp/corral-scale}"
BIN="$SCRATCH/bin"
RESULTS="$HERE/scale/results.md"
MAX_SECONDS=900 # the whole measuring run, whatever happens

STARTED=()  # pids of the background processes this script started
PM2=""      # the pm2 CLI, once installed
PM2_DIR=""  # this run's private PM2_HOME
MEASURING="" # set once the measures start: from then on, scratch processes left are ours

ORPHAN_GUARD=()
if setpriv --pdeathsig TERM -- true 2>/dev/null; then ORPHAN_GUARD=(setpriv --pdeathsig TERM --); fi

say() { printf '%s\n' "$*" >&2; }
die() { say "scale.sh: $*"; exit 1; }

alive() {
  local s
  s="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  s="${s##*) }"
  [[ "${s%% *}" != Z ]]
}

# stop_pid PID GRACE: SIGTERM, up to GRACE seconds, then SIGKILL; reaps it.
stop_pid() {
  local pid="$1" grace="$2" i
  if alive "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < grace * 20; i++)); do alive "$pid" || break; sleep 0.05; done
    if alive "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
  fi
  wait "$pid" 2>/dev/null || true
}

pm2_kill_home() {
  local home="$1" pid
  pid="$(cat "$home/pm2.pid" 2>/dev/null || true)"
  if [[ -n "$pid" && -n "$PM2" ]] && alive "$pid"; then
    PM2_HOME="$home" timeout 30 "$PM2" kill >/dev/null 2>&1 || true
  fi
}

# Processes from the scratch folder's floor, stamp or corral that are still running.
leftovers() { pgrep -f "^$BIN/(floor|stamp|corral)( |\$)" || true; }

cleanup() {
  local rc=$? pid left
  trap - EXIT INT TERM
  for pid in "${STARTED[@]}"; do stop_pid "$pid" 30; done
  if [[ -n "$PM2_DIR" ]]; then pm2_kill_home "$PM2_DIR"; fi
  left=""
  [[ -z "$MEASURING" ]] || left="$(leftovers)"
  if [[ -n "$left" ]]; then
    say "scale.sh: left behind, now killed: $(tr '\n' ' ' <<<"$left")"
    # shellcheck disable=SC2086
    kill -KILL $left 2>/dev/null || true
    ((rc != 0)) || rc=1
  elif [[ -n "$MEASURING" ]]; then
    say "checked: no floor, stamp or corral from $BIN left running"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------------------
# What the run needs.

command -v gcc >/dev/null || die "gcc is needed (apt-get install gcc)"
command -v python3 >/dev/null || die "python3 (3.11 or later) is needed"
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || die "python3 is older than 3.11"
mkdir -p "$SCRATCH" "$BIN"

# What an earlier run left if it was killed outright: its PM2 daemon (PM2 detaches it, so
# no parent-death signal reaches it), its logs.
PM2="$SCRATCH/node_modules/.bin/pm2"
[[ -x "$PM2" ]] || PM2=""
for home in "$SCRATCH"/run.*/pm2-home; do
  [[ -d "$home" ]] || continue
  say "stopping what an earlier run left in $home"
  pm2_kill_home "$home"
done
[[ -z "$(leftovers)" ]] || die "floor/stamp/corral processes from $BIN are running already (another run?): $(leftovers | tr '\n' ' ')"
rm -rf "$SCRATCH"/run.*

say "building floor and stamp (gcc) into $BIN"
gcc -O2 -Wall -o "$BIN/floor" "$HERE/scale/floor.c"
gcc -O2 -Wall -o "$BIN/stamp" "$HERE/scale/stamp.c"

CORRAL="${CARGO_TARGET_DIR:-$ROOT/target}/release/corral"
if [[ "${SCALE_NO_BUILD:-}" != 1 || ! -x "$CORRAL" ]]; then
  say "building corral (cargo build --release)"
  (cd "$ROOT" && cargo build --release --locked --quiet)
fi
[[ -x "$CORRAL" ]] || die "no corral binary at $CORRAL"
# A copy, so a rebuild during the run cannot mix two versions in one table.
cp -p "$CORRAL" "$BIN/corral"
CORRAL="$BIN/corral"

if command -v node >/dev/null && command -v npm >/dev/null; then
  PM2="$SCRATCH/node_modules/.bin/pm2"
  if [[ ! -x "$PM2" ]]; then
    say "installing PM2 7 into $SCRATCH (npm, not global)"
    npm install --prefix "$SCRATCH" --no-audit --no-fund --loglevel=error pm2@7 >&2 ||
      say "scale.sh: PM2 install failed; its cells will say so"
  fi
  [[ -x "$PM2" ]] || PM2=""
else
  PM2=""
  say "no Node.js/npm: PM2 is left out"
fi

# 4096 workers need ~3 descriptors each in corral and one in floor.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

WORK="$(mktemp -d "$SCRATCH/run.XXXXXX")"
PM2_DIR="$WORK/pm2-home"
mkdir -p "$PM2_DIR"
say "logs of this run: $WORK"

rev="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
git -C "$ROOT" diff --quiet HEAD -- src 2>/dev/null || rev="$rev+dirty"
command_line="benches/scale.sh"
for v in SCALE_ROWS SCALE_KILLS SCALE_QUICK; do
  [[ -z "${!v:-}" ]] || command_line="$v=${!v} $command_line"
done

MEASURING=1
SCALE_BIN="$BIN" SCALE_CORRAL="$CORRAL" SCALE_PM2="$PM2" SCALE_PM2_HOME="$PM2_DIR" \
  SCALE_WORK="$WORK" SCALE_RESULTS="$RESULTS" SCALE_COMMAND="$command_line" \
  SCALE_CORRAL_REV="$rev" \
  "${ORPHAN_GUARD[@]}" timeout "$MAX_SECONDS" "${ORPHAN_GUARD[@]}" python3 "$HERE/scale/measure.py" &
STARTED+=("$!")
rc=0
wait "$!" || rc=$?
STARTED=()
((rc == 0)) || die "measure.py failed ($rc); logs in $WORK"
