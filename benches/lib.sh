# shellcheck shell=bash
# The helpers the bench scripts (node_cluster.sh, share_binds.sh, peers/run.sh) share, so a fix
# to how they start, time and clean up processes lands in all of them at once. Sourced after a
# script's `set -euo pipefail` and its knobs; it installs the cleanup traps as it is sourced.
# What the functions read from the script, when called: ROOT (the checkout), SCRATCH (install_pm2,
# clean_scratch), SUP_PID and CONNS (wrk_run, throughput), WARMUP and SECS (throughput).

ME="${0##*/}" # the script's name, which starts its warnings
CLK_TCK="$(getconf CLK_TCK)"

STARTED=() # pids of the background processes this script started
PM2=""     # the pm2 CLI, once installed
PM2_DIR="" # this run's private PM2_HOME, once PM2 was started

# Every process a script starts directly gets SIGTERM if the script dies, even in a way that
# skips the cleanup trap (setpriv sets the parent-death signal, then execs). PM2's daemon
# detaches, so it never gets it: a run killed outright leaves it, and the next run stops it
# (clean_scratch).
ORPHAN_GUARD=()
if setpriv --pdeathsig TERM -- true 2>/dev/null; then ORPHAN_GUARD=(setpriv --pdeathsig TERM --); fi

say() { printf '%s\n' "$*" >&2; }
warn() { say "$ME: $*"; }
die() { warn "$@"; exit 1; }

