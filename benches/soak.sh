#!/usr/bin/env bash
# The soak (issue 25): one headless corral kept busy for SOAK_SECONDS (default 480 = 8 min)
# while it is scraped, asked and followed, with its memory, descriptors and CPU sampled, so
# that a leak or a slow climb shows. All traffic on 127.0.0.1, all files in a scratch dir.
#
# corral runs `--config soak.toml --no-ui --log-format json --log-dir DIR --metrics
# 127.0.0.1:PORT --control DIR/ctl.sock` (its stdout to a file) with these groups:
#   crash   SOAK_CRASHERS workers (4) `sh -c 'sleep 0.N; exit 1'` (N from the pid, 0..4),
#           backoff 0: each exits 1 within half a second and is restarted at once, forever
#   flood   SOAK_FLOODERS workers (2), each a batch of SOAK_FLOOD_LINES lines (500) from seq
#           every 0.1 s on stdout and 5 lines on stderr (SOAK_FLOOD_LINES=0: `yes`, no bound)
#   events  SOAK_EVENTERS workers (2) writing to $CORRAL_EVENT_FD: every 10 ms a metric of
#           one of 16 names, every 100th a status text and a log message
#   steady  1 worker, `sleep infinity`
# Meanwhile, every second: a `/metrics` scrape (curl) and a `corral ctl status --json`; all
# the time 2 `corral ctl logs -f` and 1 `corral ctl events -f` to /dev/null (restarted if one
# ends, and counted). Every SOAK_SAMPLE_SECONDS (5): corral's VmRSS and RssAnon, its open descriptors
# (entries of /proc/PID/fd) and its CPU (utime + stime of all its threads). At the end a
# graceful stop (SIGTERM), and the report: restarts, lines and messages written, RSS and fds
# first / max / last, corral's average CPU, failed scrapes and ctl calls with the slowest of
# each, whether RSS went flat (the last quarter's max against the first quarter's max), and
# whether both sinks (the JSON on stdout and the worker files in the log dir) got every line.
# Prints a Markdown table, also saved to benches/soak/results.md.
#
#   benches/soak.sh                     # 8 minutes
#   SOAK_SECONDS=180 benches/soak.sh    # 3 minutes
#
# The binary is $SOAK_CORRAL (default target/release/corral, built with nice cargo build
# --release --locked only if missing). curl and python3 must be installed.
# Other knobs (environment): SOAK_SAMPLE_SECONDS (5), SOAK_CRASHERS (4), SOAK_FLOODERS (2),
# SOAK_FLOOD_LINES (500 per 0.1 s per worker; 0 = unbounded `yes`), SOAK_EVENTERS (2),
# SOAK_SCRATCH (default ${TMPDIR:-/tmp}/corral-soak), SOAK_RESULTS (default
# benches/soak/results.md), SOAK_NOTE (a sentence added to the results). Logs of the last run
# (corral's stdout can be hundreds of MB) stay in SOAK_SCRATCH; each run deletes the last.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
SECS="${SOAK_SECONDS:-480}"
SAMPLE="${SOAK_SAMPLE_SECONDS:-5}"
CRASHERS="${SOAK_CRASHERS:-4}"
FLOODERS="${SOAK_FLOODERS:-2}"
FLOOD_LINES="${SOAK_FLOOD_LINES:-500}"
EVENTERS="${SOAK_EVENTERS:-2}"
SCRATCH="${SOAK_SCRATCH:-${TMPDIR:-/tmp}/corral-soak}"
RESULTS="${SOAK_RESULTS:-$HERE/soak/results.md}"
CORRAL="${SOAK_CORRAL:-${CARGO_TARGET_DIR:-$ROOT/target}/release/corral}"
START_TIMEOUT=30 # seconds for corral to answer on its control socket and /metrics
STOP_GRACE=30    # seconds for corral's graceful stop at the end
PAGE_KIB=$(($(getconf PAGESIZE) / 1024))

for v in SECS SAMPLE CRASHERS FLOODERS FLOOD_LINES EVENTERS; do
  [[ "${!v}" =~ ^[0-9]+$ ]] || { echo "soak.sh: $v must be a whole number, not '${!v}'" >&2; exit 2; }
