#!/usr/bin/env bash
# make bench (issue 5): builds Release, then in one run on this machine
#   1. starts outreachd on a fresh directory (on the build's disk, so fsync is real) and runs
#      outreach-load: for concurrency 1, 16, 64 the baseline (grpc.health.v1 Check) and then each
#      scenario, BENCH_DURATION seconds each;
#   2. log_contact open loop at half the highest log_contact rps of step 1 (2 x BENCH_DURATION s);
#   3. the store micro-benchmarks (store_bench, Google Benchmark);
#   4. outreach-bench-data: rebuild, start-up, peak RSS, disk, worklist and (issue 16) 90-day
#      report figures on a
#      1,000,000-event log over 200,000 tasks, and the worklist figures again on a log of
#      BENCH_LARGE_TASKS open tasks (target 5; about 2 minutes of the run on 2 cores);
#   5. prints the table (each figure beside its target, PASS/MISS) and writes bench-results.json.
# Settings (environment): BENCH_BUILD_DIR (default ./build-bench), BENCH_DURATION (5),
# BENCH_LARGE_TASKS (2000000; 0 skips the large worklist), BENCH_EVENTS / BENCH_TASKS
# (1000000 / 200000: the targets are stated for these; smaller values only check that the
# pipeline works), BENCH_MIN_TIME (0.2 s per micro-benchmark), BENCH_RESULTS
# (./bench-results.json), JOBS (nproc).
# Every figure comes from this one run: compare ratios, not absolute numbers across machines.
# All traffic goes to 127.0.0.1; every process started here is stopped on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${BENCH_BUILD_DIR:-$ROOT/build-bench}
DURATION=${BENCH_DURATION:-5}
LARGE_TASKS=${BENCH_LARGE_TASKS:-2000000}
EVENTS=${BENCH_EVENTS:-1000000}
TASKS=${BENCH_TASKS:-200000}
MIN_TIME=${BENCH_MIN_TIME:-0.2}
RESULTS=${BENCH_RESULTS:-$ROOT/bench-results.json}
JOBS=${JOBS:-$(nproc)}
CONCURRENCIES=(1 16 64)
SCENARIOS=(create log_contact log_and_close list mixed)

started=$(date +%s)
say() { printf '== [%4ds] %s\n' $(( $(date +%s) - started )) "$*" >&2; }

say "building Release in $BUILD"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release --log-level=WARNING >/dev/null
cmake --build "$BUILD" -j"$JOBS" --target outreachd outreach-load store_bench \
  outreach-bench-data outreach-bench-report >/dev/null
OUTREACHD=$BUILD/server/outreachd
LOAD=$BUILD/tests/load/outreach-load

WORK=$(mktemp -d "$BUILD/bench-run.XXXXXX")
SERVER_PID=
cleanup() {
  if [[ -n $SERVER_PID ]]; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# outreachd on port 0; its log names the address it bound.
"$OUTREACHD" --db="$WORK/db" --listen=127.0.0.1:0 --time-zone=UTC 2>"$WORK/outreachd.log" &
SERVER_PID=$!
TARGET=
for _ in $(seq 1 200); do
  TARGET=$(sed -n 's/^outreachd: serving on \(127\.0\.0\.1:[0-9]*\).*/\1/p' "$WORK/outreachd.log")
  [[ -n $TARGET ]] && break
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/outreachd.log" >&2; exit 1; }
  sleep 0.05
done
[[ -n $TARGET ]] || { echo "outreachd did not start" >&2; cat "$WORK/outreachd.log" >&2; exit 1; }
say "outreachd serving on $TARGET (db $WORK/db)"

# The "rps" of the last JSON line of a file.
last_rps() { tail -n 1 "$1" | sed -n 's/.*"rps":\([0-9.]*\).*/\1/p'; }

LOADS=$WORK/load.jsonl
: >"$LOADS"
for c in "${CONCURRENCIES[@]}"; do
  # The baseline first, right beside the scenarios it is compared with.
  say "baseline at concurrency $c"
  "$LOAD" --target="$TARGET" --scenario=baseline --concurrency="$c" --duration="$DURATION" \
    --json >>"$LOADS"
  create_rps=0
  for scenario in "${SCENARIOS[@]}"; do
    say "$scenario at concurrency $c"
    extra=()
    if [[ $scenario == log_and_close ]]; then
      # Enough fresh tasks for the run: 1.2 x what create managed at this concurrency.
      extra=(--preload_close_tasks="$(awk -v r="$create_rps" -v d="$DURATION" \
        'BEGIN { n = int(r * d * 1.2) + 100; print n }')")
    fi
    "$LOAD" --target="$TARGET" --scenario="$scenario" --concurrency="$c" \
      --duration="$DURATION" --json "${extra[@]}" >>"$LOADS"
    [[ $scenario == create ]] && create_rps=$(last_rps "$LOADS")
  done
done

max_contact=$(sed -n 's/.*"scenario":"log_contact".*"rps":\([0-9.]*\).*/\1/p' "$LOADS" |
  sort -g | tail -n 1)
rate=$(awk -v m="$max_contact" 'BEGIN { r = m / 2; if (r < 1) r = 1; printf "%.0f", r }')
say "log_contact open loop at $rate/s (half of $max_contact)"
OPEN=$WORK/open.jsonl
"$LOAD" --target="$TARGET" --scenario=log_contact --rate="$rate" \
  --duration="$(( DURATION * 2 ))" --json >"$OPEN"

kill -TERM "$SERVER_PID"
wait "$SERVER_PID" || true
SERVER_PID=

say "store micro-benchmarks"
OUTREACH_BENCH_DIR=$WORK "$BUILD/tests/bench/store_bench" --benchmark_min_time="$MIN_TIME" \
  --benchmark_out="$WORK/store_bench.json" --benchmark_out_format=json >&2

say "data measurements ($EVENTS events over $TASKS tasks; large worklist: $LARGE_TASKS tasks)"
OUTREACH_BENCH_DIR=$WORK "$BUILD/tests/bench/outreach-bench-data" --outreachd="$OUTREACHD" \
  --load="$LOAD" --events="$EVENTS" --tasks="$TASKS" --large_tasks="$LARGE_TASKS" \
  >"$WORK/data.json"

machine="$(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1),"
machine+=" $(awk '/MemTotal/ { printf "%.0f GiB RAM", $2 / 1048576 }' /proc/meminfo),"
machine+=" $(uname -sr); client and server on the same machine"
say "report"
"$BUILD/tests/bench/outreach-bench-report" --load="$LOADS" --open="$OPEN" \
  --store_bench="$WORK/store_bench.json" --data="$WORK/data.json" --machine="$machine" \
  --out="$RESULTS"
say "done in $(( $(date +%s) - started ))s; machine: $machine"
