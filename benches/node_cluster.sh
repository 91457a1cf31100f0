#!/usr/bin/env bash
# corral as the Node cluster primary (docs/node.md) against Node's own cluster and PM2,
# on this machine, in one run: the same unmodified app (benches/node_cluster/app.js, a plain
# http.createServer(…).listen(PORT)), 2 workers, all traffic on 127.0.0.1. Rows:
#   corral-shared  corral --no-ui -w 2 -- node app.js                (one socket, the kernel picks)
#   corral-rr      corral --no-ui -w 2 --node-cluster-sched rr -- …   (corral accepts, newconn)
#   cluster-rr     Node's cluster, NODE_CLUSTER_SCHED_POLICY=rr (Node's default on Linux)
#   cluster-none   Node's cluster, NODE_CLUSTER_SCHED_POLICY=none
#   pm2            pm2 start app.js -i 2 (private PM2_HOME)
# For each row: req/s and p99 with keep-alive and with a new connection per request
# (wrk --latency, after a warm-up), the per-worker split of responses (a separate wrk run with
# benches/node_cluster/split.lua, which counts the pid in each body), and the primary's CPU.
# Prints a Markdown table, also saved to benches/node_cluster/results.md. About 3–4 minutes.
#
#   benches/node_cluster.sh
#
# It installs what is missing: wrk (Debian package), PM2 (npm, into $NC_SCRATCH, never
# globally), and builds corral (nice cargo build --release --locked). Node.js must be installed.
# A row whose option this corral lacks (--node-cluster-sched) or that does not start is
# skipped with a note; the others still run.
# Knobs (environment): NC_ROWS (default "corral-shared corral-rr cluster-rr cluster-none pm2"),
# NC_SECONDS (10, each throughput run), NC_WARMUP_SECONDS (2), NC_SPLIT_SECONDS (4, each split
# run), NC_CONNECTIONS (64), NC_SCRATCH (default ${TMPDIR:-/tmp}/corral-node-cluster),
# NC_RESULTS (default benches/node_cluster/results.md). Logs of the last run stay in NC_SCRATCH.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
DIR="$HERE/node_cluster"
APP="$DIR/app.js"
SCRATCH="${NC_SCRATCH:-${TMPDIR:-/tmp}/corral-node-cluster}"
ROWS="${NC_ROWS:-corral-shared corral-rr cluster-rr cluster-none pm2}"
SECS="${NC_SECONDS:-10}"
WARMUP="${NC_WARMUP_SECONDS:-2}"
SPLIT_SECS="${NC_SPLIT_SECONDS:-4}"
CONNS="${NC_CONNECTIONS:-64}"
RESULTS="${NC_RESULTS:-$DIR/results.md}"
WORKERS=2
START_TIMEOUT=30 # seconds for a supervisor to have every worker answering

# shellcheck source=benches/lib.sh
source "$HERE/lib.sh"

SUP_PID=""  # the primary: corral, the cluster primary, PM2's God daemon
SUP_LOG=""

# ---------------------------------------------------------------------------------------
# What the run needs.

install() {
  command -v node >/dev/null || die "Node.js is needed (apt-get install nodejs)"
  command -v npm >/dev/null || die "npm is needed (apt-get install npm)"
  install_wrk
  if [[ " $ROWS " == *" pm2 "* ]]; then install_pm2; else install_pm2 no; fi
  if [[ " $ROWS " == *" corral-"* ]]; then build_corral; fi
}

# A TCP port free on every interface (every row's workers call listen(PORT): all of them).
free_port() {
  node -e 'const s = require("net").createServer();
    s.listen(0, () => { console.log(s.address().port); s.close(); });'
}

has_sched_option() { "$CORRAL" --help 2>/dev/null | grep -q -- '--node-cluster-sched'; }

# ---------------------------------------------------------------------------------------
# The primaries: start_sup (sets SUP_PID, SUP_LOG; fails with a reason in SKIP_WHY), stop_sup.

SKIP_WHY=""