done
((SAMPLE >= 1 && SECS >= 4 * SAMPLE)) || { echo "soak.sh: SOAK_SECONDS must be at least 4 × SOAK_SAMPLE_SECONDS" >&2; exit 2; }

CORRAL_PID=""
FOLLOWERS=() # "pid kind" of the running followers

# The process handling the bench scripts share (say, die, wait_until, stop_pid, bounded, the
# orphan guard); its cleanup trap is replaced by this script's own below.
# shellcheck source=benches/lib.sh
source "$HERE/lib.sh"

cleanup() {
  local rc=$? pid
  trap - EXIT INT TERM
  # Followers first, corral last (its workers go with its graceful stop).
  for pid in "${STARTED[@]}"; do [[ "$pid" == "$CORRAL_PID" ]] || stop_pid "$pid" 5; done
  [[ -z "$CORRAL_PID" ]] || stop_pid "$CORRAL_PID" "$STOP_GRACE"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------------------
# What the run needs.

command -v curl >/dev/null || die "curl is needed (apt-get install curl)"
command -v python3 >/dev/null || die "python3 is needed"
if [[ ! -x "$CORRAL" ]]; then
  [[ -z "${SOAK_CORRAL:-}" ]] || die "no corral binary at SOAK_CORRAL=$CORRAL"
  say "building corral (nice cargo build --release --locked; minutes)"
  (cd "$ROOT" && nice cargo build --release --locked --quiet)
  [[ -x "$CORRAL" ]] || die "no corral binary at $CORRAL"
fi

# A TCP port free on 127.0.0.1.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
cpu_ticks() {
  local s f
  s="$(cat "/proc/$1/stat" 2>/dev/null)" || { echo ""; return; }
  s="${s##*) }"
  read -r -a f <<<"$s"
  echo $((f[11] + f[12])) # utime + stime
}
# "VmRSS RssAnon" in KiB: all resident pages, and those not backed by a file (the heap, the
# stacks: where a leak grows; the rest is the binary's and libraries' pages, touched once).
rss_kib() { awk '/^VmRSS:/ { r = $2 } /^RssAnon:/ { a = $2 } END { if (r != "") print r, a }' "/proc/$1/status" 2>/dev/null; }
fd_count() { local a=("/proc/$1/fd/"*); [[ -e "${a[0]}" ]] && echo "${#a[@]}"; }
now_ns() { date +%s%N; }
ms() { echo $((($2 - $1) / 1000000)); }
mib() { awk -v k="$1" 'BEGIN { if (k == "") print "–"; else printf "%.1f", k / 1024 }'; }

# ---------------------------------------------------------------------------------------
# The config.

mkdir -p "$SCRATCH"
rm -rf "$SCRATCH"/run.*
WORK="$(mktemp -d "$SCRATCH/run.XXXXXX")"
LOGDIR="$WORK/logs"
SOCK="$WORK/ctl.sock"
PORT="$(free_port)"
say "logs of this run: $WORK"

if ((FLOOD_LINES > 0)); then
  FLOOD_CMD="while :; do seq 1 $FLOOD_LINES; seq 1 5 >&2; sleep 0.1; done"
  FLOOD_DESC="each a batch of $FLOOD_LINES lines (\`seq\`) on stdout and 5 on stderr every 0.1 s (≈ $((FLOOD_LINES * 10 + 50)) lines/s each)"
else
  FLOOD_CMD="yes soak"
  FLOOD_DESC="\`yes soak\`, as fast as corral reads"
fi
# Metric names cycle through 16; a status and a log message every 100th turn.
EVENT_CMD='i=0; while :; do i=$((i+1)); n=$((i % 16)); printf "{\"type\":\"metric\",\"name\":\"m%d\",\"value\":%d}\n" "$n" "$i" >&"$CORRAL_EVENT_FD"; if [ $((i % 100)) -eq 0 ]; then printf "{\"type\":\"status\",\"text\":\"turn %d\"}\n{\"type\":\"log\",\"level\":\"info\",\"msg\":\"turn %d\"}\n" "$i" "$i" >&"$CORRAL_EVENT_FD"; fi; sleep 0.01; done'

toml_str() { python3 -c 'import json, sys; print(json.dumps(sys.argv[1]))' "$1"; }
{
  echo "instance = \"soak-$$\""
  echo
  echo "[defaults]"
  echo "kill-timeout = \"2s\""
  if ((CRASHERS > 0)); then
    echo
    echo "[group.crash]"
    echo "command = [\"sh\", \"-c\", $(toml_str 'sleep 0.$(($$ % 5)); exit 1')]"
    echo "workers = $CRASHERS"
    echo "backoff = \"0\""
  fi
  if ((FLOODERS > 0)); then
    echo
    echo "[group.flood]"
    echo "command = [\"sh\", \"-c\", $(toml_str "$FLOOD_CMD")]"
    echo "workers = $FLOODERS"
  fi
  if ((EVENTERS > 0)); then
    echo
    echo "[group.events]"
    echo "command = [\"sh\", \"-c\", $(toml_str "$EVENT_CMD")]"
    echo "workers = $EVENTERS"
  fi
  echo
  echo "[group.steady]"
  echo "command = [\"sleep\", \"infinity\"]"
  echo "workers = 1"
} >"$WORK/soak.toml"
"$CORRAL" check-config "$WORK/soak.toml" >"$WORK/check-config.txt" 2>&1 || die "check-config refused $WORK/soak.toml: $(tail -3 "$WORK/check-config.txt")"

# ---------------------------------------------------------------------------------------
# Start.

CORRAL_ARGS=(--config "$WORK/soak.toml" --no-ui --log-format json --log-dir "$LOGDIR"
  --metrics "127.0.0.1:$PORT" --control "$SOCK")
ctl() { "$CORRAL" ctl --control "$SOCK" "$@"; }

"${ORPHAN_GUARD[@]}" "$CORRAL" "${CORRAL_ARGS[@]}" >"$WORK/corral.jsonl" 2>"$WORK/corral.err" &
CORRAL_PID=$!
STARTED+=("$CORRAL_PID")
answering() {
  alive "$CORRAL_PID" || die "corral exited at start: $(tail -3 "$WORK/corral.err")"
  ctl status --json >/dev/null 2>&1 && curl -sf --max-time 2 "http://127.0.0.1:$PORT/metrics" >/dev/null
}
wait_until "$START_TIMEOUT" answering || die "corral did not answer within ${START_TIMEOUT} s: $(tail -3 "$WORK/corral.err")"
say "corral pid $CORRAL_PID, metrics on 127.0.0.1:$PORT, control $SOCK; soaking for ${SECS} s"

FOLLOWER_ENDS=0
FOLLOWER_END_NOTES=()
start_follower() {
  local kind="$1" pid
  case "$kind" in
    logs) "${ORPHAN_GUARD[@]}" "$CORRAL" ctl --control "$SOCK" logs -f >/dev/null 2>>"$WORK/followers.err" & ;;
    events) "${ORPHAN_GUARD[@]}" "$CORRAL" ctl --control "$SOCK" events -f >/dev/null 2>>"$WORK/followers.err" & ;;
  esac
  pid=$!
  STARTED+=("$pid")
  FOLLOWERS+=("$pid $kind")
}
# check_followers: one that ended is counted, reaped and started again.
check_followers() {
  local kept=() again=() f pid kind rc
  for f in "${FOLLOWERS[@]}"; do
    read -r pid kind <<<"$f"
    if alive "$pid"; then
      kept+=("$f")
    else
      rc=0
      wait "$pid" 2>/dev/null || rc=$?
      forget "$pid"
      FOLLOWER_ENDS=$((FOLLOWER_ENDS + 1))
      ((${#FOLLOWER_END_NOTES[@]} >= 5)) || FOLLOWER_END_NOTES+=("ctl $kind -f (pid $pid) ended with status $rc at $((SECONDS - T0)) s")
      again+=("$kind")
    fi
  done
  FOLLOWERS=("${kept[@]}")
  for kind in "${again[@]}"; do start_follower "$kind"; done
}
start_follower logs
start_follower logs
start_follower events

# ---------------------------------------------------------------------------------------
# The soak.

SCRAPES=0 SCRAPE_FAILS=0 SCRAPE_MAX_MS=0 SCRAPE_SUM_MS=0 ANSWER_MAX_US=0 ANSWER_SUM_US=0
STATUSES=0 STATUS_FAILS=0 STATUS_MAX_MS=0 STATUS_SUM_MS=0
FAIL_NOTES=()
LAST_SAY=0
S_T=() S_RSS=() S_ANON=() S_FDS=() S_CPU=() # samples: ms since start, KiB, KiB, count, ticks
LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
T0=$SECONDS
T0_NS="$(now_ns)"
CPU0="$(cpu_ticks "$CORRAL_PID")"
NEXT_SAMPLE_NS=$T0_NS
END_NS=$((T0_NS + SECS * 1000000000))

sample() {
  local t rss anon fds cpu
  t="$(now_ns)"
  read -r rss anon <<<"$(rss_kib "$CORRAL_PID")" || true
  fds="$(fd_count "$CORRAL_PID")" cpu="$(cpu_ticks "$CORRAL_PID")"
  [[ -n "$rss" && -n "$anon" && -n "$fds" && -n "$cpu" ]] || return 0
  S_T+=("$(((t - T0_NS) / 1000000))") S_RSS+=("$rss") S_ANON+=("$anon") S_FDS+=("$fds") S_CPU+=("$cpu")
  printf '%s %s %s %s %s\n' "${S_T[-1]}" "$rss" "$anon" "$fds" "$cpu" >>"$WORK/samples.txt"
}

fail_note() { ((${#FAIL_NOTES[@]} >= 10)) || FAIL_NOTES+=("at $((SECONDS - T0)) s: $*"); }

while :; do
  t_iter="$(now_ns)"
  ((t_iter < END_NS)) || break
  alive "$CORRAL_PID" || { fail_note "corral (pid $CORRAL_PID) is gone"; break; }
  if ((t_iter >= NEXT_SAMPLE_NS)); then
    sample
    # On the grid of SOAK_SAMPLE_SECONDS from the start; a slot missed (a slow second) is skipped.
    while ((NEXT_SAMPLE_NS <= t_iter)); do NEXT_SAMPLE_NS=$((NEXT_SAMPLE_NS + SAMPLE * 1000000000)); done
  fi

  a="$(now_ns)"
  rc=0
  bounded 10 curl -sS -o "$WORK/last-scrape.txt" -w '%{http_code} %{time_total}' --max-time 5 \
    "http://127.0.0.1:$PORT/metrics" >"$WORK/last-scrape.code" 2>>"$WORK/scrapes.err" || rc=$?
  b="$(now_ns)"
  SCRAPES=$((SCRAPES + 1))
  d=$(ms "$a" "$b") SCRAPE_SUM_MS=$((SCRAPE_SUM_MS + d))
  ((d <= SCRAPE_MAX_MS)) || SCRAPE_MAX_MS=$d
  read -r code answer <"$WORK/last-scrape.code" || true
  # curl's own time_total: corral's answer, without curl's start-up.
  answer_us="$(awk -v s="${answer:-0}" 'BEGIN { printf "%d", s * 1e6 }')"
  ANSWER_SUM_US=$((ANSWER_SUM_US + answer_us))
  ((answer_us <= ANSWER_MAX_US)) || ANSWER_MAX_US=$answer_us
  if ((rc != 0)) || [[ "${code:-}" != 200 ]] || ! grep -q '^corral_worker_restarts_total' "$WORK/last-scrape.txt"; then
    SCRAPE_FAILS=$((SCRAPE_FAILS + 1))
    fail_note "scrape failed (curl $rc, HTTP ${code:-none})"
  fi

  a="$(now_ns)"
  rc=0
  bounded 15 "$CORRAL" ctl --control "$SOCK" status --json >"$WORK/last-status.json" 2>>"$WORK/status.err" || rc=$?
  b="$(now_ns)"
  STATUSES=$((STATUSES + 1))
  d=$(ms "$a" "$b") STATUS_SUM_MS=$((STATUS_SUM_MS + d))
  ((d <= STATUS_MAX_MS)) || STATUS_MAX_MS=$d
  if ((rc != 0)) || ! python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$WORK/last-status.json" 2>/dev/null; then
    STATUS_FAILS=$((STATUS_FAILS + 1))
    fail_note "ctl status --json failed (exit $rc): $(tail -1 "$WORK/status.err" 2>/dev/null)"
  fi

  check_followers

  # Sleep out the rest of the second (in the background, so a signal is handled at once).
  left=$((t_iter + 1000000000 - $(now_ns)))
  if ((left > 0)); then
    sleep "$(awk -v ns="$left" 'BEGIN { printf "%.3f", ns / 1e9 }')" &
    pid=$!
    STARTED+=("$pid")
    wait "$pid" || true
    forget "$pid"
  fi
  if ((SECONDS - T0 >= LAST_SAY + 60)); then
    LAST_SAY=$((SECONDS - T0))
    say "[${LAST_SAY} s] rss $(mib "${S_RSS[-1]}") MiB, fds ${S_FDS[-1]}, scrapes $SCRAPES ($SCRAPE_FAILS failed), status $STATUSES ($STATUS_FAILS failed), follower ends $FOLLOWER_ENDS"
  fi
done
alive "$CORRAL_PID" && sample
T1_NS="$(now_ns)"
CPU1="$(cpu_ticks "$CORRAL_PID")"
CORRAL_ALIVE_AT_END=yes
alive "$CORRAL_PID" || CORRAL_ALIVE_AT_END=no
LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"

# The final status: restarts per group.
FINAL_RESTARTS="–"
if [[ "$CORRAL_ALIVE_AT_END" == yes ]] && bounded 15 "$CORRAL" ctl --control "$SOCK" status --json >"$WORK/final-status.json" 2>>"$WORK/status.err"; then
  FINAL_RESTARTS="$(python3 -c '
import json, sys
rows = json.load(open(sys.argv[1]))
by = {}
for r in rows:
    by[r["group"]] = by.get(r["group"], 0) + r["restarts"]
print(sum(by.values()), "(" + ", ".join("%s %d" % kv for kv in by.items()) + ")")' "$WORK/final-status.json")"
fi

# Followers, then a graceful stop of corral.
for f in "${FOLLOWERS[@]}"; do stop_pid "${f%% *}" 5; done
FOLLOWERS=()
STOP_RC="–"
if [[ "$CORRAL_ALIVE_AT_END" == yes ]]; then
  stop_a="$(now_ns)"
  kill -TERM "$CORRAL_PID" 2>/dev/null || true
  if wait_until "$STOP_GRACE" not_alive "$CORRAL_PID"; then
    STOP_RC=0
    wait "$CORRAL_PID" || STOP_RC=$?
    STOP_RC="exit $STOP_RC after $(ms "$stop_a" "$(now_ns)") ms"
  else
    STOP_RC="still running ${STOP_GRACE} s after SIGTERM (killed)"
    kill -KILL "$CORRAL_PID" 2>/dev/null || true
    wait "$CORRAL_PID" 2>/dev/null || true
  fi
else
  rc=0
  wait "$CORRAL_PID" 2>/dev/null || rc=$?
  STOP_RC="had exited by itself (status $rc) before the end"
fi
forget "$CORRAL_PID"
CORRAL_PID=""

# ---------------------------------------------------------------------------------------
# The figures.

JSONL="$WORK/corral.jsonl"
count_event() { grep -c "^{\"ts\":\"[^\"]*\",\"event\":\"$1\"" "$JSONL" || true; }
EXITED="$(count_event exited)"
CRASHED="$(grep -c '"event":"exited".*"reason":"crashed"' "$JSONL" || true)"
SPAWNED="$(count_event spawned)"
OUTPUT_LINES="$(count_event output)"
MESSAGES="$(count_event message)"
PROTOCOL_ERRORS="$(count_event protocol_error)"
SPAWN_FAILED="$(count_event spawn_failed)"
SHUTDOWN_CODE="$(grep '"event":"shutdown_complete"' "$JSONL" | sed -n 's/.*"exit_code":\([0-9-]*\).*/\1/p' | tail -1)"
JSONL_BYTES="$(stat -c %s "$JSONL")"
# Worker files: every line is one output line of that slot.
FILE_LINES=0
for f in "$LOGDIR"/*.log; do
  [[ "$(basename "$f")" == corral.log ]] && continue
  FILE_LINES=$((FILE_LINES + $(wc -l <"$f")))
done
LOGDIR_BYTES="$(du -sb "$LOGDIR" | cut -f1)"
RESTARTS_EVENTS=$((SPAWNED - CRASHERS - FLOODERS - EVENTERS - 1))
ELAPSED_S="$(awk -v ns="$((T1_NS - T0_NS))" 'BEGIN { printf "%.1f", ns / 1e9 }')"
CPU_AVG="$(awk -v t="$((CPU1 - CPU0))" -v hz="$CLK_TCK" -v ns="$((T1_NS - T0_NS))" 'BEGIN { printf "%.1f", 100 * (t / hz) / (ns / 1e9) }')"
CPU_S="$(awk -v t="$((CPU1 - CPU0))" -v hz="$CLK_TCK" 'BEGIN { printf "%.1f", t / hz }')"

N=${#S_RSS[@]}
((N >= 4)) || die "only $N samples of corral were taken (it exited early?): $(tail -3 "$WORK/corral.err")"
stats() { # stats NAME...: first max last of the values
  local v max=0
  for v in "$@"; do ((v <= max)) || max=$v; done
  echo "$1 $max ${*: -1}"
}
read -r RSS_FIRST RSS_MAX RSS_LAST <<<"$(stats "${S_RSS[@]}")"
read -r ANON_FIRST ANON_MAX ANON_LAST <<<"$(stats "${S_ANON[@]}")"
read -r FDS_FIRST FDS_MAX FDS_LAST <<<"$(stats "${S_FDS[@]}")"
Q=$((N / 4))
((Q >= 1)) || Q=1
read -r _ RSS_Q1 _ <<<"$(stats "${S_RSS[@]:0:Q}")"
read -r _ RSS_Q4 _ <<<"$(stats "${S_RSS[@]: -Q}")"
read -r _ ANON_Q1 _ <<<"$(stats "${S_ANON[@]:0:Q}")"
read -r _ ANON_Q4 _ <<<"$(stats "${S_ANON[@]: -Q}")"
read -r _ FDS_Q1 _ <<<"$(stats "${S_FDS[@]:0:Q}")"
read -r _ FDS_Q4 _ <<<"$(stats "${S_FDS[@]: -Q}")"
# Flat: the last quarter's max is within 5 % (or 512 KiB) of the first quarter's.
flat() { awk -v a="$1" -v b="$2" 'BEGIN {
  d = b - a; pct = 100 * d / a
  verdict = (b <= a * 1.05 || d <= 512) ? "**yes**" : "**no**"
  printf "%s: %.1f → %.1f MiB (%+.1f %%)", verdict, a / 1024, b / 1024, pct }'; }
RSS_FLAT="$(flat "$RSS_Q1" "$RSS_Q4")"
ANON_FLAT="$(flat "$ANON_Q1" "$ANON_Q4")"
# Flat: the last quarter's max is at most the first quarter's + 5 % (at least 4): crashing
# workers' pipes come and go between samples, a leak of one per restart would be thousands.
FDS_FLAT="$( ((FDS_Q4 * 100 <= FDS_Q1 * 105 || FDS_Q4 <= FDS_Q1 + 4)) && echo "**yes**" || echo "**no**"): max $FDS_Q1 → $FDS_Q4"
# CPU of each sample interval: the busiest.
CPU_MAX_INT="$(for ((i = 1; i < N; i++)); do
  awk -v t="$((S_CPU[i] - S_CPU[i - 1]))" -v hz="$CLK_TCK" -v ms="$((S_T[i] - S_T[i - 1]))" 'BEGIN { if (ms > 0) printf "%.1f\n", 100 * (t / hz) / (ms / 1000) }'
done | sort -n | tail -1)"

if [[ "$OUTPUT_LINES" == "$FILE_LINES" ]]; then
  SINKS="**yes**: $OUTPUT_LINES \`output\` events on stdout, $FILE_LINES lines in the worker files"
else
  SINKS="**no**: $OUTPUT_LINES \`output\` events on stdout, $FILE_LINES lines in the worker files"
fi

rate() { awk -v n="$1" -v s="$ELAPSED_S" 'BEGIN { printf "%.0f", n / s }'; }
avg() { awk -v a="$1" -v n="$2" 'BEGIN { if (n > 0) printf "%.0f", a / n; else print "–" }'; }
fmt() { printf "%'d" "$1" 2>/dev/null || echo "$1"; }

TABLE=(
  "| restarts | **$(fmt "$RESTARTS_EVENTS")** (spawns after the first $((CRASHERS + FLOODERS + EVENTERS + 1)); $(rate "$RESTARTS_EVENTS")/s); \`exited\` events $(fmt "$EXITED"), $(fmt "$CRASHED") of them \`crashed\`; final \`ctl status\`: $FINAL_RESTARTS; \`spawn_failed\` $SPAWN_FAILED |"
  "| output lines written | **$(fmt "$OUTPUT_LINES")** ($(rate "$OUTPUT_LINES")/s); stdout JSON $(mib $((JSONL_BYTES / 1024))) MiB, log dir $(mib $((LOGDIR_BYTES / 1024))) MiB |"
  "| event-channel messages | $(fmt "$MESSAGES") ($(rate "$MESSAGES")/s); protocol errors $PROTOCOL_ERRORS |"
  "| both sinks got every line | $SINKS |"
  "| RSS, MiB: first / max / last | $(mib "$RSS_FIRST") / **$(mib "$RSS_MAX")** / $(mib "$RSS_LAST") ($N samples, every ${SAMPLE} s) |"
  "| RSS flat (last quarter's max vs first quarter's) | $RSS_FLAT |"
  "| of which anonymous (RssAnon: heap, stacks), MiB: first / max / last | $(mib "$ANON_FIRST") / **$(mib "$ANON_MAX")** / $(mib "$ANON_LAST"); flat: $ANON_FLAT |"
  "| open fds: first / max / last | $FDS_FIRST / **$FDS_MAX** / $FDS_LAST; flat: $FDS_FLAT |"
  "| corral's CPU, % of one core | **$CPU_AVG** on average ($CPU_S s over $ELAPSED_S s); busiest ${SAMPLE} s: ${CPU_MAX_INT:-–} |"
  "| \`/metrics\` scrapes | $SCRAPES, **$SCRAPE_FAILS failed**; the answer (curl's \`time_total\`) mean $(avg "$((ANSWER_SUM_US / 1000))" "$SCRAPES") ms, slowest $(awk -v u="$ANSWER_MAX_US" 'BEGIN { printf "%.1f", u / 1000 }') ms; the whole curl process mean $(avg "$SCRAPE_SUM_MS" "$SCRAPES") ms, slowest $SCRAPE_MAX_MS ms |"
  "| \`ctl status --json\` (the whole process) | $STATUSES, **$STATUS_FAILS failed**; mean $(avg "$STATUS_SUM_MS" "$STATUSES") ms, slowest $STATUS_MAX_MS ms |"
  "| followers (2 \`ctl logs -f\`, 1 \`ctl events -f\`) | $FOLLOWER_ENDS ended before the end |"
  "| graceful stop (SIGTERM) | $STOP_RC; \`shutdown_complete\` says exit_code ${SHUTDOWN_CODE:-(none)} |"
)
NOTES=()
for n in "${FAIL_NOTES[@]}" "${FOLLOWER_END_NOTES[@]}"; do NOTES+=("- $n"); done
[[ -s "$WORK/corral.err" ]] && NOTES+=("- corral's stderr ($(wc -l <"$WORK/corral.err") lines), first: \`$(head -1 "$WORK/corral.err" | cut -c1-200)\`")

rev="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
git -C "$ROOT" diff --quiet HEAD -- src 2>/dev/null || rev="$rev+dirty"
knobs=""
for v in SOAK_SECONDS SOAK_SAMPLE_SECONDS SOAK_CRASHERS SOAK_FLOODERS SOAK_FLOOD_LINES SOAK_EVENTERS SOAK_CORRAL; do
  [[ -z "${!v:-}" ]] || knobs="$knobs$v=${!v} "
done
SAMPLE_ROWS=()
for ((i = 0; i < N; i++)); do
  SAMPLE_ROWS+=("$(awk -v t="${S_T[i]}" 'BEGIN { printf "%.0f", t / 1000 }') $(mib "${S_RSS[i]}") $(mib "${S_ANON[i]}") ${S_FDS[i]}")
done
mkdir -p "$(dirname "$RESULTS")"
{
  echo "# The soak: floods, restarts, scrapes, followers"
  echo
  echo "Issue 25. One headless corral for ${SECS} s, busy in every way at once, on the release binary; all traffic on 127.0.0.1."
  echo
  echo "- machine: $(nproc) CPUs, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), $(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo), Linux $(uname -r); load average before / after: $LOAD_BEFORE / $LOAD_AFTER"
  echo "- versions: $("$CORRAL" --version 2>/dev/null | head -1) (release build: \`$CORRAL\`, file dated $(date -u -r "$CORRAL" +%Y-%m-%dT%H:%M:%SZ); this checkout is at $rev), $(bash --version | head -1 | sed 's/ (.*//'), $(curl --version | head -1 | cut -d' ' -f1-2)"
  echo "- command: \`${knobs}benches/soak.sh\`"
  echo "- run on $(date -u +%Y-%m-%dT%H:%MZ)"
  [[ -z "${SOAK_NOTE:-}" ]] || echo "- $SOAK_NOTE"
  echo
  echo "The groups (\`$WORK/soak.toml\` as run, copied beside this file as \`soak.toml\`):"
  echo
  echo "- crash: $CRASHERS × \`sh -c 'sleep 0.N; exit 1'\` (N = pid mod 5), \`backoff = \"0\"\`: restarted at once, forever"
  echo "- flood: $FLOODERS × $FLOOD_DESC"
  echo "- events: $EVENTERS × a metric every 10 ms on \`\$CORRAL_EVENT_FD\` (16 names in turn), a status and a log message every 100th"
  echo "- steady: 1 × \`sleep infinity\`"
  echo
  echo "corral: \`corral --config soak.toml --no-ui --log-format json --log-dir DIR --metrics 127.0.0.1:PORT --control DIR/ctl.sock > corral.jsonl\`. Every second a \`curl /metrics\` and a \`corral ctl status --json\` (one after the other, each timed as a whole process, which on this busy machine is mostly the process's own start-up; for the scrape also curl's own \`time_total\`, corral's answer); all the time 2 \`corral ctl logs -f\` and 1 \`corral ctl events -f\` to /dev/null. Every ${SAMPLE} s corral's VmRSS, its RssAnon (the part not backed by a file), the entries of /proc/PID/fd, and utime + stime from /proc/PID/stat (corral's threads, not its workers). Then SIGTERM."
  echo
  echo "| | |"
  echo "|---|---|"
  printf '%s\n' "${TABLE[@]}"
  if ((${#NOTES[@]})); then
    echo
    echo "Odd things seen:"
    echo
    printf '%s\n' "${NOTES[@]}"
  fi
  echo
  echo "Reading it:"
  echo
  echo "- The machine has $(nproc) CPUs and is shared: other engineers' builds and test runs were going on at the same time (see the load average), so CPU and latency figures are upper bounds of what corral needs; the workers themselves (\`sh\`, \`seq\`, forks every few ms) compete for the same CPUs."
  echo "- RSS is flat when the last quarter's highest sample is within 5 % (or 512 KiB) of the first quarter's; the first quarter includes start-up, when buffers and the event ring fill. VmRSS also counts the pages of corral's binary and libraries as code is first run (RssFile); RssAnon (heap and stacks) is where a leak would show. A single step up that then stays flat for minutes is a high-water mark (a queue or buffer that grew in a burst, which the allocator keeps), not a leak, which climbs with the restarts and lines; a run long enough to see several quarters after the step tells them apart (the default 480 s). fds are flat when the last quarter's highest is within 5 % (or 4) of the first quarter's: the pipes and event channels of crashing workers come and go between samples."
  echo "- Restarts are counted from the JSON events: every \`spawned\` after the first one of each slot; the final \`ctl status\` counts the same per slot (its \`restarts\`), a moment before the stop, so a few fewer; \`exited\` also counts the exits of the stop itself."
  echo "- Both sinks: the \`output\` events on corral's stdout against the lines of the worker files in the log dir, which corral writes separately from the same lines."
  echo
  echo "Samples (seconds since start, VmRSS MiB, RssAnon MiB, fds):"
  echo
  echo '```text'
  printf '%s\n' "${SAMPLE_ROWS[@]}" | paste -d'\t' - - - | expand -t 28
  echo '```'
} >"$RESULTS"
cp "$WORK/soak.toml" "$(dirname "$RESULTS")/soak.toml"
cat "$RESULTS"
