#!/usr/bin/env bash
# What sharing an unmodified program's own bind() costs (docs/sharing-a-port.md), on this machine,
# in one run, all traffic on 127.0.0.1:
#
# 1. The round trip of one intercepted call: benches/share_binds/bindloop.c (compiled here with
#    gcc) times N bind()s of 127.0.0.1:PORT (socket, bind, close; only bind timed), N bind()s of
#    port 0 (which corral lets go ahead) and N shutdown(SHUT_WR)s of a fresh socketpair (which
#    the filter lets through without asking corral: SHUT_WR cannot stop a listener), each
#      alone                 ./bindloop …
#      share-binds on        corral --no-ui -w 1 --restart never -- ./bindloop …
#      share-binds off       corral --no-ui -w 1 --restart never --share-binds off -- ./bindloop …
#    SB_REPEATS times each; the median of the runs' medians is reported. on − off is corral's
#    round trip (the seccomp notification, corral's answer, the kernel resuming the caller).
# 2. HTTP req/s of an unmodified Python server (benches/share_binds/server.py: http.server's
#    ThreadingHTTPServer, HTTP/1.1 keep-alive, a short body naming its pid, binding
#    127.0.0.1:PORT itself) as one plain process (in a session of its own, as corral's workers
#    are), under `corral -w 1 --share-binds off` and `corral -w 1` (what the filter costs one
#    worker), and under `corral -w 2` (both workers bind the same port; corral gives both the
#    group's one socket). wrk with
#    keep-alive and with `Connection: close`, req/s and p99, the split of responses by pid,
#    and corral's own CPU over each run.
# Prints a Markdown table, also saved to benches/share_binds/results.md. About 2–3 minutes.
#
#   benches/share_binds.sh
#
# It installs what is missing: wrk (Debian package), and builds corral (nice cargo build
# --release --locked). gcc and python3 must be installed.
# Knobs (environment): SB_ROWS (default "one corral-w1-off corral-w1 corral-w2"), SB_BINDS (2000 calls per
# bindloop run), SB_REPEATS (5 bindloop runs per cell), SB_SECONDS (10, each wrk run),
# SB_WARMUP_SECONDS (2), SB_SPLIT_SECONDS (3), SB_CONNECTIONS (32), SB_SCRATCH (default
# ${TMPDIR:-/tmp}/corral-share-binds), SB_RESULTS (default benches/share_binds/results.md).
# Logs of the last run stay in SB_SCRATCH.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
DIR="$HERE/share_binds"
SPLIT_LUA="$HERE/node_cluster/split.lua" # counts "Hello from worker PID" bodies by pid
SCRATCH="${SB_SCRATCH:-${TMPDIR:-/tmp}/corral-share-binds}"
ROWS="${SB_ROWS:-one corral-w1-off corral-w1 corral-w2}"
BINDS="${SB_BINDS:-2000}"
REPEATS="${SB_REPEATS:-5}"
SECS="${SB_SECONDS:-10}"
WARMUP="${SB_WARMUP_SECONDS:-2}"
SPLIT_SECS="${SB_SPLIT_SECONDS:-3}"
CONNS="${SB_CONNECTIONS:-32}"
RESULTS="${SB_RESULTS:-$DIR/results.md}"
START_TIMEOUT=30 # seconds for every worker to answer

# shellcheck source=benches/lib.sh
source "$HERE/lib.sh"

SUP_PID="" # the server process (one) or corral

# ---------------------------------------------------------------------------------------
# What the run needs.

install() {
  command -v gcc >/dev/null || die "gcc is needed (apt-get install gcc)"
  command -v python3 >/dev/null || die "python3 is needed"
  command -v curl >/dev/null || die "curl is needed (apt-get install curl)"
  install_wrk
  build_corral
  "$CORRAL" --help 2>/dev/null | grep -q -- '--share-binds' || die "this corral has no --share-binds option"
}

# A TCP port free on 127.0.0.1.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

us() { awk -v ns="$1" 'BEGIN { if (ns == "") print "–"; else printf "%.2f", ns / 1000 }'; }
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print ""; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.0f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
field() { sed -n "s/.*\\<$1=\\([0-9]*\\).*/\\1/p" "$2"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "" && b > 0) printf "%.2f", a / b; else print "n/a" }'; }

# ---------------------------------------------------------------------------------------
# 1. One intercepted call.

