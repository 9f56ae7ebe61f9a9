#!/usr/bin/env bash
# Runs fuzz targets under libFuzzer (docs/fuzzing.md): Fuzz/run.sh SECONDS [TARGET...] (every target
# when none is named), two at a time on this 2-core machine (FUZZ_JOBS). Each starts from its committed
# corpus (Fuzz/corpus/TARGET) and writes what it finds into a scratch corpus (.build-fuzz/corpus/TARGET),
# never into the repository; a crash, a failed property, a leak or a timeout leaves its reproducer in
# .build-fuzz/findings/TARGET and fails the run. A line per target says executions, rate and coverage.
# FUZZ_RUNS=N FUZZ_SEED=S: N executions from seed S and the committed corpus alone, the same on every
# machine (make test's gate: what fails there fails everywhere; the long runs explore at random).
# FUZZ_MAX_RUNS=N: a long run ends at SECONDS or N executions, whichever comes first.
set -u
cd "$(dirname "$0")/.."
secs=${1:?usage: Fuzz/run.sh SECONDS [TARGET...]}; shift
bin=.build-fuzz/release/charger-fuzz
[ -x "$bin" ] || { echo "fuzz-parsers: $bin is missing (make fuzz-build)"; exit 2; }
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(ls Fuzz/corpus)
jobs=${FUZZ_JOBS:-2}
export SWIFT_BACKTRACE=enable=no ASAN_OPTIONS=detect_leaks=0:abort_on_error=0
run_one() {
  local t=$1 log=.build-fuzz/logs/$1.log scratch=.build-fuzz/corpus/$1 extra=()
  if [ -n "${FUZZ_RUNS:-}" ]; then
    scratch=.build-fuzz/gate/$t; rm -rf "$scratch"
    extra=(-runs="$FUZZ_RUNS" -seed="${FUZZ_SEED:-1}")
  elif [ -n "${FUZZ_MAX_RUNS:-}" ]; then
    extra=(-runs="$FUZZ_MAX_RUNS")
  fi
  mkdir -p "$scratch" .build-fuzz/findings/$t .build-fuzz/logs
  CHARGER_FUZZ_TARGET=$t "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 "${extra[@]}" \
    -print_final_stats=1 -artifact_prefix=.build-fuzz/findings/$t/ "$scratch" Fuzz/corpus/$t >"$log" 2>&1
  local rc=$?
  # A binary without coverage counters runs, finds nothing and says "passed": that is no figure.
  if [ $rc -eq 0 ] && ! grep -q 'INITED cov:' "$log"; then
    printf 'fuzz %-17s FAILED: no coverage feedback (the build is not instrumented: rm -rf .build-fuzz; make fuzz-build)\n' "$t"
    return 1
  fi
  local runs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | awk '{print $2}')

  local cov=$(grep -oE '#[0-9]+.*cov: [0-9]+' "$log" | tail -1 | grep -oE 'cov: [0-9]+' | awk '{print $2}')
  if [ $rc -eq 0 ]; then
    local took=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$log" | awk '{print $5}')
    took=${took:-$secs}
    local rate="?"; [ "${took:-0}" -gt 0 ] 2>/dev/null && [ -n "$runs" ] && rate=$((runs / took))
    printf 'fuzz %-17s passed: %s executions in %s s (%s/s), coverage %s edges\n' "$t" "${runs:-?}" "$took" "$rate" "${cov:-?}"
  else
    printf 'fuzz %-17s FAILED (exit %s): %s\n' "$t" "$rc" "$(grep -E 'ERROR|fuzz property failed|Fatal error|deadly|timeout' "$log" | head -2 | tr '\n' ' ')"
    ls .build-fuzz/findings/$t/ | sed "s|^|    reproducer: .build-fuzz/findings/$t/|"
    return 1
  fi
}
failed=0
running=0
pids=()
for t in "${targets[@]}"; do
  [ -d Fuzz/corpus/$t ] || { echo "fuzz: no target $t (Fuzz/corpus/$t)"; failed=1; continue; }
  run_one "$t" & pids+=($!)
  running=$((running + 1))
  if [ $running -ge $jobs ]; then wait -n || failed=1; running=$((running - 1)); fi
done
while [ $running -gt 0 ]; do wait -n || failed=1; running=$((running - 1)); done
exit $failed
