#!/usr/bin/env bash
# Runs every libFuzzer target of a fuzz build for a fixed time each (FUZZ_JOBS at a time).
#
#   tests/fuzz/run.sh <build-dir> <seconds-per-target> [target...]
#
# Each target starts from <build-dir>/fuzz-corpus/<target> (the checked-in seeds plus whatever
# earlier runs found) and adds what it finds there. A crash, a sanitizer report (ASan; UBSan
# aborts on its first report), a violated invariant, an input that runs longer than
# FUZZ_TIMEOUT seconds (default 10) or a leak fails the run; the input is kept as
# <build-dir>/fuzz-artifacts/<target>-<kind>-<sha1> and can be replayed by passing that file to the
# target binary. FUZZ_JOBS (default 1) targets run at a time. Prints one line per target and a
# "summary:" line; exits non-zero if any failed.
set -uo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 <build-dir> <seconds-per-target> [target...]" >&2
  exit 2
fi
build="$1"
seconds="$2"
shift 2
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(create_task_fuzzer log_contact_fuzzer list_tasks_fuzzer get_task_fuzzer
           read_events_fuzzer decode_event_fuzzer)
fi
timeout_per_input="${FUZZ_TIMEOUT:-10}"
mkdir -p "$build/fuzz-artifacts" "$build/fuzz-logs"
# A symbolized stack for every report; UBSan already stops at its first (-fno-sanitize-recover).
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}"
if command -v llvm-symbolizer-14 >/dev/null 2>&1; then
  export ASAN_SYMBOLIZER_PATH="${ASAN_SYMBOLIZER_PATH:-$(command -v llvm-symbolizer-14)}"
fi

# One target: its result line goes to <build>/fuzz-logs/<target>.result; non-zero on failure.
run_target() {
  local target="$1" binary corpus log result before after status runs cov
  binary="$build/tests/fuzz/$target"
  corpus="$build/fuzz-corpus/$target"
  log="$build/fuzz-logs/$target.log"
  result="$build/fuzz-logs/$target.result"
  if [ ! -x "$binary" ] || [ ! -d "$corpus" ]; then
    echo "fuzz $target: not built (build the 'fuzzers' target of $build)" > "$result"
    return 1
  fi
  before=$(find "$corpus" -type f | wc -l)
  # The outer timeout only guards against libFuzzer itself wedging; -timeout catches slow inputs.
  timeout --kill-after=10 $((seconds + 120)) "$binary" \
    -max_total_time="$seconds" -timeout="$timeout_per_input" -max_len=8192 \
    -rss_limit_mb=2048 -print_final_stats=1 -print_funcs=0 \
    -artifact_prefix="$build/fuzz-artifacts/$target-" "$corpus" > "$log" 2>&1
  status=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  cov=$(grep -Eo 'cov: [0-9]+' "$log" | tail -n 1 | awk '{print $2}')
  after=$(find "$corpus" -type f | wc -l)
  echo "${runs:-0}" > "$result.runs"
  if [ $status -eq 0 ]; then
    echo "fuzz $target: ok, ${runs:-0} inputs in ${seconds}s, coverage ${cov:-?} edges, corpus $before -> $after" > "$result"
    return 0
  fi
  {
    echo "fuzz $target: FAILED (exit $status), see $log:"
    grep -E 'ERROR|WARNING|runtime error|invariant violated|Test unit written|SUMMARY|timeout' "$log" | head -n 20
  } > "$result"
  return 1
}

# FUZZ_JOBS targets at a time (default 1); each runs its own time box.
jobs="${FUZZ_JOBS:-1}"
running=0
for target in "${targets[@]}"; do
  if [ "$running" -ge "$jobs" ]; then
    wait -n
    running=$((running - 1))
  fi
  rm -f "$build/fuzz-logs/$target.result" "$build/fuzz-logs/$target.result.runs"
  run_target "$target" &
  running=$((running + 1))
done
wait

failed=()
total_runs=0
for target in "${targets[@]}"; do
  result="$build/fuzz-logs/$target.result"
  cat "$result"
  [ -f "$result.runs" ] && total_runs=$((total_runs + $(cat "$result.runs")))
  grep -q "^fuzz $target: ok," "$result" || failed+=("$target")
done
if [ ${#failed[@]} -eq 0 ]; then
  echo "summary: ${#targets[@]} fuzz targets, ${seconds}s each, $total_runs inputs, no failures"
  exit 0
fi
echo "summary: ${#failed[@]} of ${#targets[@]} fuzz targets failed: ${failed[*]}"
exit 1