# bindloop_run HOW WHAT OUT: one run of bindloop (WHAT: "bind PORT", "bind0", "shutdown"),
# HOW: alone, on (corral, share-binds on), off (corral --share-binds off).
bindloop_run() {
  local how="$1" what="$2" out="$3" cmd
  # shellcheck disable=SC2206 # WHAT is "bind PORT" or one word
  cmd=("$WORK/bindloop" $what "$BINDS" "$out")
  rm -f "$out"
  case "$how" in
    alone) bounded 60 "${cmd[@]}" ;;
    on) bounded 60 "$CORRAL" --no-ui -w 1 --restart never -- "${cmd[@]}" ;;
    off) bounded 60 "$CORRAL" --no-ui -w 1 --restart never --share-binds off -- "${cmd[@]}" ;;
  esac >>"$WORK/bindloop.log" 2>&1 || warn "bindloop $what ($how) failed (see $WORK/bindloop.log)"
  [[ -s "$out" ]]
}

declare -A MED MEAN P99
BIND_TABLE=()
BIND_DETAILS=()

measure_calls() {
  local port kind what how i f
  declare -A meds means p99s ok
  port="$(free_port)"
  for kind in bind bind0 shutdown; do
    what="$kind"
    [[ "$kind" == bind ]] && what="bind $port"
    # The three interleaved, so that the machine's load drifts over all of them alike.
    for ((i = 1; i <= REPEATS; i++)); do
      for how in alone on off; do
        f="$WORK/bindloop-$kind-$how-$i.txt"
        if bindloop_run "$how" "$what" "$f"; then
          meds[$how]+=" $(field median_ns "$f")"
          means[$how]+=" $(field mean_ns "$f")"
          p99s[$how]+=" $(field p99_ns "$f")"
          ok[$how]=$((${ok[$how]:-0} + 1))
        fi
      done
    done
    for how in alone on off; do
      MED[$kind.$how]="$(printf '%s\n' ${meds[$how]:-} | median)"
      MEAN[$kind.$how]="$(printf '%s\n' ${means[$how]:-} | median)"
      P99[$kind.$how]="$(printf '%s\n' ${p99s[$how]:-} | median)"
      BIND_DETAILS+=("- $kind, $how: medians${meds[$how]:- none} ns; means${means[$how]:- none} ns; p99s${p99s[$how]:- none} ns (${ok[$how]:-0} of $REPEATS runs)")
    done
    meds=() means=() p99s=() ok=()
  done
}

# "2.34 (mean 3.10, p99 8.00)" µs
call_cell() {
  local k="$1"
  [[ -n "${MED[$k]}" ]] || { echo "failed"; return; }
  echo "$(us "${MED[$k]}") (mean $(us "${MEAN[$k]}"), p99 $(us "${P99[$k]}"))"
}
diff_cell() {
  local a="${MED[$1]}" b="${MED[$2]}"
  [[ -n "$a" && -n "$b" ]] || { echo "–"; return; }
  awk -v a="$a" -v b="$b" 'BEGIN { printf "%+.2f", (a - b) / 1000 }'
}

bind_table() {
  local kind label
  for kind in bind bind0 shutdown; do
    case "$kind" in
      bind) label="\`bind(127.0.0.1:PORT)\` of a TCP socket (on: corral puts the group's socket there)" ;;
      bind0) label="\`bind(127.0.0.1:0)\` (on: sent to corral, which lets it go ahead)" ;;
      shutdown) label="\`shutdown(SHUT_WR)\` of a fresh socketpair (on: not sent to corral: the filter lets SHUT_WR through)" ;;
    esac
    BIND_TABLE+=("| $label | $(call_cell "$kind.alone") | $(call_cell "$kind.on") | $(call_cell "$kind.off") | **$(diff_cell "$kind.on" "$kind.off")** | $(diff_cell "$kind.off" "$kind.alone") |")
  done
}

# ---------------------------------------------------------------------------------------
# 2. HTTP req/s.

SKIP_WHY=""

# serving PORT N: N distinct pids answered on PORT (fresh connections, up to 200 requests).
serving() {
  local port="$1" want="$2" i body pids=""
  for ((i = 0; i < 200; i++)); do
    body="$(curl -s --max-time 1 "http://127.0.0.1:$port/" 2>/dev/null)" || return 1
    [[ "$body" =~ ^Hello\ from\ worker\ ([0-9]+) ]] || return 1
    [[ " $pids " == *" ${BASH_REMATCH[1]} "* ]] || pids="$pids ${BASH_REMATCH[1]}"
    (($(wc -w <<<"$pids") >= want)) && return 0
  done
  return 1
}