# A zombie still answers kill -0: only its state says it is gone.
proc_state() { local s; s="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1; s="${s##*) }"; printf '%s' "${s%% *}"; }
alive() { kill -0 "$1" 2>/dev/null && [[ "$(proc_state "$1")" != Z ]]; }
not_alive() { ! alive "$1"; }

# wait_until SECONDS CMD...: runs CMD every 50 ms until it succeeds; fails at the deadline.
wait_until() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.05
  done
}

forget() {
  local kept=() p
  for p in "${STARTED[@]}"; do [[ "$p" == "$1" ]] || kept+=("$p"); done
  STARTED=("${kept[@]}")
}

# stop_pid PID GRACE: SIGTERM, up to GRACE seconds, then SIGKILL; reaps it if it is ours.
stop_pid() {
  local pid="$1" grace="$2"
  if alive "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    wait_until "$grace" not_alive "$pid" || kill -KILL "$pid" 2>/dev/null || true
    wait_until 5 not_alive "$pid" || warn "pid $pid survived SIGKILL"
  fi
  wait "$pid" 2>/dev/null || true
  forget "$pid"
}

# bounded SECONDS CMD...: runs CMD under a timeout, in the background, and waits for it, so a
# SIGTERM or SIGINT to this script is handled at once (bash runs traps only between
# foreground commands) and the cleanup stops CMD too.
bounded() {
  local limit="$1" pid rc=0
  shift
  "${ORPHAN_GUARD[@]}" timeout "$limit" "$@" &
  pid=$!
  STARTED+=("$pid")
  wait "$pid" || rc=$?
  forget "$pid"
  return "$rc"
}

# track_sup, right after starting the measured process in the background: SUP_PID is whose CPU
# wrk_run samples, and STARTED makes the cleanup stop it if the script dies first.
track_sup() {
  SUP_PID=$!
  STARTED+=("$SUP_PID")
}

# One private PM2_HOME a run, so the machine's own PM2 (if any) is never touched.
pm2_home() {
  if [[ -z "$PM2_DIR" ]]; then PM2_DIR="$(mktemp -d "$SCRATCH/pm2-home.XXXXXX")"; fi
}

pm2_cmd() { PM2_HOME="$PM2_DIR" bounded 60 "$PM2" "$@"; }

# PM2's daemon detaches: stopping the processes a script started leaves it and its workers
# running, so both the end of a run and the cleanup ask it to go.
pm2_kill() {
  if [[ -n "$PM2_DIR" ]]; then pm2_cmd kill >/dev/null 2>&1 || true; fi
  PM2_DIR=""
}

cleanup() {
  local rc=$? pid
  trap - EXIT INT TERM
  for pid in "${STARTED[@]}"; do stop_pid "$pid" 5; done
  pm2_kill
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------------------
# What a run needs.

install_wrk() {
  command -v wrk >/dev/null && return 0
  say "installing wrk (Debian package)"
  local sudo=()
  ((EUID == 0)) || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq wrk >/dev/null
}

# install_pm2 [no]: sets PM2 to the CLI in SCRATCH and installs it there when missing, unless
# told no (clean_scratch still wants PM2 to stop an earlier run's daemon). Never globally: the
# run must not change the machine's PM2.
install_pm2() {
  mkdir -p "$SCRATCH"
  PM2="$SCRATCH/node_modules/.bin/pm2"
  if [[ "${1:-}" != no && ! -x "$PM2" ]]; then
    say "installing PM2 into $SCRATCH (npm, not global)"
    npm install --prefix "$SCRATCH" --no-audit --no-fund --loglevel=error pm2 >&2
  fi
}

# Sets CORRAL. nice: the machine is shared, and a stale build takes minutes of both CPUs.
build_corral() {
  CORRAL="${CARGO_TARGET_DIR:-$ROOT/target}/release/corral"
  say "building corral (nice cargo build --release --locked; minutes when stale)"
  (cd "$ROOT" && nice cargo build --release --locked --quiet)
  [[ -x "$CORRAL" ]] || die "no corral binary at $CORRAL"
}

# What an earlier run left behind if it was killed outright: its PM2 daemon and its logs.
clean_scratch() {
  local home pid
  for home in "$SCRATCH"/pm2-home.*; do
    [[ -d "$home" ]] || continue
    pid="$(cat "$home/pm2.pid" 2>/dev/null || true)"
    if [[ -n "$pid" ]] && alive "$pid" && [[ -x "$PM2" ]]; then
      say "stopping the PM2 daemon an earlier run left ($home)"
      PM2_HOME="$home" timeout 30 "$PM2" kill >/dev/null 2>&1 || true
    fi
    rm -rf "$home"
  done
  rm -rf "$SCRATCH"/run.*
}

# PM2's God daemon forks the workers and lives on after `pm2 delete`: gone children are how
# a script knows PM2's workers stopped.
no_children() { [[ -z "$(cat /proc/"$1"/task/*/children 2>/dev/null | tr -d ' \n')" ]]; }

# ---------------------------------------------------------------------------------------
# Measuring.

now_ns() { date +%s%N; }

# cpu_ticks PID: utime + stime so far, 0 once PID is gone (its death is noted elsewhere).
cpu_ticks() {
  local s f
  s="$(cat "/proc/$1/stat" 2>/dev/null)" || { echo 0; return; }
  s="${s##*) }" # the command name may hold spaces and parentheses (PM2's does)
  read -r -a f <<<"$s"
  echo $((f[11] + f[12]))
}

# cpu_since PID T0 C0 DECIMALS: PID's CPU since now_ns gave T0 and cpu_ticks gave C0, in % of
# one core.
cpu_since() {
  local c1 t1
  c1="$(cpu_ticks "$1")"
  t1="$(now_ns)"
  awk -v t="$((c1 - $3))" -v hz="$CLK_TCK" -v ns="$((t1 - $2))" -v d="$4" \
    'BEGIN { printf "%." d "f", 100 * (t / hz) / (ns / 1e9) }'
}

# wrk_run PORT SECONDS OUTFILE [WRK ARGS...]: CONNS connections on one thread, with latencies;
# sets RPS, P99, ERRS (socket errors and non-2xx, if any), CPU (SUP_PID's CPU over the run, %
# of one core), SUMMARY.
wrk_run() {
  local port="$1" secs="$2" file="$3" out t0 c0
  shift 3
  t0="$(now_ns)"
  c0="$(cpu_ticks "$SUP_PID")"
  bounded $((secs + 15)) wrk -t1 -c"$CONNS" -d"${secs}s" --timeout 2s --latency "$@" \
    "http://127.0.0.1:$port/" >"$file"
  CPU="$(cpu_since "$SUP_PID" "$t0" "$c0" 0)"
  out="$(cat "$file")"
  RPS="$(awk '/^Requests\/sec:/ { printf "%d", $2 }' <<<"$out")"
  P99="$(awk '$1 == "99%" { print $2 }' <<<"$out")"
  ERRS="$(wrk_errors <<<"$out")"
  SUMMARY="$(awk '/Latency  |Requests\/sec|Socket errors|Non-2xx/' <<<"$out" | one_line)"
}

# throughput TAG PORT DIR CPU_WHAT: the warm-up (WARMUP s), then SECS of wrk_run with keep-alive
# and SECS with a new connection per request, their outputs in DIR. Sets the row's cells:
# TP_KA and TP_CL (req/s, with wrk's errors), TP_KA_P99, TP_CL_P99, TP_CPU ("KA % / CL %"), the
# bare TP_KA_RPS and TP_CL_RPS for ratios, and TP_DETAILS (a line each, CPU_WHAT naming whose
# CPU it is).
throughput() {
  local tag="$1" port="$2" dir="$3" cpu_what="$4"
  say "[$tag] warm-up ${WARMUP} s, then keep-alive ${SECS} s"
  bounded $((WARMUP + 15)) wrk -t1 -c"$CONNS" -d"${WARMUP}s" "http://127.0.0.1:$port/" >/dev/null
  wrk_run "$port" "$SECS" "$dir/wrk-keepalive.txt"
  TP_KA_RPS="$RPS"
  TP_KA="$RPS${ERRS:+ (wrk: $ERRS)}"
  TP_KA_P99="$P99"
  TP_CPU="$CPU %"
  TP_DETAILS=("- $tag, keep-alive: $SUMMARY; p99 $P99; $cpu_what $CPU %")
  say "[$tag] a new connection per request, ${SECS} s"
  wrk_run "$port" "$SECS" "$dir/wrk-close.txt" -H "Connection: close"
  TP_CL_RPS="$RPS"
  TP_CL="$RPS${ERRS:+ (wrk: $ERRS)}"
  TP_CL_P99="$P99"
  TP_CPU="$TP_CPU / $CPU %"
  TP_DETAILS+=("- $tag, new connections: $SUMMARY; p99 $P99; $cpu_what $CPU %")
}

one_line() { tr -s ' \n' ' ' | sed 's/^ //; s/ $//'; }
wrk_errors() { awk '/Socket errors|Non-2xx/' | one_line; }

# ---------------------------------------------------------------------------------------
# The results file.

# "+dirty" when src differs from HEAD: then the numbers are not that commit's.
corral_rev() {
  local rev
  rev="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  git -C "$ROOT" diff --quiet HEAD -- src 2>/dev/null || rev="$rev+dirty"
  printf '%s' "$rev"
}

machine() {
  printf '%s' "$(nproc) CPUs, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), Linux $(uname -r), kernel.sched_autogroup_enabled=$(cat /proc/sys/kernel/sched_autogroup_enabled 2>/dev/null || echo n/a)"
}

wrk_version() { wrk -v 2>&1 | head -1 | cut -d' ' -f1-2; }
