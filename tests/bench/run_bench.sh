#!/usr/bin/env bash
# make bench (issues 5 and 18): builds Release, then in one run on this machine
#   1. starts outreachd on a fresh directory (on the build's disk, so fsync is real) and runs
#      outreach-load: for concurrency 1, 16, 64 the baseline (grpc.health.v1 Check) and then each
#      scenario, BENCH_DURATION seconds each;
#      Before the concurrency-1 runs, the disk's own floor: outreach-fsync-probe (4 KiB write +
#      fdatasync in the server's directory, 2 x BENCH_DURATION s);
#   2. the fsync probe again, then log_contact open loop at half the highest log_contact rps of
#      step 1, BENCH_OPEN_RUNS runs (3) of 2 x BENCH_DURATION s each;
#   3. the PostgreSQL anchor (pg_anchor.sh: a throwaway cluster, pgbench at 1/16/64 clients,
#      BENCH_DURATION s each), with outreachd stopped; "not measured" if PostgreSQL is missing
#      (`make bench-deps` installs it);
#   4. the store micro-benchmarks (store_bench, Google Benchmark);
#   5. outreach-bench-data: rebuild (checked byte-identical to the live projections), start-up,
#      peak RSS, disk, worklist and (issue 16) 90-day report figures on a 1,000,000-event log
#      over 200,000 tasks, and the worklist and peak RSS figures again on a log of
#      BENCH_LARGE_TASKS open tasks (about 2 minutes of the run on 2 cores);
#   6. prints the tables (scenarios, log_contact beside PostgreSQL, micro-benchmarks, then issue
#      18's targets 1-7 each beside its figure, MET/MISS) and writes bench-results.json;
#   7. the cost of metrics (issue 14): log_contact at concurrency 64 against outreachd without and
#      with --metrics-listen (the same binary, each on a fresh directory, /metrics scraped every
#      second while on, as Prometheus would), BENCH_METRICS_ROUNDS rounds (3) alternating which
#      goes first; prints the ratio with/without and writes it to bench-metrics.json beside
#      BENCH_RESULTS. A third setting, metrics off and --log-level=warning (no request log
#      line), shows what the request log itself costs.
# Settings (environment): BENCH_BUILD_DIR (default ./build-bench), BENCH_DURATION (5),
# BENCH_LARGE_TASKS (2000000; 0 skips the large worklist), BENCH_EVENTS / BENCH_TASKS
# (1000000 / 200000: the targets are stated for these; smaller values only check that the
# pipeline works), BENCH_MIN_TIME (0.2 s per micro-benchmark), BENCH_RESULTS
# (./bench-results.json), JOBS (nproc), BENCH_OPEN_RUNS (3), BENCH_METRICS_ROUNDS (3; 0 skips
# step 7), BENCH_ONLY (empty = every step; "metrics" = step 7 alone).
# Every figure comes from this one run: compare ratios, not absolute numbers across machines.
# All traffic goes to 127.0.0.1 (PostgreSQL: a Unix socket); every process started here is
# stopped on exit.
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
METRICS_ROUNDS=${BENCH_METRICS_ROUNDS:-3}
OPEN_RUNS=${BENCH_OPEN_RUNS:-3}
ONLY=${BENCH_ONLY:-}
CONCURRENCIES=(1 16 64)
SCENARIOS=(create log_contact log_and_close list mixed)

started=$(date +%s)
say() { printf '== [%4ds] %s\n' $(( $(date +%s) - started )) "$*" >&2; }

say "building Release in $BUILD"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release --log-level=WARNING >/dev/null
cmake --build "$BUILD" -j"$JOBS" --target outreachd outreach-load store_bench \
  outreach-bench-data outreach-bench-report outreach-fsync-probe >/dev/null
OUTREACHD=$BUILD/server/outreachd
LOAD=$BUILD/tests/load/outreach-load

WORK=$(mktemp -d "$BUILD/bench-run.XXXXXX")
SERVER_PID=
SCRAPER_PID=
stop_server() {
  if [[ -n $SCRAPER_PID ]]; then
    kill "$SCRAPER_PID" 2>/dev/null || true
    wait "$SCRAPER_PID" 2>/dev/null || true
    SCRAPER_PID=
  fi
  if [[ -n $SERVER_PID ]]; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
  fi
}
cleanup() {
  [[ $BASHPID == "$$" ]] || return 0  # a background subshell (the scraper) owns none of it
  stop_server
  rm -rf "$WORK"
}
trap cleanup EXIT

