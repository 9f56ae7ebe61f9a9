#!/usr/bin/env bash
# The chargerd command-line contract (docs/chargerd.md "chargerd contract"), checked on the built binary:
# exit codes, the JSON summary on the last line, and clear errors for bad input.
set -u
bin=${1:-.build/release/chargerd}
boards=${2:-Boards}
pass=0; fail=0
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

check() { # name, condition-result
    if [ "$2" = 0 ]; then pass=$((pass+1)); echo "ok   $1"; else fail=$((fail+1)); echo "FAIL $1"; fi
}
json() { tail -n 1 "$1" | python3 -c "import json,sys; d=json.loads(sys.stdin.read()); $2"; }

# 1. A default session: exit 0, JSON last line with the contract's keys.
"$bin" --board "$boards/sim-60kw.toml" --json --status-interval 600 >"$tmp/ok.out" 2>"$tmp/ok.err"; rc=$?
check "default session exits 0" $([ $rc = 0 ]; echo $?)
json "$tmp/ok.out" "assert d['end_state']=='completed' and d['faults']==[] and 36<d['energy_kwh']<38.5 and d['duration_s']>1800 and 55<d['peak_power_kw']<=60.6, d" 2>/dev/null
check "JSON summary: energy_kwh, duration_s, peak_power_kw, end_state, faults" $?
grep -q "gun0 charging" "$tmp/ok.out"; check "status lines name the state" $?
grep -q "limit .*(gun-rating)" "$tmp/ok.out"; check "status lines name the binding limit source" $?

# 2. An injected fault: non-zero exit, the fault named with code, time and reaction.
"$bin" --board "$boards/sim-60kw.toml" --json --inject estop@120s >"$tmp/f.out" 2>"$tmp/f.err"; rc=$?
check "faulted session exits 1" $([ $rc = 1 ]; echo $?)
json "$tmp/f.out" "f=d['faults'][0]; assert d['end_state']=='faulted' and f['code']=='E01-estop' and f['at_s']==120.0 and f['reaction']=='emergency-shutdown', d" 2>/dev/null
check "JSON faults list code, time and reaction" $?
grep -q "E01-estop" "$tmp/f.err"; check "stderr names the fault" $?

# 3. Several injections and a custom car.
"$bin" --board "$boards/sim-60kw.toml" --json --car 'capacity=40kWh,soc=50,target=60,max-voltage=500V' --inject module-fail=1@60s >"$tmp/m.out" 2>&1; rc=$?
check "module failure derates, session still ends normally" $([ $rc = 0 ]; echo $?)
json "$tmp/m.out" "assert d['faults'][0]['code']=='E22-module-fault' and d['faults'][0]['reaction']=='derate' and d['soc_end']>=60, d" 2>/dev/null
check "derate fault listed" $?

