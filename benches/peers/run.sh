#!/usr/bin/env bash
# corral against its peers, on this machine, in one go: the same Node HTTP server
# (assets/server.js, 2 workers) under corral (defaults, and with --backoff 0), under Node's
# own `cluster` module (both scheduling policies; benches/peers/cluster.js) and under PM2 in
# cluster mode, all on 127.0.0.1. For each supervisor it measures
#   1. requests/s (wrk) at 2 workers, with keep-alive and with a new connection per request,
#   2. the requests that succeed while a worker is SIGKILLed every 500 ms,
#   3. the requests that fail during a rolling reload under load,
#   4. the time from a worker's SIGKILL to its replacement accepting (median of 20 kills),
#   5. the supervisor's own RSS and CPU% while (1) runs,
# and prints a Markdown table, also saved to benches/peers/results.md. About 6 minutes.
#
#   benches/peers/run.sh
#
# It installs what is missing: wrk (Debian package), PM2 (npm, into $PEERS_SCRATCH, never
# globally), and builds corral (cargo build --release). Node.js must be installed.
# Knobs (environment): PEERS_ROWS (default "corral corral-backoff0 cluster-rr cluster-none
# pm2"), PEERS_SCRATCH (default ${TMPDIR:-/tmp}/corral-peers), PEERS_LOAD_SECONDS (10),
# PEERS_CHAOS_SECONDS (10), PEERS_KILLS (20). Logs of the last run stay in PEERS_SCRATCH.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
SCRATCH="${PEERS_SCRATCH:-${TMPDIR:-/tmp}/corral-peers}"
ROWS="${PEERS_ROWS:-corral corral-backoff0 cluster-rr cluster-none pm2}"
LOAD_SECONDS="${PEERS_LOAD_SECONDS:-10}"
CHAOS_SECONDS="${PEERS_CHAOS_SECONDS:-10}"
KILLS="${PEERS_KILLS:-20}"
WORKERS=2
WARMUP_SECONDS=2
KILL_EVERY_MS=500
# Kills for measure 4 are this far apart once the replacement answers: more than PM2's
# min_uptime (1 s), so PM2 never counts them as unstable restarts.
RESTART_GAP_MS=1000
RELOAD_TIMEOUT=10 # seconds to wait for a reload to finish
START_TIMEOUT=30  # seconds for a supervisor to have every worker answering
RESULTS="$HERE/results.md"

# shellcheck source=benches/lib.sh
source "$HERE/../lib.sh"

SUP_PID=""   # the process whose children are the workers (and whose RSS/CPU we report)
SUP_LOG=""   # its stdout (JSON events for corral and cluster.js)

# ---------------------------------------------------------------------------------------
# What the run needs.

install() {
  command -v node >/dev/null || die "Node.js is needed (apt-get install nodejs)"
  command -v npm >/dev/null || die "npm is needed (apt-get install npm)"
  install_wrk
  install_pm2
  say "building corral (cargo build --release)"
  (cd "$ROOT" && cargo build --release --locked --quiet)
  CORRAL="${CARGO_TARGET_DIR:-$ROOT/target}/release/corral"
  [[ -x "$CORRAL" ]] || die "no corral binary at $CORRAL"
}

# A TCP port free on every interface (cluster and PM2 workers listen on all of them).
free_port() {
  node -e 'const s = require("net").createServer();
    s.listen(0, () => { console.log(s.address().port); s.close(); });'
}

# cell WHAT FILE...: a table cell from a helper's JSON result (benches/peers/cells.js).
cell() { node "$HERE/cells.js" "$@"; }

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# ---------------------------------------------------------------------------------------
# The supervisors: start (sets SUP_PID, SUP_LOG), reload (0 once finished), stop.

start_sup() {
  local kind="$1" port="$2" dir="$3"
  mkdir -p "$dir"
  SUP_LOG="$dir/supervisor.out"
  case "$kind" in
    corral | corral-backoff0)
      local extra=()
      [[ "$kind" == corral-backoff0 ]] && extra=(--backoff 0)
      "${ORPHAN_GUARD[@]}" "$CORRAL" --no-ui --log-format json -w "$WORKERS" --listen "127.0.0.1:$port" "${extra[@]}" \
        -- node "$ROOT/assets/server.js" >"$SUP_LOG" 2>"$dir/supervisor.err" &
      track_sup
      ;;
    cluster-rr | cluster-none)
      NODE_CLUSTER_SCHED_POLICY="${kind#cluster-}" PORT="$port" \
        "${ORPHAN_GUARD[@]}" node "$HERE/cluster.js" "$WORKERS" >"$SUP_LOG" 2>"$dir/supervisor.err" &
      track_sup
      ;;
    pm2)
      pm2_home
      PORT="$port" pm2_cmd start "$ROOT/assets/server.js" -i "$WORKERS" --name peers-server \
        >>"$SUP_LOG" 2>&1 || die "pm2 start failed (see $SUP_LOG)"
      SUP_PID="$(cat "$PM2_DIR/pm2.pid")"
      ;;
    *) die "unknown supervisor '$kind'" ;;
  esac
  bounded $((START_TIMEOUT + 5)) node "$HERE/lib.js" wait-serving "$port" "$SUP_PID" "$WORKERS" \
    "$START_TIMEOUT" || die "$kind did not serve on port $port (logs in $dir)"
}

