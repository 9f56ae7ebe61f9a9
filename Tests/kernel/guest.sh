#!/bin/bash
# Runs inside the qemu guest (Tests/kernel/run.sh): one gpio-sim chip "charger-io" whose lines
# Boards/vm-gpio-sim-60kw.toml names, softdog, and charger-plant serving the Modbus devices on loopback;
# then each case, one PASS/FAIL line in $OUT/results.
set -u
. "$1"
RES="$OUT/results"
: > "$RES"
# Each line says when the case ended, in seconds of the guest's run (where test-kernel's time goes).
pass() { echo "PASS [$(( (${EPOCHREALTIME/./} - GUEST_T0) / 1000000 )) s] $*" >> "$RES"; }
failc() { echo "FAIL [$(( (${EPOCHREALTIME/./} - GUEST_T0) / 1000000 )) s] $*" >> "$RES"; }
GUEST_T0=${EPOCHREALTIME/./}
T=$(mktemp -d 2>/dev/null) || { mount -t tmpfs none /mnt && T=/mnt; }

# chargerd and charger-plant, and every library they load (the Swift runtime and Foundation, 90 MB), in
# the guest's memory: read from the host over 9p, which keeps no cache, each start took 1-3 s of the
# emulated CPU; from tmpfs 0.3 s (`chargerd --help`, 2026-12-07). The guest starts them about fifty
# times. (The Swift test bundle, run once, stays where it is: XCTEST.)
XCTEST="$BIN/dc-chargerPackageTests.xctest"
L=/dev/shm/chargerd-bin
mkdir -p "$L/lib" && cp "$BIN/chargerd" "$BIN/charger-plant" "$L/" \
    && for lib in $(ldd "$BIN/chargerd" "$BIN/charger-plant" | awk '$3 ~ /^\// { print $3 }' | sort -u); do cp -L "$lib" "$L/lib/" || break; done \
    && BIN=$L && export LD_LIBRARY_PATH=$L/lib

# Python, its standard library and python-can and cantools in tmpfs too (run.sh's python.tar beside this script, made by
# Tests/kernel/python_bundle.py): over 9p `import can, cantools` took 12-13 s of the emulated CPU in
# each of the five Python processes, from tmpfs with `python -S` 4.4-7.3 s. PY becomes a wrapper that
# runs the same interpreter on that tree; if it cannot import them there, PY stays as it was (noted).
# (Unpacked in the background beside the chip's and the plant's setup it took 115 s in a quiet suite and
# 140 s under stress-ng, against 8 s alone and 49 s in the foreground under the suite (q43): the tar over
# 9p and the setup's starts slowed each other, so it stays in the foreground.)
PY_T0=${EPOCHREALTIME/./}
if [ -f "$HERE/python.tar" ] && mkdir -p /dev/shm/py && tar xf "$HERE/python.tar" -C /dev/shm/py; then
    printf '#!/bin/sh\nPYTHONHOME=/dev/shm/py PYTHONPATH=/dev/shm/py/site exec %s -S -s "$@"\n' "$PY" > /dev/shm/py/python
    chmod +x /dev/shm/py/python
    if /dev/shm/py/python -c "import can, cantools, can.interfaces.socketcan, json, statistics, socket" 2> "$OUT/python-bundle.err"; then
        PY=/dev/shm/py/python
        echo "NOTE python from tmpfs: unpacked and its imports checked in $(( (${EPOCHREALTIME/./} - PY_T0) / 1000 )) ms" >> "$RES"
    else echo "NOTE python from tmpfs refused (PY stays $PY): $(tail -1 "$OUT/python-bundle.err")" >> "$RES"; fi
fi

# The guest's own timer slip, measured all along: a shell that asks to wake every 100 ms (read's timeout,
# no process started) writes how late each wake-up came. Under qemu's software emulation on a loaded host
# the guest is starved and its timers slip; a case that fails while they slipped past STARVED_MS was
# judged by the host's load, not by chargerd (can.sh runs it again alone). slip_during FROM TO (µs since
# the epoch): "max M p99 P" in ms.
STARVED_MS=${STARVED_MS:-200}
SLIP="$OUT/slip.log"
mkfifo "$T/slip.fifo"
( exec 3<>"$T/slip.fifo"; prev=${EPOCHREALTIME/./}
  while :; do read -t 0.1 -u 3; now=${EPOCHREALTIME/./}; echo "$now $(( now - prev - 100000 ))"; prev=$now; done ) > "$SLIP" 2>/dev/null &