start_sup() {
  local kind="$1" port="$2" dir="$3"
  mkdir -p "$dir"
  SUP_LOG="$dir/primary.out"
  SKIP_WHY=""
  case "$kind" in
    corral-shared | corral-rr)
      local extra=()
      if [[ "$kind" == corral-rr ]]; then
        if ! has_sched_option; then
          SKIP_WHY="this corral has no \`--node-cluster-sched\` option yet"
          return 1
        fi
        extra=(--node-cluster-sched rr)
      fi
      (cd "$DIR" && PORT="$port" exec "${ORPHAN_GUARD[@]}" "$CORRAL" --no-ui -w "$WORKERS" "${extra[@]}" \
        -- node app.js) >"$SUP_LOG" 2>"$dir/primary.err" &
      track_sup
      ;;
    cluster-rr | cluster-none)
      NODE_CLUSTER_SCHED_POLICY="${kind#cluster-}" PORT="$port" \
        "${ORPHAN_GUARD[@]}" node "$DIR/primary.js" "$WORKERS" >"$SUP_LOG" 2>"$dir/primary.err" &
      track_sup
      ;;
    pm2)
      pm2_home
      # PM2's daemon inherits this environment: no scheduling policy of ours leaks into it.
      if ! PORT="$port" PM2_HOME="$PM2_DIR" bounded 60 env -u NODE_CLUSTER_SCHED_POLICY \
        "$PM2" start "$APP" -i "$WORKERS" --name nc-app >>"$SUP_LOG" 2>&1; then
        SKIP_WHY="pm2 start failed (see $SUP_LOG)"
        return 1
      fi
      SUP_PID="$(cat "$PM2_DIR/pm2.pid")"
      ;;
    *) die "unknown row '$kind'" ;;
  esac
  if ! bounded $((START_TIMEOUT + 5)) node "$ROOT/benches/peers/lib.js" wait-serving "$port" "$SUP_PID" \
    "$WORKERS" "$START_TIMEOUT" 2>>"$dir/primary.err"; then
    SKIP_WHY="did not serve from $WORKERS workers on port $port within ${START_TIMEOUT} s: $(tail -1 "$dir/primary.err" 2>/dev/null)"
    return 1
  fi
}

stop_sup() {
  local kind="$1"
  case "$kind" in
    pm2)
      [[ -n "$SUP_PID" ]] || return 0
      pm2_cmd delete nc-app >>"$SUP_LOG" 2>&1 || warn "pm2 delete failed"
      wait_until 10 no_children "$SUP_PID" || warn "PM2 workers still running after delete"
      ;;
    *) [[ -z "$SUP_PID" ]] || stop_pid "$SUP_PID" 10 ;;
  esac
  SUP_PID=""
}

# ---------------------------------------------------------------------------------------
# The measures.

# split_run PORT OUTFILE [WRK ARGS...]: SPLIT_SECS of wrk with split.lua; sets SPLIT ("51.2 / 48.8"
# in % of responses, by pid), SPLIT_DEV (the largest |share − 1/N| in % points), SPLIT_N.
split_run() {
  local port="$1" file="$2"
  shift 2
  bounded $((SPLIT_SECS + 15)) wrk -t1 -c"$CONNS" -d"${SPLIT_SECS}s" --timeout 2s -s "$DIR/split.lua" "$@" \
    "http://127.0.0.1:$port/" >"$file"
  IFS=$'\t' read -r SPLIT SPLIT_DEV SPLIT_N < <(awk -v w="$WORKERS" '
    $1 == "split" && $2 != "other" { n[$2] = $3; total += $3 }
    $1 == "split" && $2 == "other" { other = $3 }
    END {
      if (total == 0) { printf "none\t–\t0\n"; exit }
      k = 0; dev = 0
      for (p in n) { s[++k] = 100 * n[p] / total }
      # shares, largest first
      for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (s[j] > s[i]) { t = s[i]; s[i] = s[j]; s[j] = t }
      out = ""
      for (i = 1; i <= k; i++) {
        out = out (i > 1 ? " / " : "") sprintf("%.1f", s[i])
        d = s[i] - 100 / w; if (d < 0) d = -d; if (d > dev) dev = d
      }
      if (k < w) { d = 100 / w; if (d > dev) dev = d }  # a worker that served nothing
      printf "%s\t%.1f\t%d\n", out, dev, total + other
    }' "$file")
}

# split_counts FILE: "pid 123: 4567, pid 124: 4321" (and responses without a pid, if any).
split_counts() {
  awk '$1 == "split" && $2 != "other" { printf "%spid %s: %s", sep, $2, $3; sep = ", " }
    $1 == "split" && $2 == "other" && $3 > 0 { printf "%sunrecognised: %s", sep, $3 }' "$1"
}

declare -A KA_RPS CL_RPS SPLIT_CL_DEV SPLIT_KA_DEV
TABLE=()
DETAILS=()
NOTES=()

label_of() {
  case "$1" in
    corral-shared) echo "corral, shared handle" ;;
    corral-rr) echo "corral, \`--node-cluster-sched rr\`" ;;
    cluster-rr) echo "Node cluster, rr (Node's default)" ;;
    cluster-none) echo "Node cluster, none" ;;
    pm2) echo "PM2 cluster mode" ;;
    *) echo "$1" ;;
  esac
}