# 4. Bad input is refused with exit 2 and a message naming what was wrong.
printf '[board]\nname = "x"\nkind = "sim"\ngrid_limit = "80 kW"\nbogus = 1\n' > "$tmp/bad.toml"
"$bin" --board "$tmp/bad.toml" >/dev/null 2>"$tmp/b.err"; rc=$?
check "bad board file exits 2" $([ $rc = 2 ]; echo $?)
grep -q "bad.toml: board.bogus: unknown key" "$tmp/b.err"; check "board error names file, key and why" $?
"$bin" --board /nonexistent.toml >/dev/null 2>"$tmp/n.err"; rc=$?
check "missing board file exits 2 with its path" $([ $rc = 2 ] && grep -q "/nonexistent.toml" "$tmp/n.err"; echo $?)
"$bin" --board "$boards/sim-60kw.toml" --car 'soc=90,target=80' >/dev/null 2>"$tmp/c.err"; rc=$?
check "impossible car refused" $([ $rc = 2 ] && grep -q "target" "$tmp/c.err"; echo $?)
"$bin" --board "$boards/sim-60kw.toml" --inject 'estop@soon' >/dev/null 2>"$tmp/i.err"; rc=$?
check "bad injection time refused" $([ $rc = 2 ] && grep -q "estop@soon" "$tmp/i.err"; echo $?)
"$bin" --board "$boards/sim-60kw.toml" --inject 'setpoint=-20MW@10s' >/dev/null 2>"$tmp/s.err"; rc=$?
check "out-of-range setpoint refused" $([ $rc = 2 ] && grep -q "out of range" "$tmp/s.err"; echo $?)
"$bin" --board "$boards/sim-60kw.toml" --speed fast >/dev/null 2>"$tmp/sp.err"; rc=$?
check "bad speed refused" $([ $rc = 2 ] && grep -q "speed" "$tmp/sp.err"; echo $?)
# The charge point's key and the technicians' credentials: refused when others can write them.
printf 'key\n' > "$tmp/cp.key"; chmod 666 "$tmp/cp.key"
printf '[site]\nname = "k"\nutc_offset = "+08:00"\n[ocpp]\nurl = "wss://127.0.0.1:9/CP1"\nkey = "%s"\ncert = "%s"\n' "$tmp/cp.key" "$tmp/cp.key" > "$tmp/site.toml"
"$bin" --board "$boards/sim-60kw.toml" --site "$tmp/site.toml" --speed 1 --max-time 1 >/dev/null 2>"$tmp/k.err"; rc=$?
check "world-writable OCPP key refused" $([ $rc = 2 ] && grep -q "OCPP key $tmp/cp.key: mode 0666 lets every user write it: refused" "$tmp/k.err"; echo $?)
printf 'tech:$6$x$y\n' > "$tmp/creds"; chmod 620 "$tmp/creds"
"$bin" --board "$boards/sim-60kw.toml" --credentials "$tmp/creds" >/dev/null 2>"$tmp/cr.err"; rc=$?
check "group-writable credentials refused" $([ $rc = 2 ] && grep -q "credentials $tmp/creds: mode 0620 lets its group write it" "$tmp/cr.err"; echo $?)

# 5. Continuous mode: waits for cars; serves several in a row, stops at --max-time.
"$bin" --board "$boards/sim-60kw.toml" --continuous --car 'capacity=20kWh,soc=50,target=60' --arrival-interval 60 --max-time 2400 --json --status-interval 0 >"$tmp/k.out" 2>&1; rc=$?
check "continuous mode exits 0" $([ $rc = 0 ]; echo $?)
json "$tmp/k.out" "assert d['sessions_completed']>=3, d['sessions_completed']" 2>/dev/null
check "continuous mode serves car after car" $?

# 6. Continuous mode stops cleanly on SIGINT with its summary.
"$bin" --board "$boards/sim-60kw.toml" --continuous --speed 600 --json --status-interval 0 >"$tmp/sig.out" 2>&1 &
pid=$!; sleep 2; kill -INT $pid; wait $pid; rc=$?
check "continuous mode stops on SIGINT with exit 0" $([ $rc = 0 ]; echo $?)
json "$tmp/sig.out" "assert d['faults']==[] and d['duration_s']>100, d" 2>/dev/null
check "and prints its summary" $?

# 6b. A single session stopped by SIGTERM before it ends: a normal shutdown, not a fault.
"$bin" --board "$boards/sim-60kw.toml" --speed 60 --json --status-interval 0 >"$tmp/term1.out" 2>&1 &
pid=$!; sleep 2; kill -TERM $pid; wait $pid; rc=$?
check "SIGTERM mid-session exits 0" $([ $rc = 0 ]; echo $?)
json "$tmp/term1.out" "assert d['end_state']=='interrupted' and d['faults']==[], d" 2>/dev/null
check "with end state interrupted" $?

# 7. The fault codes a technician sees, with their reaction class.
"$bin" --list-faults >"$tmp/lf.out"; rc=$?
check "--list-faults" $([ $rc = 0 ] && grep -q "^E01-estop .*emergency-shutdown .*station" "$tmp/lf.out" && grep -q "^E05-insulation .*error-shutdown" "$tmp/lf.out"; echo $?)