SLIPPID=$!
slip_during() {
    awk -v a="$1" -v b="$2" '$1 >= a && $1 <= b { print $2 }' "$SLIP" | sort -n \
        | awk '{ v[NR] = $1 } END { if (NR == 0) { print "max ? p99 ?"; exit } printf "max %d p99 %d\n", v[NR] / 1000, v[int(0.99 * (NR - 1)) + 1] / 1000 }'
}
# starved "max M p99 P": the guest was starved in that window, its wake-ups late past STARVED_MS at most
# or past 50 ms at p99 (five of a CAN loop's 10 ms periods; the periods' tolerance, can_check.py).
starved() { awk -v s="$1" -v lim="$STARVED_MS" 'BEGIN { split(s, w, " "); exit !(w[2] + 0 > lim || w[4] + 0 > 50) }'; }

# The chip, through configfs.
modprobe configfs; mount -t configfs none /sys/kernel/config 2>/dev/null
insmod "$MODULE" || { failc "setup: insmod gpio-sim"; echo DONE >> "$RES"; exit 0; }
C=/sys/kernel/config/gpio-sim/chg
mkdir $C $C/gpio-bank0 && echo 18 > $C/gpio-bank0/num_lines && echo charger-io > $C/gpio-bank0/label && echo 1 > $C/live
SIM="/sys/devices/platform/$(cat $C/dev_name)/$(cat $C/gpio-bank0/chip_name)"
[ -d "$SIM/sim_gpio0" ] || { failc "setup: gpio-sim chip not live ($SIM)"; echo DONE >> "$RES"; exit 0; }
pull() { echo "$2" > "$SIM/sim_gpio$1/pull"; }          # drive an input: pull-up / pull-down
value() { cat "$SIM/sim_gpio$1/value"; }                # read an output
pull 14 pull-up                                          # pe-monitor: continuity good
modprobe softdog soft_noboot=1
WDOG=""
for d in /sys/class/watchdog/watchdog*; do [ "$(cat $d/identity 2>/dev/null)" = "Software Watchdog" ] && WDOG=/dev/$(basename $d); done
ip link set lo up

# The board as the test runs it: softdog's node for the watchdog. charger-plant runs the plant on the
# other side of the chip's lines (no car: it sets the inputs only when its physics changes them, so a
# case's own pulls stay) and serves the Modbus devices and the analog input module (Tests/kernel/bench.sh).
sed "s|^device = \"/dev/watchdog\"|device = \"$WDOG\"|" "$BOARDS/vm-gpio-sim-60kw.toml" > "$T/vm.toml"
HOLD_MS=$(grep -o '^hold = "[0-9]* ms"' "$T/vm.toml" | grep -o '[0-9]*')   # the coil supply's hold
. "$HERE/bench.sh"
bench_plant "$OUT/plant.log"
PLANT=$BPLANT
grep -q ready "$OUT/plant.log" && pass "setup: chip charger-io ($SIM), softdog $WDOG, the plant on the chip's lines and its Modbus devices served" \
    || failc "setup: charger-plant did not start: $(tail -3 $OUT/plant.log)"

# The CAN cases' links, boards and Python BMSes, started now so that their slow start under emulation
# overlaps the GPIO cases (Tests/kernel/can.sh; its cases run at 8-12 below).
. "$HERE/can.sh"
can_prestart

# Starts chargerd on the board in the background; waits until its loop runs.
start() {
    "$BIN/chargerd" --board "$T/vm.toml" --status-interval 1 --max-time 300 "$@" > "$OUT/chargerd.log" 2> "$OUT/chargerd.err" &
    CPID=$!
    for i in $(seq 1 600); do grep -q "real-time loop" "$OUT/chargerd.log" && return 0; kill -0 $CPID 2>/dev/null || return 1; sleep 0.1; done
    return 1
}
stop() { kill -TERM $CPID 2>/dev/null; wait $CPID; }
waitfor() { for i in $(seq 1 ${2:-300}); do grep -q "$1" "$OUT/chargerd.log" && return 0; sleep 0.1; done; return 1; }

# 1. A line another program holds: exit 2 naming chip, line and holder.
gpioset --mode=signal charger-io 0=0 &
HOLD=$!; sleep 1
"$BIN/chargerd" --board "$T/vm.toml" --max-time 5 > "$OUT/held.log" 2>&1; rc=$?
kill $HOLD; wait $HOLD 2>/dev/null
if [ $rc -eq 2 ] && grep -q 'charger-io:0 (k1k2 gun 0).*held by "gpioset"' "$OUT/held.log"; then pass "held line: exit 2, $(grep -o 'held by "gpioset"' $OUT/held.log)"
else failc "held line: rc=$rc $(cat $OUT/held.log | head -3)"; fi