start_row() {
  local kind="$1" port="$2" dir="$3" workers
  mkdir -p "$dir"
  SKIP_WHY=""
  case "$kind" in
    one)
      # In a session of its own, as corral's workers are (see "Reading it": autogroups).
      # Not a process group leader here, so setsid execs rather than forks: $! is the server.
      workers=1
      "${ORPHAN_GUARD[@]}" setsid python3 "$DIR/server.py" "$port" >"$dir/server.out" 2>"$dir/server.err" &
      ;;
    corral-w1-off)
      workers=1
      "${ORPHAN_GUARD[@]}" "$CORRAL" --no-ui -w 1 --share-binds off -- python3 "$DIR/server.py" "$port" \
        >"$dir/server.out" 2>"$dir/server.err" &
      ;;
    corral-w*)
      workers="${kind#corral-w}"
      "${ORPHAN_GUARD[@]}" "$CORRAL" --no-ui -w "$workers" -- python3 "$DIR/server.py" "$port" \
        >"$dir/server.out" 2>"$dir/server.err" &
      ;;
    *) die "unknown row '$kind'" ;;
  esac
  track_sup
  if ! wait_until "$START_TIMEOUT" serving "$port" "$workers"; then
    SKIP_WHY="did not answer from $workers distinct pids on port $port within ${START_TIMEOUT} s: $(tail -1 "$dir/server.err" 2>/dev/null)"
    return 1
  fi
}

# split PORT OUTFILE [WRK ARGS]: "52.1 / 47.9" (% of responses by pid, largest first).
split_run() {
  local port="$1" file="$2"
  shift 2
  bounded $((SPLIT_SECS + 15)) wrk -t1 -c"$CONNS" -d"${SPLIT_SECS}s" --timeout 2s -s "$SPLIT_LUA" "$@" \
    "http://127.0.0.1:$port/" >"$file"
  awk '$1 == "split" && $2 != "other" { n[$2] = $3; t += $3 }
    END {
      if (t == 0) { print "none"; exit }
      k = 0; for (p in n) s[++k] = 100 * n[p] / t
      for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (s[j] > s[i]) { x = s[i]; s[i] = s[j]; s[j] = x }
      for (i = 1; i <= k; i++) printf "%s%.1f", (i > 1 ? " / " : ""), s[i]
      printf " (%d responses)\n", t
    }' "$file"
}

declare -A KA_RPS CL_RPS
HTTP_TABLE=()
HTTP_DETAILS=()
NOTES=()

label_of() {
  case "$1" in
    one) echo "one process: \`setsid python3 server.py PORT\`" ;;
    corral-w1-off) echo "\`corral --no-ui -w 1 --share-binds off -- python3 server.py PORT\`" ;;
    corral-w*) echo "\`corral --no-ui -w ${1#corral-w} -- python3 server.py PORT\`" ;;
    *) echo "$1" ;;
  esac
}

measure_row() {
  local kind="$1" label port dir
  label="$(label_of "$kind")"
  dir="$WORK/$kind"
  port="$(free_port)"
  say "[$kind] starting on port $port"
  if ! start_row "$kind" "$port" "$dir"; then
    say "[$kind] skipped: $SKIP_WHY"
    NOTES+=("- **$label: not run** — $SKIP_WHY.")
    HTTP_TABLE+=("| $label | not run | – | – | – | – | – |")
    stop_pid "$SUP_PID" 10
    return 0
  fi
  local cpu split
  throughput "$kind" "$port" "$dir" "CPU of the process started"
  KA_RPS[$kind]="$TP_KA_RPS"
  CL_RPS[$kind]="$TP_CL_RPS"
  HTTP_DETAILS+=("${TP_DETAILS[@]}")
  cpu="$TP_CPU"
  say "[$kind] split of responses by pid, new connections, ${SPLIT_SECS} s"
  split="$(split_run "$port" "$dir/split-close.txt" -H "Connection: close")"
  [[ "$kind" == one ]] && cpu="– (the server itself: $cpu)"
  if ! alive "$SUP_PID"; then NOTES+=("- **$label: pid $SUP_PID died during the run.**"); fi
  # Tracebacks of resets when wrk drops its connections at the end of a run are expected.
  if grep -qi 'cannot share\|address already in use\|EADDRINUSE' "$dir/server.err" "$dir/server.out" 2>/dev/null; then
    NOTES+=("- $label said: $(grep -hi 'cannot share\|address already in use\|EADDRINUSE' "$dir/server.err" "$dir/server.out" | head -3 | tr '\n' ' ')")
  fi
  stop_pid "$SUP_PID" 10
  SUP_PID=""
  HTTP_TABLE+=("| $label | $TP_KA | $TP_KA_P99 | $TP_CL | $TP_CL_P99 | $split | $cpu |")
}

