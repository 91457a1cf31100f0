#!/usr/bin/env bash
# What probes cost corral's loop (docs/application.md#probes), on this machine: N workers
# (default 1000; corral's own `__test-worker`, which sleeps) each with an HTTP liveness probe
# every second against one local HTTP server (benches/probes/health.py, asyncio, one
# thread), beside the same N workers without probes. For each it reports
#   - corral's CPU (every thread's run time from /proc/PID/task/*/schedstat) over PROBES_SECONDS (default 20) once
#     every worker is up, in % of one core (goal with probes: under 3 %);
#   - the probes the server answered per second over that window (about N with probes);
#   - restart reaction: kill -9 of a worker (one at a time, PROBES_KILLS of them, each a
#     different worker up for long enough to restart at once) to corral's `spawned` event of
#     its replacement (the event's `ts`, milliseconds), median and max.
# Prints a Markdown table. About 2 minutes; PROBES_QUICK=1 is a smoke run of a few seconds
# (50 workers, 3 s windows, 2 kills).
#
#   benches/probes.sh
#
# Knobs (environment): PROBES_WORKERS, PROBES_SECONDS, PROBES_KILLS, PROBES_QUICK=1,
# PROBES_SCRATCH (default ${TMPDIR:-/tmp}/corral-probes), PROBES_NO_BUILD=1 (use
# target/release/corral as it is). python3 must be installed. Everything stays on 127.0.0.1.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
SCRATCH="${PROBES_SCRATCH:-${TMPDIR:-/tmp}/corral-probes}"
if [[ "${PROBES_QUICK:-}" == 1 ]]; then
  WORKERS="${PROBES_WORKERS:-50}" SECS="${PROBES_SECONDS:-3}" KILLS="${PROBES_KILLS:-2}"
else
  WORKERS="${PROBES_WORKERS:-1000}" SECS="${PROBES_SECONDS:-20}" KILLS="${PROBES_KILLS:-10}"
fi
START_TIMEOUT=120 # seconds for every worker to be spawned

# shellcheck source=benches/lib.sh
source "$HERE/lib.sh"

command -v python3 >/dev/null || die "python3 is needed for the health endpoint"
if [[ "${PROBES_NO_BUILD:-}" == 1 ]]; then
  CORRAL="${CARGO_TARGET_DIR:-$ROOT/target}/release/corral"
  [[ -x "$CORRAL" ]] || die "no corral binary at $CORRAL"
else
  build_corral
fi
mkdir -p "$SCRATCH"
rm -f "$SCRATCH"/run.*

PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"${ORPHAN_GUARD[@]}" python3 "$HERE/probes/health.py" "$PORT" "$SCRATCH/run.served" &
SERVER=$!
STARTED+=("$SERVER")
wait_until 10 test -s "$SCRATCH/run.served" || die "the health endpoint did not start"

served() { awk '{ print $2 }' "$SCRATCH/run.served"; }
# utime alone (the rest of cpu_ticks is the kernel's work for corral: on loopback that
# includes the server side of each TCP handshake, which runs in the connecting process).
user_ticks() { local s; s="$(cat "/proc/$1/stat")"; s="${s##*) }"; awk '{ print $12 }' <<<"$s"; }
cpu_since_ticks() {
  awk -v t="$(($1 - $2))" -v hz="$CLK_TCK" -v ns="$(($(now_ns) - $3))" 'BEGIN { printf "%.2f", 100 * (t / hz) / (ns / 1e9) }'
}
# run_ns PID: nanoseconds on a CPU so far, every thread (the scheduler's own count, exact where
# utime + stime are sampled at each clock tick).
run_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%d", s }'; }
spawned_count() { grep -c '"event":"spawned"' "$1" 2>/dev/null || true; }
all_spawned() { [[ "$(spawned_count "$1")" -ge "$WORKERS" ]]; }