measure_row() {
  local kind="$1" label port dir
  label="$(label_of "$kind")"
  dir="$WORK/$kind"
  port="$(free_port)"
  say "[$label] starting on port $port"
  if ! start_sup "$kind" "$port" "$dir"; then
    say "[$label] skipped: $SKIP_WHY"
    NOTES+=("- **$label: not run** — $SKIP_WHY.")
    TABLE+=("| $label | not run | – | – | – | – | – | – |")
    stop_sup "$kind" || true
    return 0
  fi
  throughput "$label" "$port" "$dir" "primary CPU"
  KA_RPS[$kind]="$TP_KA_RPS"
  CL_RPS[$kind]="$TP_CL_RPS"
  DETAILS+=("${TP_DETAILS[@]}")
  say "[$label] split, ${SPLIT_SECS} s each"
  local split_cl split_ka
  split_run "$port" "$dir/split-close.txt" -H "Connection: close"
  SPLIT_CL_DEV[$kind]="$SPLIT_DEV"
  split_cl="$SPLIT ($SPLIT_DEV off even)"
  DETAILS+=("- $label, split of $SPLIT_N responses on new connections: $(split_counts "$dir/split-close.txt")")
  split_run "$port" "$dir/split-keepalive.txt"
  SPLIT_KA_DEV[$kind]="$SPLIT_DEV"
  split_ka="$SPLIT ($SPLIT_DEV off even)"
  DETAILS+=("- $label, split of $SPLIT_N responses with keep-alive: $(split_counts "$dir/split-keepalive.txt")")
  if ! alive "$SUP_PID"; then NOTES+=("- **$label: the primary (pid $SUP_PID) died during the run.**"); fi
  stop_sup "$kind"
  TABLE+=("| $label | $TP_KA | $TP_KA_P99 | $TP_CL | $TP_CL_P99 | $split_cl | $split_ka | $TP_CPU |")
}

# goal NAME OK? TEXT: one line of the goals section.
goal() { NOTES_GOALS+=("- $1: $3 — **$([[ "$2" == 1 ]] && echo met || echo not met)**"); }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "" && b != "" && a + 0 >= b + 0) }'; }

install
clean_scratch
WORK="$(mktemp -d "$SCRATCH/run.XXXXXX")"
say "logs of this run: $WORK"
LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
T_START=$SECONDS

for kind in $ROWS; do
  measure_row "$kind"
done
pm2_kill
LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"
ELAPSED=$((SECONDS - T_START))

# The goals of issue 20, against Node's default (round-robin) cluster.
NOTES_GOALS=()
base_cl="${CL_RPS[cluster-rr]:-}"
base_ka="${KA_RPS[cluster-rr]:-}"
# The throughput goals are corral's default's (the shared handle); rr puts corral in the
# accept path as Node's rr primary is, so its ratios are given for reference.
if [[ -n "${CL_RPS[corral-shared]:-}" && -n "$base_cl" ]]; then
  label="$(label_of corral-shared)"
  r="$(ratio "${CL_RPS[corral-shared]}" "$base_cl")"
  ok=0; ge "$r" 2 && ok=1
  goal "$label, new-connection req/s ≥ 2× Node's round-robin" "$ok" "${CL_RPS[corral-shared]} vs ${base_cl} = ${r}×"
  r="$(ratio "${KA_RPS[corral-shared]}" "$base_ka")"
  ok=0; ge "${KA_RPS[corral-shared]}" "$base_ka" && ok=1
  goal "$label, keep-alive req/s ≥ Node's round-robin" "$ok" "${KA_RPS[corral-shared]} vs ${base_ka} = ${r}×"
elif [[ " $ROWS " == *" corral-shared "* ]]; then
  NOTES_GOALS+=("- throughput goals: not evaluated (the corral shared-handle row or Node's rr row did not run)")
fi
if [[ -n "${SPLIT_CL_DEV[corral-rr]:-}" ]]; then
  ok=0; ge 5 "${SPLIT_CL_DEV[corral-rr]}" && ok=1
  goal "corral rr, split within 5 % (on new connections, where each response is one connection corral handed out: every worker's share within 5 points of an even $((100 / WORKERS)) %)" "$ok" \
    "largest deviation ${SPLIT_CL_DEV[corral-rr]} points (with keep-alive, where the split of responses also depends on how fast each worker runs: ${SPLIT_KA_DEV[corral-rr]})"
  if [[ -n "$base_cl" ]]; then
    NOTES_GOALS+=("- for reference (no goal): corral rr against Node's rr, $(ratio "${CL_RPS[corral-rr]}" "$base_cl")× on new connections, $(ratio "${KA_RPS[corral-rr]}" "$base_ka")× with keep-alive")
  fi