# ---------------------------------------------------------------------------------------

install
mkdir -p "$SCRATCH"
rm -rf "$SCRATCH"/run.*
WORK="$(mktemp -d "$SCRATCH/run.XXXXXX")"
say "logs of this run: $WORK"
gcc -O2 -Wall -Wextra -o "$WORK/bindloop" "$DIR/bindloop.c"
LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
T_START=$SECONDS

say "[calls] bindloop: $REPEATS runs × $BINDS calls, alone / share-binds on / off"
measure_calls
bind_table
for kind in $ROWS; do
  measure_row "$kind"
done
LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"
ELAPSED=$((SECONDS - T_START))

RATIOS=()
for kind in $ROWS; do
  [[ "$kind" == one || -z "${KA_RPS[$kind]:-}" || -z "${KA_RPS[one]:-}" ]] && continue
  RATIOS+=("- $(label_of "$kind") / one process: $(ratio "${KA_RPS[$kind]}" "${KA_RPS[one]}")× with keep-alive, $(ratio "${CL_RPS[$kind]}" "${CL_RPS[one]}")× with a new connection per request")
done

if [[ -n "${CL_RPS[corral-w2]:-}" && -n "${CL_RPS[corral-w1]:-}" ]]; then
  RATIOS+=("- $(label_of corral-w2) / $(label_of corral-w1): $(ratio "${KA_RPS[corral-w2]}" "${KA_RPS[corral-w1]}")× with keep-alive, $(ratio "${CL_RPS[corral-w2]}" "${CL_RPS[corral-w1]}")× with a new connection per request")
fi