# 2. Every line requested by chargerd, outputs at their safe level; the e-stop line latches E01, the
#    red lamp's line goes active and K1/K2's stays inactive.
if start; then
    n=$(gpioinfo charger-io | grep -c '"chargerd"')
    outs="$(value 0)$(value 1)$(value 2)$(value 4)"
    [ "$n" = 18 ] && [ "$outs" = "0000" ] && pass "lines: 18 of 18 held by chargerd, K1/K2, K3/K4, lock, rcd-test lines inactive" \
        || failc "lines: $n of 18 held by chargerd, outputs k1k2,k3k4,lock,rcd-test = $outs"
    pull 15 pull-up
    if waitfor "FAULT E01-estop" 600; then
        sleep 0.5
        [ "$(value 7)" = 1 ] && [ "$(value 0)" = 0 ] && pass "e-stop line: E01 latched, lamp-red line active, K1/K2 line inactive" \
            || failc "e-stop line: lamp-red=$(value 7) k1k2=$(value 0)"
    else failc "e-stop line: no E01 ($(tail -2 $OUT/chargerd.log))"; fi
    pull 15 pull-down
    stop
    fig=$(grep -o "e-stop edge (kernel timestamp) to the lines written safe: [0-9.]* ms ([0-9.]* periods)" "$OUT/chargerd.log")
    [ -n "$fig" ] && pass "figure: $fig (qemu TCG: not the board's timing)" || failc "figure: no e-stop edge-to-lines figure ($(grep gpio: $OUT/chargerd.log))"
else failc "start: $(cat $OUT/chargerd.err | head -3)"; fi

# 3. An RCD trip far shorter than a cycle (10 ms): the kernel's edge event catches it.
if start; then
    pull 12 pull-up; pull 12 pull-down
    if waitfor "FAULT E03-ground-fault" 600; then stop; pass "rcd trip shorter than a cycle: E03 latched from the edge event"
    else stop; failc "rcd trip shorter than a cycle: no E03 ($(grep -c FAULT $OUT/chargerd.log) faults; $(grep gpio: $OUT/chargerd.log | tail -1))"; fi
else failc "start (rcd): $(head -3 $OUT/chargerd.err)"; fi

# 4. A welded contactor: K1's aux contact closed while K1/K2 are commanded open.
if start; then
    pull 8 pull-up
    waitfor "FAULT E14-contactor-welded" 600 && pass "aux contact closed with K1/K2 open: E14 latched" \
        || failc "welded: no E14 ($(tail -2 $OUT/chargerd.log))"
    pull 8 pull-down
    stop
else failc "start (weld): $(head -3 $OUT/chargerd.err)"; fi

# 5. The watchdog: a healthy loop keeps it quiet, an orderly exit disarms it, a stopped loop lets it run out.
trig() { dmesg | grep -c "softdog: Triggered"; }
before=$(trig)
if start; then
    sleep 8
    h=$(trig)
    stop; rc=$?
    sleep 4
    after=$(trig)
    [ "$h" = "$before" ] && [ "$after" = "$before" ] && pass "watchdog: healthy 8 s and an orderly exit (rc $rc): never expired" \
        || failc "watchdog: expired while healthy or after the orderly exit ($before/$h/$after)"