# start_server DB LOG [FLAG...]: outreachd on port 0 with a JSON log, whose "serving on" record
# names the address it bound (TARGET), and "metrics on" the metrics address (METRICS_TARGET).
start_server() {
  local db=$1 log=$2
  shift 2
  "$OUTREACHD" --db="$db" --listen=127.0.0.1:0 --time-zone=UTC --log-format=json "$@" \
    2>"$log" &
  SERVER_PID=$!
  TARGET=
  for _ in $(seq 1 200); do
    # The log may not exist yet: the background shell opens it after this one goes on.
    TARGET=$(sed -n 's/.*"msg":"serving on \(127\.0\.0\.1:[0-9]*\) .*/\1/p' "$log" \
      2>/dev/null || true)
    [[ -n $TARGET ]] && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$log" >&2; exit 1; }
    sleep 0.05
  done
  [[ -n $TARGET ]] || { echo "outreachd did not start" >&2; cat "$log" >&2; exit 1; }
  METRICS_TARGET=$(sed -n 's/.*"metrics_address":"\([0-9.:]*\)".*/\1/p' "$log")
}

# start_quiet_server DB LOG: outreachd with --log-level=warning, which logs no address: on a
# random port, tried again if taken (outreach-load then waits for it to accept).
start_quiet_server() {
  local db=$1 log=$2
  for _ in $(seq 1 20); do
    TARGET=127.0.0.1:$(( 20000 + RANDOM % 40000 ))
    "$OUTREACHD" --db="$db" --listen="$TARGET" --time-zone=UTC --log-format=json \
      --log-level=warning 2>"$log" &
    SERVER_PID=$!
    sleep 1
    kill -0 "$SERVER_PID" 2>/dev/null && return 0
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
    rm -rf "$db"
  done
  echo "outreachd did not start" >&2; cat "$log" >&2; exit 1
}

# GET /metrics from METRICS_TARGET every second until killed (what a Prometheus scrape costs).
scrape_every_second() {
  trap - EXIT
  local host=${METRICS_TARGET%:*} port=${METRICS_TARGET##*:}
  while sleep 1; do
    { exec 3<>"/dev/tcp/$host/$port" &&
      printf 'GET /metrics HTTP/1.0\r\nHost: %s\r\n\r\n' "$host" >&3 &&
      cat <&3 >/dev/null; exec 3<&-; } 2>/dev/null || true
  done
}

# Step 7: log_contact at c=64 without and with --metrics-listen, alternating, on fresh directories.
metrics_overhead() {
  local out=$WORK/metrics.jsonl round setting
  : >"$out"
  for round in $(seq 1 "$METRICS_ROUNDS"); do
    local order=(off on quiet)
    (( round % 2 == 0 )) && order=(on off quiet)
    for setting in "${order[@]}"; do
      local db=$WORK/metrics-$setting-$round
      case $setting in
        off) start_server "$db" "$db.log" ;;
        on) start_server "$db" "$db.log" --metrics-listen=127.0.0.1:0 ;;
        quiet) start_quiet_server "$db" "$db.log" ;;
      esac
      if [[ $setting == on ]]; then
        scrape_every_second &
        SCRAPER_PID=$!
      fi
      say "metrics $setting (round $round): log_contact at concurrency 64"
      "$LOAD" --target="$TARGET" --scenario=log_contact --concurrency=64 \
        --duration="$DURATION" --json --progress=false |
        sed "s/^{/{\"metrics\":\"$setting\",\"round\":$round,/" >>"$out"
      stop_server
      rm -rf "$db"
    done
  done
  local sums
  sums=$(awk '
    match($0, /"metrics":"[a-z]*"/) { s = substr($0, RSTART + 11, RLENGTH - 12) }
    match($0, /"rps":[0-9.]*/) { rps[s] += substr($0, RSTART + 6, RLENGTH - 6); n[s]++ }
    END { printf "%.1f %.1f %.1f %d", rps["off"] / n["off"], rps["on"] / n["on"],
          rps["quiet"] / n["quiet"], n["on"] }' "$out")
  local off on quiet rounds
  read -r off on quiet rounds <<<"$sums"
  local ratio quiet_ratio
  ratio=$(awk -v a="$on" -v b="$off" 'BEGIN { printf "%.4f", a / b }')
  quiet_ratio=$(awk -v a="$off" -v b="$quiet" 'BEGIN { printf "%.4f", a / b }')
  local verdict=PASS
  awk -v r="$ratio" 'BEGIN { exit !(r >= 0.97) }' || verdict=MISS
  say "metrics overhead: log_contact c=64 with --metrics-listen / without = $ratio" \
    "($on vs $off rps, mean of $rounds rounds; target >= 0.97: $verdict);" \
    "request log on / off (--log-level=warning) = $quiet_ratio ($off vs $quiet rps)"
  printf '{"log_contact_c64_rps_metrics_off":%s,"log_contact_c64_rps_metrics_on":%s,' \
    "$off" "$on" >"${RESULTS%.json}-metrics.json"
  printf '"ratio_on_to_off":%s,"target":0.97,"rounds":%s,' "$ratio" "$rounds" \
    >>"${RESULTS%.json}-metrics.json"
  printf '"log_contact_c64_rps_request_log_off":%s,"ratio_request_log_on_to_off":%s,' \
    "$quiet" "$quiet_ratio" >>"${RESULTS%.json}-metrics.json"
  printf '"runs":[%s]}\n' "$(paste -sd, "$out")" >>"${RESULTS%.json}-metrics.json"
}

