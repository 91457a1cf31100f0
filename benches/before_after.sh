#!/usr/bin/env bash
# Two corral binaries side by side, in one run: the five figures a refactor must not make
# worse, each measured for both binaries one right after the other, so that what else runs
# on a shared machine weighs on both alike.
#
#   benches/before_after.sh BEFORE_BIN AFTER_BIN
#   BA_SMOKE=1 benches/before_after.sh target/debug/corral target/debug/corral
#
# The measures (the Rust benches, built once from this checkout, told which binary to start
# with CORRAL_BENCH_BIN):
#   1. restart reaction: kill -9 of a worker → its replacement's first instruction,
#      --backoff 0, median and p99 of BA_KILLS kills (300)           restart_reaction.rs
#   2. start of BA_WORKERS workers (1000): corral started → the last worker's first
#      instruction (its own clock), and → the last `spawned` line read  restart_reaction.rs
#   3. BA_LINES lines (2,000,000) from `seq`, headless text and JSON → a file: lines/s and
#      corral's CPU seconds per million lines, every line checked          output_flow.rs
#   4. the dashboard idle: corral's CPU with 64 sleeping workers in a 120×40 pty, over
#      BA_WINDOW seconds (20)                                            dashboard_cpu.rs
#   5. event ingest: 2 workers × BA_MESSAGES messages (1,000,000) over the event channel,
#      counted exactly: messages/s and corral's CPU seconds per million   event_ingest.rs
# BA_MEASURES picks some (e.g. "restart lines"; default all five: restart start lines
# dashboard ingest); the table then shows only theirs. BA_ROUNDS rounds (3). In each round
# every measure runs for both binaries back to back, the first one alternating by round
# (before-after, after-before, …) so a machine that gets busier or quieter during the run
# does not favour either. Prints one Markdown table (the
# median of the rounds, after ÷ before, each binary's spread across rounds) and the raw
# numbers of every round; also saved as results.md in the run's folder with every bench's
# output: BA_SCRATCH (emptied at the start if an earlier run made it; refused if it holds
# anything else), else a new ${TMPDIR:-/tmp}/corral-before-after.* (removed after a smoke
# run that passed).
#
# The benches are built with `nice cargo bench --no-run` (release), or in smoke mode
# (BA_SMOKE=1: one round, each bench's own smoke sizes, a few seconds a binary) the test
# profile's `cargo test --no-run`, which the test command has built already. Only the corral
# binary differs between the two columns: the benches, their workers and the library the
# event senders use are this checkout's. Both binaries are copied into the run's folder
# first, so a rebuild during the run cannot change them, and copied again for each round.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
SCRATCH="${BA_SCRATCH:-}"
SMOKE="${BA_SMOKE:-}"
ROUNDS="${BA_ROUNDS:-3}"
KILLS="${BA_KILLS:-300}"
WORKERS="${BA_WORKERS:-1000}"
LINES="${BA_LINES:-2000000}"
WINDOW="${BA_WINDOW:-20}"
MESSAGES="${BA_MESSAGES:-1000000}"
MEASURES="${BA_MEASURES:-restart start lines dashboard ingest}"
if [[ "$SMOKE" == 1 ]]; then ROUNDS=1; fi
# shellcheck source=benches/lib.sh
source "$HERE/lib.sh"