else failc "start (watchdog): $(head -3 $OUT/chargerd.err)"; fi
# 5b. chargerd ended by SIGKILL, by SIGTRAP (as a Swift trap ends it) and by SIGSTOP (a hung loop; with the
#     watchdog case below): charger-plant coil-supply watches the coil pump's line and times the supply's
#     fall on the guest's clock. The bound (docs/standards.md "A controller that dies"): the supply falls
#     within the board's hold of the controller's last write, the pump's last edge (a charger's hold and
#     its contactors' opening time within 100 ms; this emulated board's 200 ms, four times the bound at
#     most, since the emulator stalls a healthy loop for ~100 ms); the signal's delivery before that edge
#     is the guest's scheduling (158 ms once in a starved guest; a trap's backtracer suspends the threads
#     first), reported and held to 1 s, which no pump kept toggling after chargerd's end would meet. A
#     run that fails while the guest was starved runs again once.
coil() {   # coil SIGNAL [AFTER]: the watcher's report in $OUT/coil-SIGNAL.log; returns its verdict
    "$BIN/charger-plant" coil-supply --board "$T/vm.toml" --sim "$SIM" --pid $CPID --signal $1 --after ${2:-1} > "$OUT/coil-$1.log" 2>&1
    fell=$(grep -o "^supply-fell-ms [0-9.]*" "$OUT/coil-$1.log" | grep -o "[0-9.]*$")
    edge=$(grep -o "^last-edge-after-signal-ms [0-9.]*" "$OUT/coil-$1.log" | grep -o "[0-9.]*$")
    [ -n "$fell" ] && [ -n "$edge" ] && awk -v f="$fell" -v e="$edge" -v h="$HOLD_MS" 'BEGIN { exit !(h > 0 && f - e <= h + 0.05 && e <= 1000) }'
}
#     A dead chargerd never disarmed softdog: it runs out after its timeout (the board's reset, the third
#     line of defence), awaited here so that the watchdog cases below start from a quiet softdog.
for sig in KILL TRAP; do
    for attempt in 1 2; do
        start || { failc "start (coil supply, $sig): $(head -3 $OUT/chargerd.err)"; break; }
        w0=${EPOCHREALTIME/./}
        armed=$(trig)
        coil $sig; ok=$?
        kill -KILL $CPID 2>/dev/null; wait $CPID 2>/dev/null
        k0=$(grep -o "^signalled-realtime-ns [0-9]*" "$OUT/coil-$sig.log" | grep -o "[0-9]*$"); k0=${k0:-$(date +%s%N)}
        while [ "$(trig)" = "$armed" ] && [ $(( ($(date +%s%N) - k0) / 1000000 )) -lt 10000 ]; do sleep 0.1; done
        wd="softdog ran out $(( ($(date +%s%N) - k0) / 1000000 )) ms after the signal"
        [ "$(trig)" = "$armed" ] && { wd="softdog did not run out within 10 s"; ok=1; }
        slip=$(slip_during $w0 ${EPOCHREALTIME/./}); smax=$(echo "$slip" | awk '{print int($2)}')
        what="coil supply, chargerd ended by SIG$sig: $(grep '^coil-supply' $OUT/coil-$sig.log); $wd (guest timer slip $slip ms)"
        if [ $ok = 0 ]; then pass "$what$( [ $attempt = 2 ] && echo " (run again: the first run was starved)")"; break; fi
        if [ $attempt = 1 ] && [ "${smax:-0}" -gt "$STARVED_MS" ]; then echo "NOTE first run $what: starved; run again" >> "$RES"
        else failc "$what $(tail -2 $OUT/coil-$sig.log | head -1)"; break; fi
    done
done

before=$(trig)
if start; then
    w0=${EPOCHREALTIME/./}
    sleep 3
    still=$(trig)
    # SIGSTOP through the supply's watcher (it stops chargerd after 1 s of watching and says when).
    coil STOP 1; coilok=$?
    s0=$(grep -o "^signalled-realtime-ns [0-9]*" "$OUT/coil-STOP.log" | grep -o "[0-9]*$")
    [ -n "$s0" ] || s0=$(date +%s%N)
    while [ "$(trig)" = "$before" ] && [ $(( ($(date +%s%N) - s0) / 1000000 )) -lt 15000 ]; do sleep 0.1; done
    ms=$(( ($(date +%s%N) - s0) / 1000000 ))
    kill -KILL $CPID; wait $CPID 2>/dev/null
    if [ "$still" != "$before" ]; then failc "watchdog: expired before chargerd was stopped (guest timer slip meanwhile: $(slip_during $w0 $(( w0 + 3000000 ))) ms)"
    elif [ "$(trig)" != "$before" ] && [ $ms -ge 1500 ]; then pass "watchdog: chargerd stopped (SIGSTOP), softdog ran out $ms ms later (timeout 2 s; seen through dmesg)"
    else failc "watchdog: chargerd stopped; softdog ran out after $ms ms (timeout 2 s)"; fi
    slip=$(slip_during $(( s0 / 1000 )) ${EPOCHREALTIME/./})
    if [ $coilok = 0 ]; then pass "coil supply, chargerd stopped by SIGSTOP (a hung loop): $(grep '^coil-supply' $OUT/coil-STOP.log) (guest timer slip $slip ms)"
    else failc "coil supply, chargerd stopped by SIGSTOP: $(grep '^coil-supply' $OUT/coil-STOP.log || tail -2 $OUT/coil-STOP.log) (guest timer slip $slip ms)"; fi
else failc "start (watchdog stop): $(head -3 $OUT/chargerd.err)"; fi