# One run: sets CPU (UCPU: its user-space part), RATE (probes answered per second), REACT_MED and REACT_MAX (ms).
measure() {
  local tag="$1" probe="$2" conf="$SCRATCH/run.$1.toml" out="$SCRATCH/run.$1.jsonl" t0 c0 s0 s1 el
  {
    printf '[group.bench]\ncommand = ["%s", "__test-worker"]\nworkers = %s\n' "$CORRAL" "$WORKERS"
    printf 'min-uptime = "1s"\nshare-binds = "off"\nnode-ipc = "off"\n'
    [[ "$probe" == yes ]] &&
      printf 'liveness-probe = { http = "http://127.0.0.1:%s/healthz", period = "1s", timeout = "1s" }\n' "$PORT"
  } >"$conf"
  "${ORPHAN_GUARD[@]}" "$CORRAL" --no-ui --log-format json --no-control --config "$conf" >"$out" 2>"$SCRATCH/run.$tag.err" &
  track_sup
  wait_until "$START_TIMEOUT" all_spawned "$out" || die "$tag: not every worker spawned ($(spawned_count "$out"))"
  sleep 3 # spawning is over, the probes are spread over their periods
  t0="$(now_ns)" c0="$(run_ns "$SUP_PID")" s0="$(served)" u0="$(user_ticks "$SUP_PID")"
  sleep "$SECS"
  CPU="$(awk -v c="$(($(run_ns "$SUP_PID") - c0))" -v ns="$(($(now_ns) - t0))" 'BEGIN { printf "%.2f", 100 * c / ns }')"
  UCPU="$(cpu_since_ticks "$(user_ticks "$SUP_PID")" "$u0" "$t0")"
  s1="$(served)"
  el=$(( ($(now_ns) - t0) / 1000000 ))
  RATE="$(awk -v d="$((s1 - s0))" -v ms="$el" 'BEGIN { printf "%.0f", d / (ms / 1000) }')"
  # Restart reaction: kill -9 one worker at a time, read its replacement's spawned ts.
  local reactions=() i line worker pid gen kill_ms ts_ms
  for ((i = 0; i < KILLS; i++)); do
    line="$(grep '"event":"spawned"' "$out" | sed -n "$((i * 7 % WORKERS + 1))p")"
    worker="$(sed -E 's/.*"worker":([0-9]+).*/\1/' <<<"$line")"
    pid="$(sed -E 's/.*"pid":([0-9]+).*/\1/' <<<"$line")"
    gen="$(sed -E 's/.*"generation":([0-9]+).*/\1/' <<<"$line")"
    kill_ms=$(( $(date +%s%N) / 1000000 ))
    kill -KILL "$pid"
    wait_until 10 grep -q "\"worker\":$worker,[^}]*\"generation\":$((gen + 1))" "$out" || die "$tag: worker $worker not respawned"
    line="$(grep "\"event\":\"spawned\",\"group\":\"bench\",\"worker\":$worker,[^}]*\"generation\":$((gen + 1))" "$out")"
    ts_ms="$(python3 -c 'import sys, datetime; print(int(datetime.datetime.fromisoformat(sys.argv[1].replace("Z", "+00:00")).timestamp() * 1000))' "$(sed -E 's/.*"ts":"([^"]+)".*/\1/' <<<"$line")")"
    reactions+=("$((ts_ms - kill_ms))")
    sleep 0.2
  done
  read -r REACT_MED REACT_MAX < <(printf '%s\n' "${reactions[@]}" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)], a[NR] }')
  stop_pid "$SUP_PID" 30
  grep -q '"event":"exited".*"reason":"liveness_probe"' "$out" && warn "$tag: a worker failed its liveness probe"
  return 0
}

say "corral $(corral_rev) on $(machine); load average $(cut -d' ' -f1-3 /proc/loadavg)"
say "$WORKERS workers, ${SECS}s windows, $KILLS kills each"
measure without no
ROW_WITHOUT="| without probes | $CPU % ($UCPU % user) | $RATE | $REACT_MED ms | $REACT_MAX ms |"
measure with yes
ROW_WITH="| HTTP liveness probe every 1 s | $CPU % ($UCPU % user) | $RATE | $REACT_MED ms | $REACT_MAX ms |"
cat <<TABLE
| $WORKERS workers | corral CPU (% of one core) | probes answered / s | kill -9 → respawned (median) | (max) |
|---|---|---|---|---|
$ROW_WITHOUT
$ROW_WITH
TABLE