elif [[ " $ROWS " == *" corral-rr "* ]]; then
  NOTES_GOALS+=("- corral rr, split within 5 %: not measured (the rr row did not run)")
fi

rev="$(corral_rev)"
pm2_version="n/a"
[[ -f "$SCRATCH/node_modules/pm2/package.json" ]] && pm2_version="$(node -p "require('$SCRATCH/node_modules/pm2/package.json').version")"
knobs=""
[[ -n "${NC_ROWS:-}${NC_SECONDS:-}${NC_WARMUP_SECONDS:-}${NC_SPLIT_SECONDS:-}${NC_CONNECTIONS:-}" ]] &&
  knobs=" with NC_ROWS='$ROWS' NC_SECONDS=$SECS NC_WARMUP_SECONDS=$WARMUP NC_SPLIT_SECONDS=$SPLIT_SECS NC_CONNECTIONS=$CONNS"
{
  echo "# corral as the Node cluster primary, against Node's cluster and PM2"
  echo
  echo "The same unmodified app (\`benches/node_cluster/app.js\`: \`http.createServer((req, res) => res.end('Hello from worker ' + process.pid)).listen(PORT)\`), $WORKERS workers, all traffic on 127.0.0.1, one run."
  echo
  echo "- machine: $(machine); load average before / after the run: $LOAD_BEFORE / $LOAD_AFTER"
  echo "- versions: corral $rev (release build), Node $(node --version), PM2 $pm2_version, $(wrk_version)"
  echo "- command: \`benches/node_cluster.sh\`$knobs (${ELAPSED} s)"
  echo "- run on $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "| primary | req/s, keep-alive | p99, keep-alive | req/s, a new connection per request | p99, new connections | split of responses by worker, new connections, % (largest distance from an even split, % points) | split, keep-alive, % | primary CPU, % of one core (keep-alive / new connections) |"
  echo "|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${TABLE[@]}"
  echo
  echo "Goals (issue 20): corral's default (the shared handle) against Node's default round-robin cluster, and corral rr's split:"
  echo
  if ((${#NOTES_GOALS[@]})); then printf '%s\n' "${NOTES_GOALS[@]}"; else echo "- not evaluated (rows missing)"; fi
  if ((${#NOTES[@]})); then
    echo
    printf '%s\n' "${NOTES[@]}"
  fi
  echo
  echo "How each is measured:"
  echo
  echo "- the primaries, all running \`app.js\` with \`PORT\` set: \`corral --no-ui -w 2 [--node-cluster-sched rr] -- node app.js\` (release build; corral answers each worker's \`listen()\` over Node's cluster protocol); \`NODE_CLUSTER_SCHED_POLICY=rr|none node benches/node_cluster/primary.js 2\` (\`cluster.fork()\` × 2, nothing else); \`pm2 start app.js -i 2\` with a private PM2_HOME (PM2's God daemon is the cluster primary, Node's default policy, rr)."
  echo "- req/s and p99: \`wrk -t1 -c$CONNS -d${SECS}s --timeout 2s --latency\` after a ${WARMUP} s warm-up, with keep-alive, then with \`-H 'Connection: close'\` (a new connection per request: the accept path, which a round-robin primary — Node's, PM2's, corral's rr — sits in, and a shared handle leaves to the kernel)."
  echo "- split: two more wrk runs of ${SPLIT_SECS} s (new connections, then keep-alive) with \`benches/node_cluster/split.lua\`, which counts the pid in each response body; shares largest first. With keep-alive the split is that of wrk's $CONNS connections, each served by one worker for the whole run."
  echo "- primary CPU: utime+stime of the primary (corral, the cluster primary, PM2's God daemon) over each throughput run, in % of one core."
  echo
  echo "Reading it:"
  echo
  echo "- This machine has $(nproc) CPUs shared by wrk, the primary and both workers, and other work ran on it at the same time (see the load average): expect ±15 % between runs, more in the keep-alive column, which measures the workers and wrk rather than the primary. The new-connection column and the primary's CPU are where the architectures differ."
  echo "- corral's workers each run in their own session; with \`kernel.sched_autogroup_enabled=1\` every session is its own CPU-scheduling group, which favours corral's workers against wrk a little compared with Node's and PM2's, whose workers share one session."
  echo
  echo "Details:"
  echo
  printf '%s\n' "${DETAILS[@]}"
} >"$RESULTS"
cat "$RESULTS"
