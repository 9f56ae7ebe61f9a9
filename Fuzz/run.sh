#!/usr/bin/env bash
# Runs fuzz targets under libFuzzer (docs/fuzzing.md): Fuzz/run.sh SECONDS [TARGET...] (every target
# when none is named), two at a time on this 2-core machine (FUZZ_JOBS). Each starts from its committed
# corpus (Fuzz/corpus/TARGET) and writes what it finds into a scratch corpus (.build-fuzz/corpus/TARGET),
# never into the repository; a crash, a failed property, a leak or a timeout leaves its reproducer in
# .build-fuzz/findings/TARGET and fails the run. A line per target says executions, rate and coverage.
# FUZZ_RUNS=N FUZZ_SEED=S: N executions from seed S and the committed corpus alone, the same on every
# machine (make test's gate: what fails there fails everywhere; the long runs explore at random).
# FUZZ_MAX_RUNS=N: a long run ends at SECONDS or N executions, whichever comes first, in rounds of
# FUZZ_ROUND_RUNS (200,000) executions, each a new process.
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
  local t=$1 log=.build-fuzz/logs/$1.log scratch=.build-fuzz/corpus/$1 extra=() rounds=1 per_round="" gate=0
  if [ -n "${FUZZ_RUNS:-}" ]; then
    scratch=.build-fuzz/gate/$t; rm -rf "$scratch"
    extra=(-seed="${FUZZ_SEED:-1}"); per_round=$FUZZ_RUNS
    # A target whose try is dear runs a share of the gate, as Fuzz/gate-share says (with its reason).
    local share=$(awk -v t="$t" '$1 == t { print $2 }' Fuzz/gate-share)
    [ -n "$share" ] && [ "$share" -gt 0 ] && per_round=$((FUZZ_RUNS / share))
    gate=$per_round
  elif [ -n "${FUZZ_MAX_RUNS:-}" ]; then
    # Rounds of at most ROUND executions, each a fresh process from the corpus found so far: TOMLKit
    # leaks on every parse (docs/fuzzing.md), so one long process of the TOML targets outgrows any limit.
    per_round=${FUZZ_ROUND_RUNS:-200000}; rounds=1000000
  fi
  mkdir -p "$scratch" .build-fuzz/findings/$t .build-fuzz/logs
  : > "$log"
  local start=$SECONDS runs=0 rc=0 n=0 cov="" target=${FUZZ_MAX_RUNS:-${FUZZ_RUNS:-0}}
  while [ $n -lt $rounds ]; do
    n=$((n + 1))
    local left=$((secs - (SECONDS - start)))
    [ $left -gt 0 ] || break
    local this=()
    if [ -n "$per_round" ]; then
      local want=$per_round
      [ "$target" -gt 0 ] && [ $((target - runs)) -lt $want ] && want=$((target - runs))
      [ $want -gt 0 ] || break
      this=(-runs="$want")
    fi
    CHARGER_FUZZ_TARGET=$t "$bin" -max_total_time="$left" -timeout=10 -rss_limit_mb=2048 -max_len=65536 "${extra[@]}" "${this[@]}" \
      -print_final_stats=1 -artifact_prefix=.build-fuzz/findings/$t/ "$scratch" Fuzz/corpus/$t >"$log.round" 2>&1
    rc=$?
    cat "$log.round" >> "$log"
    # A binary without coverage counters runs, finds nothing and says "passed": that is no figure.
    if [ $rc -eq 0 ] && ! grep -q 'INITED cov:' "$log.round"; then
      printf 'fuzz %-17s FAILED: no coverage feedback (the build is not instrumented: rm -rf .build-fuzz; make fuzz-build)\n' "$t"
      return 1
    fi
    local r=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log.round" | awk '{print $2}')
    runs=$((runs + ${r:-0}))
    cov=$(grep -oE '#[0-9]+.*cov: [0-9]+' "$log.round" | tail -1 | grep -oE 'cov: [0-9]+' | awk '{print $2}')
    [ $rc -eq 0 ] || break
    [ -n "${FUZZ_RUNS:-}" ] && break
  done
  rm -f "$log.round"
  # The gate is its N executions, never fewer: a slow or loaded machine that reaches the time bound first
  # has not run the gate (on a loaded host console and board-file once stopped at 62,000-70,000 of
  # 100,000 and "passed").
  if [ $rc -eq 0 ] && [ -n "${FUZZ_RUNS:-}" ] && [ "$runs" -lt "$gate" ]; then
    printf 'fuzz %-17s FAILED: the time bound (%s s) came after %s of its %s executions: not a gate run (raise the bound)\n' "$t" "$secs" "$runs" "$gate"
    return 1
  fi
  if [ $rc -eq 0 ]; then
    local took=$((SECONDS - start))
    local rate="?"; [ $took -gt 0 ] && rate=$((runs / took))
    printf 'fuzz %-17s passed: %s executions in %s s (%s/s, %s round(s)), coverage %s edges\n' "$t" "$runs" "$took" "$rate" "$n" "${cov:-?}"
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