# 8. The real-time loop (wall-clock time): a ground fault while charging ends the session with the
#    fault, and the loop's own figures are printed; SIGTERM stops the loop promptly.
"$bin" --board "$boards/sim-60kw.toml" --realtime --json --status-interval 5 --inject ground-fault@9s >"$tmp/rt.out" 2>"$tmp/rt.err"; rc=$?
check "--realtime: ground fault while charging exits 1" $([ $rc = 1 ]; echo $?)
grep -q "gun0 FAULT E03-ground-fault (emergency-shutdown)" "$tmp/rt.out"; check "--realtime: the fault is printed as it latches, with its time" $?
grep -q "gun0 charging" "$tmp/rt.out"; check "--realtime: phase changes printed" $?
grep -Eq "^loop: [0-9]+ cycles, [0-9]+ missed deadlines .*wake-up latency p50 [0-9]+ µs p99 [0-9]+ µs" "$tmp/rt.out"; check "--realtime: loop figures (cycles, misses, latency)" $?
json "$tmp/rt.out" "assert d['faults'][0]['code']=='E03-ground-fault' and d['end_state']=='faulted', d" 2>/dev/null
check "--realtime: JSON summary" $?

"$bin" --board "$boards/sim-60kw.toml" --realtime --status-interval 0 >"$tmp/term.out" 2>&1 &
pid=$!; sleep 2; kill -TERM $pid; wait $pid
check "--realtime stops on SIGTERM with the loop figures" $(grep -q "^loop: " "$tmp/term.out"; echo $?)

# 9. Without the rights for SCHED_FIFO and memory locking it still runs, with one warning saying what
#    is missing and how to grant it.
if command -v setpriv >/dev/null && command -v prlimit >/dev/null; then
    setpriv --inh-caps=-sys_nice,-ipc_lock --bounding-set=-sys_nice,-ipc_lock \
        prlimit --rtprio=0 --memlock=0 "$bin" --board "$boards/sim-60kw.toml" --realtime --max-time 1 --status-interval 0 >"$tmp/nr.out" 2>"$tmp/nr.err"; rc=$?
    check "--realtime without rights still runs (exit 4 at --max-time)" $([ $rc = 4 ] && grep -q "^loop: " "$tmp/nr.out"; echo $?)
    check "--realtime without rights: exactly one warning" $([ "$(grep -c 'warning' "$tmp/nr.err")" = 1 ]; echo $?)
    grep -q "warning: running without real-time guarantees: SCHED_FIFO priority 80 refused (EPERM): grant LimitRTPRIO=80 .*memory not locked (.*): grant LimitMEMLOCK=infinity" "$tmp/nr.err"
    check "--realtime without rights: the warning names SCHED_FIFO, memory locking and how to grant them" $?
else
    echo "skip --realtime without rights (setpriv/prlimit missing)"
fi

# 10. A real board on a machine without its GPIO chip: exit 2, naming the chip and what to do instead.
"$bin" --board "$boards/cm4-rs485-60kw.toml" >/dev/null 2>"$tmp/real.err"; rc=$?
if [ -e /dev/gpiochip0 ]; then
    echo "skip real board without its chip (this machine has /dev/gpiochip0)"
else
    check "real board without its GPIO chip exits 2" $([ $rc = 2 ]; echo $?)
    grep -q "cannot open GPIO chip 'gpiochip0'.*use a sim- board, e.g. --board Boards/sim-60kw.toml" "$tmp/real.err"
    check "the error names the chip and suggests a sim- board" $?
fi