log_has() { grep -q "\"event\":\"$2\"" "$1"; }

reload_sup() {
  local kind="$1"
  case "$kind" in
    corral | corral-backoff0 | cluster-rr | cluster-none)
      kill -HUP "$SUP_PID"
      wait_until "$RELOAD_TIMEOUT" log_has "$SUP_LOG" reload_finished
      ;;
    pm2) pm2_cmd reload peers-server >>"$SUP_LOG" 2>&1 ;;
  esac
}

stop_sup() {
  local kind="$1"
  case "$kind" in
    pm2)
      pm2_cmd delete peers-server >>"$SUP_LOG" 2>&1 || warn "pm2 delete failed"
      wait_until 10 no_children "$SUP_PID" || warn "PM2 workers still running after delete"
      ;;
    *) stop_pid "$SUP_PID" 10 ;;
  esac
}

# Fails (with a note in the details) when the supervisor itself died during a measure.
check_alive() {
  local label="$1" what="$2"
  if ! alive "$SUP_PID"; then
    DETAILS+=("- **$label: the supervisor (pid $SUP_PID) died during $what.**")
    return 1
  fi
}

# ---------------------------------------------------------------------------------------
# The measures.

TABLE=()
DETAILS=()

# wrk_load PORT OUTFILE [WRK ARGS...]: LOAD_SECONDS of wrk on two threads, without the latency
# distribution that lib.sh's wrk_run asks for; sets WRK_RPS, WRK_ERR (socket errors and
# non-2xx, if any), WRK_CPU (the supervisor's CPU over the run, % of one core) and WRK_SUMMARY.
wrk_load() {
  local port="$1" file="$2" out t0 c0
  shift 2
  t0="$(now_ns)"
  c0="$(cpu_ticks "$SUP_PID")"
  bounded $((LOAD_SECONDS + 15)) wrk -t2 -c32 -d"${LOAD_SECONDS}s" --timeout 2s "$@" \
    "http://127.0.0.1:$port/" >"$file"
  WRK_CPU="$(cpu_since "$SUP_PID" "$t0" "$c0" 1)"
  out="$(cat "$file")"
  WRK_RPS="$(awk '/^Requests\/sec:/ { printf "%d", $2 }' <<<"$out")"
  WRK_ERR="$(wrk_errors <<<"$out")"
  WRK_SUMMARY="$(awk '/Latency|Requests\/sec|Socket errors|Non-2xx/' <<<"$out" | one_line)"
}

