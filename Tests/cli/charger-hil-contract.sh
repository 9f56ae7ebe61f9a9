#!/usr/bin/env bash
# charger-hil's contract: the shipped scenarios pass (exit 0) with their traces, plots and JUnit; a
# scenario with wrong expectations fails (exit 1) naming them with their values; an unreadable file is
# exit 2; a fuzz campaign of 200 seeds passes; a seed replays bit for bit.
set -uo pipefail
HIL=${1:-.build/release/charger-hil}
OUT=$(mktemp -d)
pass=0; fail=0
check() { if eval "$2"; then echo "ok   $1"; pass=$((pass+1)); else echo "FAIL $1"; fail=$((fail+1)); fi; }

out=$("$HIL" run HIL/scenarios/*.toml --out "$OUT/all" 2>&1); rc=$?
echo "$out" | grep -E "^(PASS|FAIL)|scenario\(s\) passed"
check "every shipped scenario passes (exit 0)" '[ $rc = 0 ]'
n=$(ls HIL/scenarios/*.toml | wc -l)
check "at least 25 scenarios" '[ $n -ge 25 ]'
check "a trace CSV and an SVG plot per scenario" '[ $(ls "$OUT/all"/*.csv | wc -l) = $n ] && [ $(ls "$OUT/all"/*.svg | wc -l) = $n ]'
check "junit.xml and the plots are well-formed XML" 'python3 -c "import sys,glob,xml.dom.minidom as m; [m.parse(f) for f in glob.glob(sys.argv[1]+\"/*.svg\")+[sys.argv[1]+\"/junit.xml\"]]" "$OUT/all"'
check "junit.xml has a testsuite per scenario and no failure" '[ $(grep -c "<testsuite " "$OUT/all/junit.xml") = $n ] && ! grep -q "<failure" "$OUT/all/junit.xml"'

out=$("$HIL" run Tests/hil/wrong-expectation.toml --out "$OUT/wrong" 2>&1); rc=$?
echo "$out"
check "a wrong scenario fails with exit 1" '[ $rc = 1 ]'
check "it names the wrong expectations with their values" 'echo "$out" | grep -q "FAIL no fault: E02-door-open@100.000s" && echo "$out" | grep -q "FAIL run ends completed: ended faulted"'
check "and the right one passes" 'echo "$out" | grep -q "ok   gun0 is charging at 90.000 s"'
check "its junit.xml carries the failures" '[ $(grep -c "<failure" "$OUT/wrong/junit.xml") = 2 ]'

printf '[scenario\nname=' > "$OUT/bad.toml"
out=$("$HIL" run "$OUT/bad.toml" --out "$OUT/bad" 2>&1); rc=$?
check "a malformed file is exit 2 with its name" '[ $rc = 2 ] && echo "$out" | grep -q "bad.toml: TOML syntax error"'

out=$("$HIL" fuzz --seeds 200 2>&1); rc=$?
echo "$out" | tail -3
check "a campaign of 200 seeds passes" '[ $rc = 0 ] && echo "$out" | grep -q "200 seed(s) from 1, 200 passed, 0 failed"'
a=$("$HIL" fuzz --seeds 1 --seed 77 --verbose | grep -o "trace [0-9a-f]*")
b=$("$HIL" fuzz --seeds 1 --seed 77 --verbose | grep -o "trace [0-9a-f]*")
check "a seed replays bit for bit ($a)" '[ -n "$a" ] && [ "$a" = "$b" ]'

rm -rf "$OUT"
echo "charger-hil contract: $pass passed, $fail failed"
[ $fail = 0 ]