# A restart is not a reset: a fault latched when chargerd stopped is latched again at the next start
# (from the journal) until an explicit reset clears it; the start after that is clean.
car="capacity=10kWh,soc=30,target=40,plug-at=1s"
"$bin" --board "$boards/sim-60kw.toml" --car "$car" --inject door@20s --journal "$tmp/jl" --max-time 40 --status-interval 0 >"$tmp/l1.out" 2>&1; rc=$?
check "a door opened while charging latches E02 (exit 1)" $([ $rc = 1 ] && grep -q "E02-door-open" "$tmp/l1.out"; echo $?)
"$bin" --board "$boards/sim-60kw.toml" --car "$car" --journal "$tmp/jl" --max-time 10 --status-interval 0 >"$tmp/l2.out" 2>&1; rc=$?
check "after a restart E02 is still latched: said at start, no session, exit 1" $([ $rc = 1 ] && grep -q "1 fault(s) latched before this start, latched again until a reset: E02-door-open" "$tmp/l2.out" && ! grep -q "gun0 charging" "$tmp/l2.out"; echo $?)
"$bin" journal export --dir "$tmp/jl" >"$tmp/l2.journal" 2>&1
# Latched again with the reading that tripped it first (issue 36: it was NaN, "value nan" on the console).
check "the journal records the latch again at start, with its first reading" $(grep -q "fault E02-door-open (error-shutdown) value 1 fault#1 latched again at start" "$tmp/l2.journal"; echo $?)
"$bin" --board "$boards/sim-60kw.toml" --car "capacity=10kWh,soc=30,target=32,plug-at=5s" --inject reset@2s --journal "$tmp/jl" --max-time 300 --status-interval 0 >"$tmp/l3.out" 2>&1
check "a reset clears it and the car charges" $(grep -q "E02-door-open gun -1 at 0.000 s → error-shutdown (value 1.000), cleared at 2.000 s" "$tmp/l3.out" && grep -qE "^energy +0\.[1-9][0-9]* kWh" "$tmp/l3.out"; echo $?)
"$bin" --board "$boards/sim-60kw.toml" --car "$car" --journal "$tmp/jl" --max-time 5 --status-interval 0 >"$tmp/l4.out" 2>&1
check "the start after the reset is clean" $(! grep -q "latched before this start" "$tmp/l4.out"; echo $?)

# A car link that cannot open: the bench board's [[can]] on vcan0, which this machine does not have (or
# whose kernel has no SocketCAN: CI's container may have neither). Exit 2 naming the interface, after
# the plant emulator attached; and --can-log on a board without [[can]] is refused.
plant=$(dirname "$bin")/charger-plant
if [ -x "$plant" ] && ! ip link show vcan0 >/dev/null 2>&1; then
    sed -e "s|^channel = .*|channel = \"$tmp/can-channel\"|" -e 's|^port = 15021|port = 15041|' "$boards/bench-60kw-can.toml" > "$tmp/can.toml"
    "$plant" --board "$tmp/can.toml" --once --max-time 30 >"$tmp/canplant.out" 2>&1 &
    pp=$!
    for i in $(seq 1 100); do grep -q ready "$tmp/canplant.out" && break; sleep 0.1; done
    "$bin" --board "$tmp/can.toml" --max-time 5 >"$tmp/can.out" 2>&1; rc=$?
    kill $pp 2>/dev/null; wait $pp 2>/dev/null
    check "a CAN interface that is not there: exit 2 naming it ($(grep -o 'CAN vcan0: [^(]*' "$tmp/can.out" | head -1))" \
        $([ $rc = 2 ] && grep -q "CAN vcan0: \(no such network interface\|the kernel has no SocketCAN\)" "$tmp/can.out"; echo $?)
fi
"$bin" --board "$boards/bench-60kw-tcp.toml" --can-log "$tmp/x.log" --max-time 1 >"$tmp/nocan.out" 2>&1; rc=$?
check "--can-log without a [[can]] link: exit 2" $([ $rc = 2 ] && grep -q "has no car link on CAN" "$tmp/nocan.out"; echo $?)

echo "contract: $pass passed, $fail failed"
[ "$fail" = 0 ]