measure_row() {
  local kind="$1" label="$2" dir port t0 t1
  dir="$WORK/$kind"
  local c_rps="–" c_rps_close="–" c_chaos="–" c_reload="–" c_restart="–" c_rss="–" c_cpu="–"

  # Instance 1: throughput, the supervisor's footprint under it, then a rolling reload.
  port="$(free_port)"
  say "[$label] throughput on port $port"
  start_sup "$kind" "$port" "$dir/1"
  bounded $((WARMUP_SECONDS + 15)) wrk -t2 -c32 -d"${WARMUP_SECONDS}s" "http://127.0.0.1:$port/" >/dev/null
  wrk_load "$port" "$dir/1/wrk.txt"
  c_rps="$WRK_RPS${WRK_ERR:+ (wrk: $WRK_ERR)}"
  c_cpu="$WRK_CPU %"
  DETAILS+=("- $label, wrk keep-alive: $WRK_SUMMARY")
  say "[$label] throughput, a new connection per request"
  wrk_load "$port" "$dir/1/wrk-close.txt" -H "Connection: close"
  c_rps_close="$WRK_RPS${WRK_ERR:+ (wrk: $WRK_ERR)}"
  c_cpu="$c_cpu / $WRK_CPU %"
  DETAILS+=("- $label, wrk new connections: $WRK_SUMMARY")
  c_rss="$(awk -v k="$(rss_kib "$SUP_PID")" 'BEGIN { printf "%.1f MiB", k / 1024 }')"

  say "[$label] rolling reload under load"
  "${ORPHAN_GUARD[@]}" node "$HERE/load.js" --port "$port" --concurrency 8 --seconds 60 >"$dir/1/reload-load.json" &
  local load_pid=$!
  STARTED+=("$load_pid")
  sleep 1
  t0="$(now_ns)"
  local reloaded=yes
  reload_sup "$kind" || reloaded=no
  t1="$(now_ns)"
  sleep 1
  kill -INT "$load_pid"
  wait_until 10 not_alive "$load_pid" || warn "load client did not stop"
  stop_pid "$load_pid" 1
  local secs
  secs="$(awk -v ns="$((t1 - t0))" 'BEGIN { printf "%.2f", ns / 1e9 }')"
  if [[ "$reloaded" == yes ]]; then
    c_reload="$(cell reload "$dir/1/reload-load.json") (reload ${secs} s)"
  elif [[ "$kind" == corral* ]]; then
    c_reload="n/a (no reload)" # until corral's SIGHUP reload lands: no reload_finished
  else
    c_reload="reload did not finish in ${RELOAD_TIMEOUT} s"
  fi
  DETAILS+=("- $label, reload (finished: $reloaded, ${secs} s): $(cat "$dir/1/reload-load.json")")
  check_alive "$label" "the reload" || c_reload="supervisor died"
  stop_sup "$kind"

  # Instance 2: kill → replacement accepting, on fresh workers with no restart history.
  port="$(free_port)"
  say "[$label] restart reaction ($KILLS kills) on port $port"
  start_sup "$kind" "$port" "$dir/2"
  bounded 90 node "$HERE/restart.js" --port "$port" --parent "$SUP_PID" --workers "$WORKERS" \
    --kills "$KILLS" --gap-ms "$RESTART_GAP_MS" --timeout-ms 5000 --max-seconds 40 \
    >"$dir/2/restart.json"
  c_restart="$(cell restart "$dir/2/restart.json" "$KILLS")"
  DETAILS+=("- $label, restart samples (ms, in kill order): $(cell restart-samples "$dir/2/restart.json")")
  check_alive "$label" "the kills" || c_restart="supervisor died"
  stop_sup "$kind"

  # Instance 3: a worker SIGKILLed every 500 ms under load.
  port="$(free_port)"
  say "[$label] SIGKILL every ${KILL_EVERY_MS} ms for ${CHAOS_SECONDS} s on port $port"
  start_sup "$kind" "$port" "$dir/3"
  bounded $((CHAOS_SECONDS + 20)) node "$HERE/load.js" --port "$port" --concurrency 8 \
    --seconds "$CHAOS_SECONDS" --kill-parent "$SUP_PID" --kill-every-ms "$KILL_EVERY_MS" \
    >"$dir/3/chaos.json"
  c_chaos="$(cell chaos "$dir/3/chaos.json")"
  DETAILS+=("- $label, under SIGKILLs: $(cat "$dir/3/chaos.json")")
  check_alive "$label" "the SIGKILLs" || c_chaos="supervisor died"
  if [[ "$kind" == pm2 ]]; then
    DETAILS+=("- $label, PM2's view after the SIGKILLs: $(pm2_cmd jlist 2>/dev/null | cell pm2-status || echo unavailable)")
  fi
  stop_sup "$kind"

  TABLE+=("| $label | $c_rps | $c_rps_close | $c_chaos | $c_reload | $c_restart | $c_rss | $c_cpu |")
}

label_of() {
  case "$1" in
    corral) echo "corral (defaults)" ;;
    corral-backoff0) echo "corral --backoff 0" ;;
    cluster-rr) echo "Node cluster, rr" ;;
    cluster-none) echo "Node cluster, none" ;;
    pm2) echo "PM2 cluster mode" ;;
    *) echo "$1" ;;
  esac
}

# ---------------------------------------------------------------------------------------

install
clean_scratch
WORK="$(mktemp -d "$SCRATCH/run.XXXXXX")"
say "logs of this run: $WORK"

for kind in $ROWS; do
  measure_row "$kind" "$(label_of "$kind")"
done
pm2_kill