# Mistakes in how it was called: one line, exit code 2.
usage() { warn "$@"; exit 2; }
(($# == 2)) || usage "usage: benches/before_after.sh BEFORE_BIN AFTER_BIN (see the top of the script)"
for bin in "$1" "$2"; do [[ -x "$bin" && -f "$bin" ]] || usage "not an executable file: $bin"; done
for v in ROUNDS KILLS WORKERS LINES WINDOW MESSAGES; do
  [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || usage "BA_$v must be a positive whole number, not '${!v}'"
done
for m in $MEASURES; do
  [[ " restart start lines dashboard ingest " == *" $m "* ]] ||
    usage "BA_MEASURES: no measure '$m' (restart start lines dashboard ingest)"
done
command -v python3 >/dev/null || die "python3 is needed (it reads cargo's output and makes the table)"

# Paths of the same length for both (a: before, b: after): corral, its workers and `seq`
# inherit CORRAL_BENCH_BIN and CORRAL_BENCH_RESULTS, and the size of the environment moves
# every process's initial stack, which alone can change a tight loop's speed.
declare -A SLOT=([before]=a [after]=b)
if [[ -n "$SCRATCH" ]]; then
  if [[ -e "$SCRATCH" && ! -e "$SCRATCH/.before_after" && -n "$(ls -A "$SCRATCH" 2>/dev/null)" ]]; then
    usage "BA_SCRATCH: $SCRATCH holds files this script did not make; name an empty or new folder"
  fi
  rm -rf "$SCRATCH"
  mkdir -p "$SCRATCH"
else
  # Its own folder: the test command's smoke run may run in several checkouts at once.
  SCRATCH="$(mktemp -d "${TMPDIR:-/tmp}/corral-before-after.XXXXXX")"
fi
mkdir -p "$SCRATCH/a" "$SCRATCH/b" "$SCRATCH/kept"
: >"$SCRATCH/.before_after"
cp -p "$1" "$SCRATCH/kept/before"
cp -p "$2" "$SCRATCH/kept/after"
# A new copy of each binary every round, measured from there: should where the kernel put a
# copy's pages matter for the whole run (not proven; event ingest once ran 15-20 % apart
# between two copies of the same bytes in every round of a run), a fresh copy per round
# turns that into noise the median sees instead of a bias of the run.
fresh_copies() {
  local which
  for which in before after; do
    rm -f "$SCRATCH/${SLOT[$which]}/corral"
    cp -p "$SCRATCH/kept/$which" "$SCRATCH/${SLOT[$which]}/corral"
  done
}

# ---------------------------------------------------------------------------------------
# The bench executables, built once.

BENCHES=(restart_reaction output_flow dashboard_cpu event_ingest)
if [[ "$SMOKE" == 1 ]]; then
  build=(cargo test --locked --no-run)
else
  build=(nice cargo bench --locked --no-run)
fi
for b in "${BENCHES[@]}"; do build+=(--bench "$b"); done
say "building the benches (${build[*]})"
(cd "$ROOT" && "${build[@]}" --message-format=json >"$SCRATCH/build.json" 2>"$SCRATCH/build.log") ||
  die "the build failed; see $SCRATCH/build.log"
declare -A EXE
while read -r name exe; do EXE[$name]="$exe"; done < <(python3 -c '
import json, sys
for line in open(sys.argv[1]):
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("executable") and "bench" in m["target"]["kind"]:
        print(m["target"]["name"], m["executable"])
' "$SCRATCH/build.json")
for b in "${BENCHES[@]}"; do [[ -x "${EXE[$b]:-}" ]] || die "cargo named no executable for the bench $b"; done

# ---------------------------------------------------------------------------------------
# Measuring.

FULL=(--bench)
if [[ "$SMOKE" == 1 ]]; then FULL=(); fi

# run_bench ROUND WHICH NAME BENCH [VAR=VALUE...]: one bench against one binary; its figures
# go to ROUND.SLOT, its output to ROUND.WHICH.NAME.log.
run_bench() {
  local round="$1" which="$2" name="$3" bench="$4" slot="${SLOT[$2]}" log
  shift 4
  log="$SCRATCH/$round.$which.$name.log"
  say "  round $round, $which: $name"
  bounded 600 env CORRAL_BENCH_BIN="$SCRATCH/$slot/corral" \
    CORRAL_BENCH_RESULTS="$SCRATCH/$round.$slot" "$@" \
    "${EXE[$bench]}" "${FULL[@]}" >"$log" 2>&1 ||
    die "$bench failed against the $which binary (round $round); see $log"
}

measure() {
  local round="$1" which="$2"
  case "$3" in
    restart) run_bench "$round" "$which" restart restart_reaction \
      CORRAL_BENCH_PARTS=reaction CORRAL_BENCH_KILLS="$KILLS" ;;
    start) run_bench "$round" "$which" start restart_reaction \
      CORRAL_BENCH_PARTS=start CORRAL_BENCH_START_WORKERS="$WORKERS" ;;
    lines) run_bench "$round" "$which" lines output_flow \
      CORRAL_BENCH_PARTS=file CORRAL_BENCH_LINES="$LINES" ;;
    dashboard) run_bench "$round" "$which" dashboard dashboard_cpu \
      CORRAL_BENCH_PARTS=idle CORRAL_BENCH_WINDOW="$WINDOW" ;;
    ingest) run_bench "$round" "$which" ingest event_ingest \
      CORRAL_BENCH_PARTS=corral CORRAL_BENCH_MESSAGES="$MESSAGES" ;;
  esac
}

# corral raises its own soft limit, but 1000 workers' pipes pass through this shell's children.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
STARTED_AT="$(date -u '+%Y-%m-%d %H:%M UTC')"
T0=$SECONDS
for ((round = 1; round <= ROUNDS; round++)); do
  if ((round % 2)); then order=(before after); else order=(after before); fi
  say "round $round of $ROUNDS (${order[0]} first; load $(cut -d' ' -f1-3 /proc/loadavg))"
  fresh_copies
  for m in $MEASURES; do
    for which in "${order[@]}"; do measure "$round" "$which" "$m"; done
  done
done
LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"

# ---------------------------------------------------------------------------------------
# The table.

if [[ "$SMOKE" == 1 ]]; then
  sizes="smoke: each bench's own smoke sizes, test-profile benches"
else
  sizes="$KILLS kills, $WORKERS workers, $LINES lines, ${WINDOW} s window, 2 × $MESSAGES messages"