# 6. The GPIO front end's cost per cycle, as the loop uses it (chargerd gpio-cost; outputs held safe).
#    A figure, not a judgement: under qemu's software emulation a system call costs many times a board's,
#    so it is also given in null system calls (getppid) measured beside it.
if "$BIN/chargerd" gpio-cost --board "$T/vm.toml" --cycles 5000 > "$OUT/gpio-cost.log" 2>&1 \
   && grep -q "per cycle" "$OUT/gpio-cost.log" && grep -q "I/O errors 0" "$OUT/gpio-cost.log"; then
    pass "gpio cost (qemu TCG): $(grep -o 'median [0-9]* ns, p99 [0-9]* ns' $OUT/gpio-cost.log | head -1); $(grep -o 'getppid: median [0-9]* ns' $OUT/gpio-cost.log); $(grep -o 'a cycle is [0-9.]* null system calls' $OUT/gpio-cost.log)"
else failc "gpio cost: $(tail -2 $OUT/gpio-cost.log)"; fi

# 13. The CAN link's own Swift tests (Tests/CANLinkTests) on a vcan of their own: the charger's side and
#     the car's side on one wire (BHM, the multi-packet BRM, CHM, CRM). The host has no vcan; this is
#     where they run, and the case fails if the wire suite was skipped.
ip link add dev vcan9 type vcan 2>/dev/null; ip link set vcan9 up
CANLINK_TEST_INTERFACE=vcan9 timeout 300 "$XCTEST" --testing-library swift-testing --filter CANLink \
    > "$OUT/canlink-tests.log" 2>&1
rc=$?
if [ $rc -eq 0 ] && grep -q "theCarAndTheChargerHearEachOther() passed" "$OUT/canlink-tests.log"; then
    pass "CAN link tests on vcan9: $(grep -o 'Test run with [0-9]* tests in [0-9]* suites passed' "$OUT/canlink-tests.log")"
else failc "CAN link tests on vcan9 (rc $rc): $(grep -E 'recorded an issue|skipped|failed' "$OUT/canlink-tests.log" | head -3 | tr '\n' ' ')"; fi

# 8-10b and 14. The car link on the CAN wire (vcan0-3: Tests/kernel/can.sh, its BMSes started above),
#     then the bench's whole session, the real-board build charging a car on the chip's lines with its
#     car on vcan5 (Tests/kernel/bench.sh), judged together. One after the other: beside the three
#     misbehaving sessions (each a chargerd at the same real-time priority) the bench's loop once went
#     more than its 200 ms coil hold without a cycle, and its K1/K2 dropped under load (E15). The plant
#     the cases above ran beside gives the chip's lines and the board's ports to the bench's.
can_sessions
kill $PLANT 2>/dev/null; wait $PLANT 2>/dev/null
bench_whole
can_judge "${SESSIONS[@]}" "$BENCH_SPEC"

# 11. The CAN link on the real board's loop (Tests/kernel/can.sh), beside a plant serving its devices.
bench_plant "$OUT/plant-realloop.log" && PLANT=$BPLANT || failc "the plant for the CAN link on the real loop did not start: $(tail -2 "$OUT/plant-realloop.log")"
can_realloop

# 15-24. The virtual bench's mid-charge cases (Tests/kernel/bench.sh).
bench_midcases

# 7. The chip taken away under a running loop (gpio-sim's live = 0: the lines chargerd holds are gone,
#    every ioctl on them fails): E32 latched, and the report names the operation, the chip and errno.
#    Last, since the chip does not come back for the cases above.
if start; then
    sleep 2
    echo 0 > $C/live
    if waitfor "FAULT E32-board-io" 600; then
        stop
        err=$(grep -o "I/O errors (last: .*)" "$OUT/chargerd.log" | tail -1)
        echo "$err" | grep -Eq "on charger-io: .*\(E[A-Z]+" && pass "chip removed under the loop: E32 latched, $err" \
            || failc "chip removed: E32 latched but the report does not name it ($(grep gpio: $OUT/chargerd.log | tail -1))"
    else stop; failc "chip removed: no E32 ($(tail -2 $OUT/chargerd.log))"; fi
else failc "start (chip removed): $(head -3 $OUT/chargerd.err)"; fi

kill $PLANT 2>/dev/null
echo "NOTE guest timer slip over all the cases: $(slip_during $GUEST_T0 ${EPOCHREALTIME/./}) ms ($(wc -l < $SLIP) wake-ups of 100 ms; starved above $STARVED_MS ms)" >> "$RES"
kill $SLIPPID 2>/dev/null
dmesg > "$OUT/dmesg.txt"
echo DONE >> "$RES"
