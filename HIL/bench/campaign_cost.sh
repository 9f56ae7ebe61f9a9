#!/usr/bin/env bash
# The fault campaign's cost in instructions: callgrind over `charger-hil fuzz --seeds N` (seeds 1..N, one
# process). Unlike wall time, the count is the same on a quiet and on a loaded machine, so one change to
# the step, the plant or the observer can be judged alone (BENCHMARKS.md "The fault campaign's per-cycle
# budget": wall time on this VM varied 30-43 s for the same 200 seeds within an hour).
#
#   HIL/bench/campaign_cost.sh [BINARY] [SEEDS]     default .build-campaign/release/charger-hil (make
#                                                   campaign-build), 2 seeds (~50 s under valgrind)
#
# Prints the instructions, the simulated cycles and the instructions per cycle, then the ten functions
# with the most instructions of their own. Needs valgrind (Debian: apt-get install valgrind).
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-.build-campaign/release/charger-hil}
seeds=${2:-2}
[ -x "$bin" ] || { echo "campaign_cost: no binary $bin (make campaign-build, or give one)" >&2; exit 2; }
[[ "$seeds" =~ ^[1-9][0-9]{0,3}$ ]] || { echo "campaign_cost: SEEDS must be 1...9999" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "campaign_cost: valgrind is not installed (apt-get install valgrind)" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# valgrind cannot read this toolchain's DWARF 5: a copy without debug sections (symbols kept).
strip -g -o "$work/charger-hil" "$bin"
valgrind --tool=callgrind --callgrind-out-file="$work/cg.out" "$work/charger-hil" fuzz --seeds "$seeds" --jobs 1 \
    > "$work/fuzz.txt" 2> "$work/valgrind.txt" || { tail -20 "$work/valgrind.txt" >&2; exit 1; }
total=$(grep -o "Collected : [0-9]*" "$work/valgrind.txt" | grep -o "[0-9]*$")
# Every simulated 1 ms cycle runs the control half once: its calls, summed over its callers.
calls=$(callgrind_annotate --tree=caller "$work/cg.out" 2>/dev/null | awk '
    /^$/ { n = 0; next }
    / < / { if (match($0, /\([0-9,]+x\)/)) { c = substr($0, RSTART + 1, RLENGTH - 3); gsub(",", "", c); n += c } next }
    /\*  .*SimulationC11controlHalfyyF/ { print n; exit }
    { n = 0 }' || true)
tail -1 "$work/fuzz.txt"
echo "instructions   $(printf "%'d" "$total") for seeds 1-$seeds ($bin)"
if [ -n "$calls" ] && [ "$calls" -gt 0 ]; then
    echo "cycles         $(printf "%'d" "$calls") simulated (1 ms each)"
    echo "per cycle      $(( total / calls )) instructions"
fi
echo "most instructions of their own:"
callgrind_annotate "$work/cg.out" 2>/dev/null | grep -E "^ *[0-9,]+ \( *[0-9.]+%\)  " | grep -v "PROGRAM TOTALS" | head -10 \
    | sed -E 's/\[[^]]*\]$//; s/\?\?\?://' | { if command -v swift >/dev/null; then swift demangle --simplified; else cat; fi; } | cut -c1-150 || true