if [[ $ONLY == metrics ]]; then
  metrics_overhead
  say "done in $(( $(date +%s) - started ))s; wrote ${RESULTS%.json}-metrics.json"
  exit 0
fi

start_server "$WORK/db" "$WORK/outreachd.log"
say "outreachd serving on $TARGET (db $WORK/db)"

# The "rps" of the last JSON line of a file.
last_rps() { tail -n 1 "$1" | sed -n 's/.*"rps":\([0-9.]*\).*/\1/p'; }

LOADS=$WORK/load.jsonl
: >"$LOADS"
# fsync_probe WHEN: the disk's own floor (4 KiB write + fdatasync) on the server's directory,
# outreachd idle, 2 x DURATION s; one JSON line labelled WHEN appended to FSYNC. Taken right
# before the figures compared with it (target 3: the c=1 runs; target 5: the open loop), since
# other work on the machine moves it from one minute to the next.
FSYNC=$WORK/fsync.jsonl
: >"$FSYNC"
fsync_probe() {
  say "fsync probe ($1): 4 KiB write + fdatasync in $WORK/db for $(( DURATION * 2 ))s"
  "$BUILD/tests/bench/outreach-fsync-probe" --dir="$WORK/db" --seconds="$(( DURATION * 2 ))" |
    sed "s/^{/{\"when\":\"$1\",/" >>"$FSYNC"
  say "fsync probe: $(tail -n 1 "$FSYNC")"
}

for c in "${CONCURRENCIES[@]}"; do
  (( c == 1 )) && fsync_probe closed_c1
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

fsync_probe open_loop

max_contact=$(sed -n 's/.*"scenario":"log_contact".*"rps":\([0-9.]*\).*/\1/p' "$LOADS" |
  sort -g | tail -n 1)
rate=$(awk -v m="$max_contact" 'BEGIN { r = m / 2; if (r < 1) r = 1; printf "%.0f", r }')
OPEN=$WORK/open.jsonl
: >"$OPEN"
for run in $(seq 1 "$OPEN_RUNS"); do
  say "log_contact open loop at $rate/s (half of $max_contact), run $run of $OPEN_RUNS"
  "$LOAD" --target="$TARGET" --scenario=log_contact --rate="$rate" \
    --duration="$(( DURATION * 2 ))" --json >>"$OPEN"
done

stop_server

say "PostgreSQL anchor: pgbench at ${CONCURRENCIES[*]} clients, ${DURATION}s each"
PG=$WORK/pg.jsonl
: >"$PG"
"$ROOT/tests/bench/pg_anchor.sh" "$WORK" "$DURATION" "$PG" "${CONCURRENCIES[@]}" ||
  say "PostgreSQL anchor not measured (exit $?); target 2 will show MISS"

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
  --fsync="$FSYNC" --pg="$PG" --store_bench="$WORK/store_bench.json" --data="$WORK/data.json" \
  --machine="$machine" --out="$RESULTS"
(( METRICS_ROUNDS > 0 )) && metrics_overhead
say "done in $(( $(date +%s) - started ))s; machine: $machine"