rev="$(corral_rev)"
{
  echo "# corral and its peers"
  echo
  echo "The same Node HTTP server (\`assets/server.js\`), $WORKERS workers, all traffic on 127.0.0.1."
  echo
  echo "- machine: $(machine)"
  echo "- versions: corral $rev (release build), Node $(node --version), PM2 $(node -p "require('$SCRATCH/node_modules/pm2/package.json').version"), $(wrk_version)"
  echo "- command: \`benches/peers/run.sh\`$( [[ -n "${PEERS_ROWS:-}${PEERS_LOAD_SECONDS:-}${PEERS_CHAOS_SECONDS:-}${PEERS_KILLS:-}" ]] && echo " with PEERS_ROWS='$ROWS' PEERS_LOAD_SECONDS=$LOAD_SECONDS PEERS_CHAOS_SECONDS=$CHAOS_SECONDS PEERS_KILLS=$KILLS")"
  echo "- run on $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "| supervisor | req/s, keep-alive (wrk -t2 -c32 -d${LOAD_SECONDS}s) | req/s, a new connection per request | requests OK while a worker is SIGKILLed every ${KILL_EVERY_MS} ms (${CHAOS_SECONDS} s) | failed requests during a rolling reload | SIGKILL → replacement accepting, median of $KILLS | supervisor RSS | supervisor CPU under wrk (keep-alive / new connections) |"
  echo "|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${TABLE[@]}"
  echo
  echo "How each is measured:"
  echo
  echo "- the supervisors: \`corral --no-ui --log-format json -w 2 --listen 127.0.0.1:PORT [--backoff 0] -- node assets/server.js\`;"
  echo "  \`NODE_CLUSTER_SCHED_POLICY=rr|none PORT=PORT node benches/peers/cluster.js 2\` (re-forks a dead worker at once, SIGHUP = rolling reload);"
  echo "  \`PORT=PORT pm2 start assets/server.js -i 2\` with a private PM2_HOME. corral's workers get the socket corral bound on 127.0.0.1; cluster's and PM2's call \`listen(PORT)\` (all interfaces)."
  echo "- req/s: wrk after a ${WARMUP_SECONDS} s warm-up, with keep-alive, then with \`-H 'Connection: close'\` (a new connection per request: the accept path, which Node's rr primary and PM2's God daemon sit in). Supervisor RSS is VmRSS of the primary (corral, the cluster primary, PM2's God daemon) after those runs; CPU is its utime+stime over each run, in % of one core."
  echo "- requests OK under SIGKILLs: \`benches/peers/load.js\`, 8 concurrent clients, each request a fresh connection with a 2 s timeout, while one worker (the supervisor's children, in turn) gets SIGKILL every ${KILL_EVERY_MS} ms. A fresh supervisor for this measure."
  echo "- reload: the same client for 1 s, then the reload (corral and cluster: SIGHUP, then the \`reload_finished\` event, at most ${RELOAD_TIMEOUT} s; PM2: \`pm2 reload\`), then 1 s more: failed of all requests."
  echo "- SIGKILL → accepting: \`benches/peers/restart.js\` kills a worker, then polls with fresh connections (two at a time) until a pid that was not alive before the kill answers; kills are ${RESTART_GAP_MS} ms apart after the replacement answers; a fresh supervisor, so no worker starts with a restart history."
  echo
  echo "Reading it:"
  echo
  echo "- corral (defaults) restarts a worker at once only after a stable run (\`--min-uptime\`, 10 s); a worker killed sooner waits 100 ms, 200 ms, 400 ms … (up to 30 s) before its restart, per slot (docs/supervision.md#restarts). Killing workers every 500 ms or 1 s is exactly such a crash loop, so that row measures the backoff policy; \`corral --backoff 0\` restarts at once, as Node's cluster (here) and PM2 (\`restart_delay\` 0) do, and measures the mechanism."
  echo "- With the backoff, both slots can be waiting at once: then no worker accepts, connections wait in the listen queue corral holds (none is refused) and the ones waiting over 2 s count as failed. Fewer kills happen in that row because the killer finds no worker to kill."
  echo "- Keep-alive req/s measures the workers and wrk on 2 CPUs, not the supervisor (it accepts 32 connections once). corral's workers each run in their own session; with \`kernel.sched_autogroup_enabled=1\` every session is its own CPU-scheduling group, so corral's two workers get a larger CPU share against wrk than Node's or PM2's, whose workers share one session. Expect ±15 % between runs; the new-connection column and the supervisor CPU are where the architectures differ."
  echo "- PM2 stops a worker with SIGINT; assets/server.js handles SIGTERM and corral's shutdown message but not SIGINT, so under \`pm2 reload\` the old worker exits at once rather than closing its server."
  echo
  echo "Details:"
  echo
  printf '%s\n' "${DETAILS[@]}"
} >"$RESULTS"
cat "$RESULTS"