rev="$(corral_rev)"
knobs=""
[[ -n "${SB_ROWS:-}${SB_BINDS:-}${SB_REPEATS:-}${SB_SECONDS:-}${SB_WARMUP_SECONDS:-}${SB_SPLIT_SECONDS:-}${SB_CONNECTIONS:-}" ]] &&
  knobs=" with SB_ROWS='$ROWS' SB_BINDS=$BINDS SB_REPEATS=$REPEATS SB_SECONDS=$SECS SB_WARMUP_SECONDS=$WARMUP SB_SPLIT_SECONDS=$SPLIT_SECS SB_CONNECTIONS=$CONNS"
{
  echo "# Sharing an unmodified program's own bind(): what it costs"
  echo
  echo "corral's seccomp filter sends each worker's \`bind\` and \`shutdown\` to corral, which answers. One run, all traffic on 127.0.0.1."
  echo
  echo "- machine: $(machine); load average before / after the run: $LOAD_BEFORE / $LOAD_AFTER"
  echo "- versions: corral $rev (release build), $(python3 --version 2>&1), $(gcc --version | head -1), $(wrk_version)"
  echo "- command: \`benches/share_binds.sh\`$knobs (${ELAPSED} s)"
  echo "- run on $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "## One intercepted call, µs per call"
  echo
  echo "Median of $REPEATS runs' medians (in brackets the median of the runs' means and p99s); each run $BINDS timed calls after 100 untimed."
  echo
  echo "| call | alone | \`corral -w 1\`, share-binds on | \`corral -w 1 --share-binds off\` | on − off: corral's round trip | off − alone |"
  echo "|---|---|---|---|---|---|"
  printf '%s\n' "${BIND_TABLE[@]}"
  echo
  echo "## HTTP, an unmodified Python server"
  echo
  echo "\`benches/share_binds/server.py\`: http.server's \`ThreadingHTTPServer\` (a thread per connection), HTTP/1.1 keep-alive, body \`Hello from worker PID\`, binds 127.0.0.1:PORT itself; no request log, TCP_NODELAY, listen backlog 128, \`Connection: close\` answered in kind (why: its docstring)."
  echo
  echo "| server | req/s, keep-alive | p99, keep-alive | req/s, a new connection per request | p99, new connections | split of responses by pid, new connections, % | corral's CPU, % of one core (keep-alive / new connections) |"
  echo "|---|---|---|---|---|---|---|"
  printf '%s\n' "${HTTP_TABLE[@]}"
  echo
  if ((${#RATIOS[@]})); then printf '%s\n' "${RATIOS[@]}"; else echo "- ratios: not available (rows missing)"; fi
  if ((${#NOTES[@]})); then
    echo
    printf '%s\n' "${NOTES[@]}"
  fi
  echo
  echo "How each is measured:"
  echo
  echo "- calls: \`benches/share_binds/bindloop.c\` (gcc -O2) times only the call, with \`clock_gettime(CLOCK_MONOTONIC)\` around it: \`bind\` rounds are socket(TCP), bind(127.0.0.1:PORT), close; \`bind0\` the same with port 0; \`shutdown\` rounds are socketpair(AF_UNIX), shutdown(SHUT_WR), close both. Under corral it is the one worker of \`corral --no-ui -w 1 --restart never -- ./bindloop …\`; corral's first answer for PORT binds the group's socket, which happens in the untimed rounds. With share-binds off no filter is installed: that column is the same program under corral with nothing intercepted."
  echo "- HTTP: \`wrk -t1 -c$CONNS -d${SECS}s --timeout 2s --latency\` after a ${WARMUP} s warm-up, with keep-alive, then with \`-H 'Connection: close'\`; then ${SPLIT_SECS} s of wrk with \`benches/node_cluster/split.lua\` (new connections), which counts the pid in each body. A fresh server (or corral) per row, on a fresh port; a row starts only once as many distinct pids as workers answered. corral's CPU is its utime+stime over each run (its threads, not the workers')."
  echo
  echo "Reading it:"
  echo
  echo "- This machine has $(nproc) CPUs shared by wrk, the servers and corral, and other engineers' builds and tests ran on it at the same time (see the load average): the numbers are noisy, expect ±15 % or more between runs, and single microseconds in the call table move by tens of percent."
  echo "- A worker pays the round trip once per \`bind\` (a server binds at start) and once per \`shutdown\`: Python's socketserver calls \`shutdown(SHUT_WR)\` on every connection it closes, so with a new connection per request every request waits for corral once (compare \`corral -w 1\` with \`--share-binds off\`, and corral's CPU, in the new-connection column). \`accept\`, \`read\`, \`write\` never reach corral, so keep-alive traffic costs only the filter's few BPF instructions on each syscall."
  echo "- corral's workers each run in their own session; with \`kernel.sched_autogroup_enabled=1\` every session is its own CPU-scheduling group with an equal share of the CPUs against the other sessions (wrk's, other engineers' builds). The one plain process is started with \`setsid\` so that it too has a session, and so a share, of its own. Two workers are two sessions, so two shares: on a loaded machine part of the -w 2 gain can be that, not only a second CPU."
  echo "- A round trip needs corral's thread to run: with a CPU idle it is a few µs; with both CPUs busy (other engineers' builds) the caller waits for the scheduler to run corral's thread, and a whole run's median jumps to 50–150 µs. The per-run medians in the details show both modes; the table gives the median of the runs."
  echo "- With a new connection per request one Python process is not CPU-bound (its CPU in the details stays well under 100 %): ThreadingHTTPServer accepts in one thread, one connection per loop, and that thread must win the GIL from the handler threads for each accept (a 5 ms switch interval), so the accept rate is what is capped. Two workers are two accept loops with a GIL each, which is most likely why -w 2 gives more than 2× there on 2 CPUs; the scheduling shares above add to it. Also unexplained, seen on 2026-12-06 in one earlier run and in 3 alternating on/off pairs of 4 s outside this script (on 1988–2059 req/s, off 1354–1749) but not in every run: with a new connection per request \`corral -w 1\` with share-binds on served up to 2× what the same command with \`--share-binds off\` served. It is not Python's \`shutdown()\` itself (the plain server with that call removed was no faster); with share-binds on the listening socket is corral's (bound by corral, placed into the worker) rather than the worker's own. Until it is understood, read \`-w 2\` against \`corral -w 1\` as well as against the one process (the last ratio line)."
  echo
  echo "Details:"
  echo
  printf '%s\n' "${BIND_DETAILS[@]}"
  printf '%s\n' "${HTTP_DETAILS[@]}"
} >"$RESULTS"
cat "$RESULTS"