fi
BA_HEADER="$(
  printf '%s\n' \
    "before: \`$1\` (sha256 $(sha256sum "$SCRATCH/kept/before" | cut -c1-12))" \
    "after: \`$2\` (sha256 $(sha256sum "$SCRATCH/kept/after" | cut -c1-12))" \
    "benches built from $(corral_rev); $ROUNDS round(s), $sizes; $((SECONDS - T0)) s" \
    "$STARTED_AT; $(machine); load average (1, 5, 15 min) $LOAD_BEFORE at the start, $LOAD_AFTER at the end"
)" BA_ROUNDS="$ROUNDS" BA_DIR="$SCRATCH" BA_MEASURES="$MEASURES" python3 - <<'EOF' | tee "$SCRATCH/results.md"
import os, statistics, sys

rounds = int(os.environ["BA_ROUNDS"])
folder = os.environ["BA_DIR"]
# measure, key, what, lower is better, format
ROWS = [
    ("restart", "restart_p50_ms", "restart reaction, median (ms)", True, "{:.3f}"),
    ("restart", "restart_p99_ms", "restart reaction, p99 (ms)", True, "{:.3f}"),
    ("start", "start_exec_ms", "start → every worker's first instruction (ms)", True, "{:.0f}"),
    ("start", "start_spawned_ms", "start → the last `spawned` line (ms)", True, "{:.0f}"),
    ("lines", "lines_text_per_s", "lines, text → file (lines/s)", False, "{:,.0f}"),
    ("lines", "lines_text_cpu_per_million", "lines, text: corral CPU s per million", True, "{:.3f}"),
    ("lines", "lines_json_per_s", "lines, JSON → file (lines/s)", False, "{:,.0f}"),
    ("lines", "lines_json_cpu_per_million", "lines, JSON: corral CPU s per million", True, "{:.3f}"),
    ("dashboard", "dashboard_idle_pct", "dashboard idle, 64 workers (% of a core)", True, "{:.2f}"),
    ("ingest", "ingest_per_s", "event ingest (messages/s)", False, "{:,.0f}"),
    ("ingest", "ingest_cpu_per_million", "event ingest: corral CPU s per million", True, "{:.3f}"),
]
# Only the measures run (BA_MEASURES), each with every figure in every round.
ROWS = [row[1:] for row in ROWS if row[0] in os.environ["BA_MEASURES"].split()]

def load(round_, which):
    out = {}
    with open(os.path.join(folder, f"{round_}.{dict(before='a', after='b')[which]}")) as f:
        for line in f:
            key, value = line.split()
            out[key] = float(value)
    return out

data = {w: [load(r, w) for r in range(1, rounds + 1)] for w in ("before", "after")}
missing = [(w, r + 1, k) for w in data for r, d in enumerate(data[w]) for k, *_ in ROWS if k not in d]
if missing:
    sys.exit(f"before_after.sh: figures missing (binary, round, figure): {missing}")

def spread(values):
    m = statistics.median(values)
    return (max(values) - min(values)) / m * 100 if m else 0.0

print("## Before / after\n")
print("\n".join("- " + l for l in os.environ["BA_HEADER"].splitlines()))
print()
print("| measure | before | after | after ÷ before | spread of rounds, before / after | |")
print("|---|---|---|---|---|---|")
for key, what, lower, fmt in ROWS:
    b = [d[key] for d in data["before"]]
    a = [d[key] for d in data["after"]]
    mb, ma = statistics.median(b), statistics.median(a)
    ratio = ma / mb if mb else float("inf")
    worse = ratio - 1 if lower else 1 - ratio
    noise = max(spread(b), spread(a)) / 100
    verdict = "within the spread" if abs(ratio - 1) <= noise else ("**worse**" if worse > 0 else "better")
    arrow = "lower is better" if lower else "higher is better"
    print(f"| {what} | {fmt.format(mb)} | {fmt.format(ma)} | {ratio:.3f} | "
          f"{spread(b):.0f} % / {spread(a):.0f} % | {verdict} ({arrow}) |")
print("\nSpread: (highest − lowest) ÷ median of a binary's rounds (with one round 0, so one round"
      " judges nothing). A figure is called worse or better only beyond the larger spread.")
print("\n### Every round\n")
print("| measure | " + " | ".join(f"before {r}" for r in range(1, rounds + 1)) + " | "
      + " | ".join(f"after {r}" for r in range(1, rounds + 1)) + " |")
print("|---|" + "---|" * (2 * rounds))
for key, what, _, fmt in ROWS:
    cells = [fmt.format(d[key]) for d in data["before"]] + [fmt.format(d[key]) for d in data["after"]]
    print(f"| {what} | " + " | ".join(cells) + " |")
EOF
if [[ "$SMOKE" == 1 && -z "${BA_SCRATCH:-}" ]]; then
  rm -rf "$SCRATCH"
else
  say "every bench's output: $SCRATCH"
fi
