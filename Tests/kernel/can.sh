# The car link on the CAN wire (sourced by guest.sh, inside the qemu guest): the bench board
# bench-60kw-can at a 10 ms loop (qemu's software emulation), charger-plant running the plant and the
# battery, and on the wire the independent BMS (HIL/peers/gbt_bms.py: python-can, cantools, the shipped
# DBC). candump (can-utils) records every frame; Tests/kernel/can_check.py judges the records, and the
# bench's whole session on vcan5 (Tests/kernel/bench.sh, charger-plant's own car on the wire) with them.
# The four sessions run one, then three at once, each on its own vcanN, bench channel and Modbus port
# (their wall time is the charge's: a 5 kWh battery, the plant's smallest, from 68 to 80 % takes ~70 s of
# charging, the car asking 57 A at most; from 74 % it asked 48 A, under the 50 A the check wants to see).
# A session that fails while the guest was starved (its timer slip, guest.sh's slip monitor and its
# starved, during the session) is run again alone, once: a verdict the host's load decided is no
# verdict. Starved again, it is judged on what no load changes (starved_verdict). The slip is printed
# with every case either way.
# Sourced early (after guest.sh's setup): the links and board files are made, and every Python BMS is
# started at once (can_prestart), since python and cantools take seconds to load under emulation and
# that load overlaps the GPIO cases instead of each session's start; guest.sh calls can_cases later.
# Needs from guest.sh: BIN BOARDS OUT T SRC PY, pass/failc, slip_during.

N_CAN=4
modprobe vcan 2>/dev/null
for n in $(seq 0 $((N_CAN - 1))); do
    ip link add dev vcan$n type vcan 2>/dev/null; ip link set vcan$n up
    sed -e 's|^channel = .*|channel = "'"$T"'/can-channel-'$n'"|' -e 's|^period = "1 ms"|period = "10 ms"|' \
        -e 's|^port = 15021|port = 1503'$n'|' -e 's|^interface = "vcan0"|interface = "vcan'$n'"|' \
        "$BOARDS/bench-60kw-can.toml" > "$T/can-$n.toml"
done
check() { $PY "$SRC/Tests/kernel/can_check.py" --dbc "$SRC/HIL/can/gbt27930-2015.dbc" "$@"; }

# The independent BMS on vcan$1 for session $2: $3 kWh from $4 %, then its own arguments. Its pid in
# $T/bms-TAG.pid; its report (stdout) and log in $OUT/can-TAG.bms and .bms.err.
start_bms() {
    local n=$1 tag=$2 cap=$3 soc=$4; shift 4
    $PY "$SRC/HIL/peers/gbt_bms.py" --interface vcan$n --dbc "$SRC/HIL/can/gbt27930-2015.dbc" --max-voltage 750 --max-current 250 \
        --capacity-kwh "$cap" --soc "$soc" "$@" > "$OUT/can-$tag.bms" 2> "$OUT/can-$tag.bms.err" &
    echo $! > "$T/bms-$tag.pid"
}

# One session on vcan$1 (tag $2): the plant with a 750 V battery (169 cells, charged at constant current)
# of $3 kWh from $4 %; then the Python BMS's arguments. (The plant's own car on the wire is the bench's
# whole session, Tests/kernel/bench.sh.) chargerd runs --sessions 1. Leaves
# $OUT/can-TAG.{plant,bms,bms.err,chargerd,candump,log,rc,window}.
can_session() {
    local n=$1 tag=$2 cap=$3 soc=$4; shift 4
    local board="$T/can-$n.toml" o="$OUT/can-$tag"
    local pre=""; [ -f "$T/bms-$tag.pid" ] && pre=$(cat "$T/bms-$tag.pid"); rm -f "$T/bms-$tag.pid"
    if [ -n "$pre" ]; then rm -f "$o".{plant,chargerd,candump,log,rc,window,check}; else rm -f "$o".*; fi
    echo "${EPOCHREALTIME/./}" > "$o.window"
    "$BIN/charger-plant" --board "$board" --speed 1 --car "capacity=${cap}kWh,soc=$soc,target=100,max-voltage=750V,max-current=250A" \
        --once > "$o.plant" 2>&1 &
    local plant=$!
    for i in $(seq 1 1200); do grep -q ready "$o.plant" && break; kill -0 $plant 2>/dev/null || break; sleep 0.1; done
    candump -L vcan$n > "$o.candump" 2>/dev/null &
    local dump=$!
    local bms=""
    # The BMS can_prestart started for this session, when it still runs; otherwise (a run again, or
    # one that died) a fresh one, with why the first is gone.
    if [ -n "$pre" ] && kill -0 "$pre" 2>/dev/null; then bms=$pre
    else
        local gone=""; [ -n "$pre" ] && gone="can.sh: the BMS started early had exited: $(tail -2 "$o.bms.err" 2>/dev/null | tr '\n' ' ')"
        start_bms $n $tag $cap $soc "$@"; bms=$(cat "$T/bms-$tag.pid"); rm -f "$T/bms-$tag.pid"
        [ -n "$gone" ] && echo "$gone" >> "$o.bms.err"
    fi
    # The BMS is up (python and cantools take tens of seconds to load under emulation, more with the
    # other sessions' starting beside it) before the charger starts.
    for i in $(seq 1 3000); do grep -q listening "$o.bms.err" && break; kill -0 $bms 2>/dev/null || break; sleep 0.1; done
    if ! grep -q listening "$o.bms.err"; then
        if kill -0 $bms 2>/dev/null; then echo "can.sh: gbt_bms not listening after 300 s" >> "$o.bms.err"
        else wait $bms; echo "can.sh: gbt_bms exited with status $? before listening ($(free -m | awk '/Mem:/ {print $7}') MB available)" >> "$o.bms.err"; bms=""; fi
    fi
    # The whole session with the Python BMS is authorized by the car's VIN (plug and charge, issue 37):
    # the local authorization list in the OCPP state holds its idTag, and no central system is reachable
    # (LocalAuthorizeOffline).
    local site=()
    if [ "$tag" = session ]; then
        mkdir -p "$T/vin-state"
        printf '{"listVersion":1,"list":{"vinlpybms00000000001":{"idTag":"VINLPYBMS00000000001","idTagInfo":{"status":"Accepted"}}},"cache":{}}' \
            > "$T/vin-state/authorization.json"
        printf '[site]\nname = "can-vin"\n[ocpp]\nurl = "ws://127.0.0.1:9/CP001"\nstate_dir = "%s"\nauthorize = ["vin"]\n' "$T/vin-state" > "$T/can-vin-site.toml"
        site=(--site "$T/can-vin-site.toml")
    fi
    timeout 420 "$BIN/chargerd" --board "$board" "${site[@]}" --sessions 1 --max-time 400 --status-interval 5 \
        --can-log "$o.log" > "$o.chargerd" 2>&1
    echo $? > "$o.rc"
    sleep 1
    # Stopped, and waited for (its report is written on SIGTERM): a BMS started early is not this
    # subshell's child, so `wait` cannot; the guest's shell reaps it, which ends kill -0.
    if [ -n "$bms" ]; then
        kill $bms 2>/dev/null
        for i in $(seq 1 300); do kill -0 $bms 2>/dev/null || break; sleep 0.1; done
    fi
    kill $dump 2>/dev/null; wait $dump 2>/dev/null
    kill $plant 2>/dev/null; wait $plant 2>/dev/null
    echo "${EPOCHREALTIME/./}" >> "$o.window"
}
# A session's files: $OUT/can-TAG.*, or $OUT/TAG.* for the bench's (bench-charge: Tests/kernel/bench.sh).
file_of() { case $1 in bench-*) echo "$OUT/$1";; *) echo "$OUT/can-$1";; esac; }
rc_of() { cat "$(file_of $1).rc" 2>/dev/null || echo none; }
why() { local f; f=$(file_of $1); echo "chargerd exit $(rc_of $1) ($(tail -3 $f.chargerd | tr '\n' ' '))$( [ -s $f.bms.err ] && echo " bms: $(tail -2 $f.bms.err | tr '\n' ' ')")"; }
# The guest's timer slip during session TAG: "max M p99 P" in ms (guest.sh's slip_during).
slip_of() { local f; f=$(file_of $1); slip_during $(head -1 "$f.window") $(tail -1 "$f.window"); }
# The verdicts on a set of sessions (SESSIONS entries), judged in one can_check.py process: for each,
# chargerd's exit status must be the expected one, then can_check.py's MODE over its records (the BMS's
# report too when the Python BMS ran). Leaves $OUT/can-TAG.check: "STATUS<tab>TEXT".
judge_all() {
    : > "$T/can-batch"
    local spec
    for spec in "$@"; do
        local tag n label rc mode args
        IFS='|' read -r tag n label rc mode args <<< "$spec"
        rm -f "$OUT/can-$tag.check"
        if [ "$(rc_of $tag)" != "$rc" ]; then
            printf '1\texpected exit %s: %s\n' "$rc" "$(why $tag)" > "$OUT/can-$tag.check"; continue
        fi
        local f; f=$(file_of $tag)
        local bms=""; [ -s "$f.bms" ] && bms="--bms $f.bms"
        echo "$tag $mode --candump $f.candump $bms --chargerd $f.chargerd" >> "$T/can-batch"
    done
    [ -s "$T/can-batch" ] || return 0
    # The checker can_prestart started, waiting on its FIFO, when it still runs (the first judging);
    # otherwise one started now.
    local pre=""; [ -f "$T/check.pid" ] && pre=$(cat "$T/check.pid"); rm -f "$T/check.pid"
    if [ -n "$pre" ] && kill -0 "$pre" 2>/dev/null && timeout 60 sh -c 'cat "$1" > "$2"' sh "$T/can-batch" "$T/check.fifo"; then
        for i in $(seq 1 1200); do kill -0 "$pre" 2>/dev/null || return 0; sleep 0.1; done
        kill "$pre" 2>/dev/null
    fi
    check --batch "$T/can-batch" --out-dir "$OUT"
}
# The verdict on one judged session: "pass TEXT", "fail TEXT" or "starved TEXT" (failed while the
# guest was starved: the caller runs it again alone, then starved_verdict).
verdict_of() {
    local tag n label rc mode args
    IFS='|' read -r tag n label rc mode args <<< "$1"
    local slip status text own
    slip=$(slip_of $tag)
    if [ -s "$OUT/can-$tag.check" ]; then IFS=$'\t' read -r status text < "$OUT/can-$tag.check"
    else status=1; text="the checker wrote no verdict"; fi
    # The bench's whole session is judged on the plant's truth too, and its PASS line gives its figures
    # (Tests/kernel/bench.sh).
    case $tag in bench-*)
        if ! own=$(bench_judge_session ${tag#bench-}); then status=1; text="$own; the wire: $text"
        elif [ "$status" = 0 ]; then text="$(bench_figures ${tag#bench-}); the wire: $text"; fi;;
    esac
    if [ "$status" = 0 ]; then echo "pass $label: $text (guest timer slip $slip ms)"
    # A session that failed while the guest's wake-ups were late past STARVED_MS, or past 50 ms at p99
    # (guest.sh's starved: the periods' tolerance, five of the loop's 10 ms periods), measured the host as
    # much as chargerd (E23 after 1.01 s of module silence, slip max 194 p99 76 ms, under stress-ng).
    elif starved "$slip"; then echo "starved $label: $text (guest timer slip $slip ms: starved)"
    else echo "fail $label: $text (guest timer slip $slip ms)"; fi
}
# The faults a starved guest explains: the communication timeouts (the car's, the modules', the meter's,
# the IMD's, the analog module's), a contactor whose coil supply's hold lapsed between two late cycles
# (E15), the loop asleep past its board's miss_limit (E29: 100 periods of 10 ms on the VM board; under
# stress-ng --cpu 4 the guest's wake-ups were 208 ms late at p99), an RCD self-test answered late
# (E30), and the escalation of a stop the late loop could not ramp down in time (E28). Any other fault
# is judged as a fault.
STARVED_FAULTS="E15-contactor-not-closed E17-vehicle-comm-timeout E23-module-comm-lost E25-meter-comm-lost E26-imd-comm-lost E28-shutdown-escalated E29-loop-overrun E30-rcd-selftest E36-analog-stale"
# starved_faults FILE: true when every fault chargerd's report names is one of STARVED_FAULTS; prints
# the ones named.
starved_faults() {
    local named f ok=0
    named=$(grep -oE "^fault +E[0-9]+-[a-z0-9-]+" "$1" | awk '{ print $2 }' | sort -u | paste -sd' ')
    for f in $named; do case " $STARVED_FAULTS " in *" $f "*) ;; *) ok=1;; esac; done
    echo "${named:-none}"; return $ok
}
# A session that failed on both runs while the guest was starved both times: its periods, timeouts and
# end were the host's load (docs/testing.md "A starved guest says so": never a failed protocol check
# for it), so it is not judged on them and its PASS line says so, with the slip. Judged still, as in
# any run: every fault it latched is one a starved guest explains (STARVED_FAULTS), the plant's truth at
# the end is K1 and K2 open with no current, and the charger's messages on the wire kept the standard's
# order up to its first stop (can_check.py starved). run.sh counts these lines apart.
starved_verdict() {
    local tag n label rc mode args
    IFS='|' read -r tag n label rc mode args <<< "$1"
    local why=${2#"$label: "} f faults order
    f=$(file_of $tag)
    if ! faults=$(starved_faults "$f.chargerd"); then failc "$label: $why; a fault no starvation explains: $faults"; return; fi
    if ! grep -q "gun 0: K1 open, K2 open, 0.0 A" "$f.plant"; then
        failc "$label: $why; plant truth at the end: $(grep -m1 'gun 0: K1' "$f.plant" || echo none)"; return
    fi
    if ! order=$(check starved --candump "$f.candump" --chargerd "$f.chargerd" 2>&1); then failc "$label: $why; $order"; return; fi
    pass "$label: NOT JUDGED ON TIME, starved on both runs: $why; judged: faults $faults, the plant's K1 and K2 open with no current at the end, $order"
}
# Each session: tag, vcan, label, expected exit, check mode, check args | session args.
SESSIONS=(
    "session|0|can session 68 -> 80 % with the python BMS, authorized by its VIN|0|session --soc-from 68 --vin LPYBMS00000000001|5 68 --vin LPYBMS00000000001"
    "misbehave|1|can misbehaving BMS|0|misbehave --soc-from 70|5 70 --misbehave wrong-dlc@2 --misbehave unknown-pgn@4 --misbehave tp-gap@6 --misbehave abort@8 --misbehave garbage@10 --misbehave flood@12"
    "silent|2|can silent BMS|1|timeout|5 70 --misbehave silent@3 --timeout 120"
    "late|3|can late BMS|1|timeout|5 70 --misbehave late@3 --timeout 120"
)
# (Fields split with `IFS='|' read`, which leaves IFS alone: a spec split by setting IFS itself left
# can_session's `for i in $(seq ...)` waits running once, and chargerd started before the BMS listened.)
# (A bench-* spec is the bench's whole session: bench.sh's bench_whole.)
run_spec() {
    local tag n label rc mode args; IFS='|' read -r tag n label rc mode args <<< "$1"
    case $tag in bench-*) bench_whole;; *) can_session $n $tag $args;; esac
}

# Every Python BMS at once, each on its session's link (guest.sh, right after its setup). Kept alive
# past any wait in the guest (--timeout: seconds from listening; the sessions end them).
can_prestart() {
    local spec tag n label rc mode args
    for spec in "${SESSIONS[@]}"; do
        IFS='|' read -r tag n label rc mode args <<< "$spec"
        set -- $args
        [ "${3:-}" = plant ] && continue
        start_bms $n $tag "$@" --timeout 1800
    done
    # And the checker, which reads its batch from a FIFO once the sessions have ended (judge_all).
    mkfifo "$T/check.fifo"
    check --batch "$T/check.fifo" --out-dir "$OUT" > "$OUT/can-check.log" 2>&1 &
    echo $! > "$T/check.pid"
}

# The sessions (guest.sh, before the bench's whole session): 8 alone, then 9, 10 and 10b together.
#  8: a whole 68 -> 80 % session with the independent BMS, authorized by the VIN it sends in BRM (the
#     local list, offline). chargerd ends it without a fault; every message the charger sends keeps its
#     period (from candump's kernel timestamps) and its stage (can_check.py's judge_order: no message
#     past its stage, none before the car's message it answers, CSD ended on BSD); CML, CCS, CST and CSD
#     decoded by cantools agree with what the loop commanded and the meter counted. (From BHM to BSD;
#     the span of SOC only sets how long the charge is.) The same checks judge the bench's whole session,
#     whose car is charger-plant's own on the wire (the Swift codec's car side and its J1939-21 sender;
#     until 2026-12-07 a session of its own here, case 12, on the bench board).
#  9: the BMS misbehaves during one session (70 -> 80 %): a BCL of the wrong length, frames of an unknown
#     PGN, a BCS transfer with a packet left out, a transfer it aborts, random frames, and a 2 s flood of
#     back-to-back frames; each is counted and dropped (or asked again), and the session still ends
#     normally.
# 10: the BMS falls silent while charging: BCL times out (1 s), the charger sends CEM naming BCL and CST
#     for a fault, the current stops, and the session ends with E17 (the handshake retries find no BMS;
#     from the handshake's restart on, no CEM names BCL).
# 10b: one that sends BCL late (every 1.2 s; the charger allows 1 s): the same reaction.
# (Five sessions at once overloaded the guest's two emulated CPUs: the plants' Modbus answers came late
# and the IMD's link was lost; a Python BMS beside charger-plant's car and another Python BMS never
# answered CHM.)
can_sessions() {
    run_spec "${SESSIONS[0]}"
    local pids=() i
    for i in 1 2 3; do run_spec "${SESSIONS[$i]}" & pids+=($!); done
    wait "${pids[@]}"
}

# The verdicts on the specs given (SESSIONS entries, and the bench's), judged in one checker; a session
# that failed while the guest was starved runs again alone, once.
can_judge() {
    judge_all "$@"
    local again=() spec v
    for spec in "$@"; do
        v=$(verdict_of "$spec")
        case "$v" in
            pass*) pass "${v#pass }";;
            starved*) echo "NOTE first run ${v#starved }; run again alone" >> "$RES"; again+=("$spec");;
            *) failc "${v#fail }";;
        esac
    done
    for spec in "${again[@]}"; do
        run_spec "$spec"
        judge_all "$spec"
        v=$(verdict_of "$spec")
        case "$v" in
            pass*) pass "${v#pass } (run again alone: the first run was starved)";;
            starved*) starved_verdict "$spec" "${v#starved }";;
            *) failc "${v#* } (run again alone after a starved first run)";;
        esac
    done
    # A checker started early that no judging used (every session failed its exit status) is ended.
    [ -f "$T/check.pid" ] && { kill "$(cat "$T/check.pid")" 2>/dev/null; rm -f "$T/check.pid"; }
}

can_realloop() {
    # 11. The CAN link on the real board's loop (vm-gpio-sim-60kw + [[can]] on vcan0, SCHED_FIFO where the
    #     guest allows it): 10 s attached and idle, then 10 s under cangen's flood of frames through the
    #     link's filter. The loop keeps its period (every cycle run, its compute figures beside the idle ones);
    #     the flood is counted by the link, off the loop; bus-off and restart error frames before it.
    if [ -f "$T/vm.toml" ]; then
        # The VM board's car link moved from its vcan5 to this case's vcan0.
        sed 's/^interface = "vcan5"$/interface = "vcan0"/' "$T/vm.toml" > "$T/vm-can.toml"
        loopline() { grep "^loop:" "$1" | tail -1 | sed 's/^loop: //'; }
        "$BIN/chargerd" --board "$T/vm-can.toml" --max-time 10 > "$OUT/can-rt-idle.log" 2>&1
        idle=$(loopline "$OUT/can-rt-idle.log")
        idle_cycles=$(echo "$idle" | grep -o "^[0-9]*")
        # Run again once, alone, when it failed while the guest was starved (as the sessions above): the
        # loop's cycle count in 10 s is the guest's timers' as much as chargerd's (896 of 1000 beside a
        # second make test, with the guest's wake-ups late by hundreds of ms).
        for attempt in 1 2; do
        w0=${EPOCHREALTIME/./}
        "$BIN/chargerd" --board "$T/vm-can.toml" --max-time 10 > "$OUT/can-rt-flood.log" 2>&1 &
        rp=$!
        for i in $(seq 1 100); do grep -q "car link on vcan0" "$OUT/can-rt-flood.log" && break; sleep 0.1; done
        # The controller's error frames as a CAN driver reports them (CAN_ERR_BUSOFF, then
        # CAN_ERR_RESTARTED): counted, the state changes printed and journalled (first: on a loaded host the
        # run's 10 s may end before the flood does).
        # The flood from then until chargerd's run ends (s44: with a fixed 6 s flood after a second's
        # pause, a starved guest's run of 10 s ended before any flood frame came, "unknown 0").
        cansend vcan0 20000040#0000000000000000; sleep 0.3; cansend vcan0 20000100#0000000000000000
        cangen vcan0 -g 0 -e -I 183456F4 -L 8 -D i -p 1 > /dev/null 2>&1 &
        gp=$!
        wait $rp; rc=$?
        kill $gp 2>/dev/null; wait $gp 2>/dev/null
        slip=$(slip_during $w0 ${EPOCHREALTIME/./})
        flood=$(loopline "$OUT/can-rt-flood.log")
        unknown=$(grep -o "unknown PGN [0-9]*" "$OUT/can-rt-flood.log" | grep -o "[0-9]*$")
        overflow=$(grep -o "rx overflow [0-9]*" "$OUT/can-rt-flood.log" | grep -o "[0-9]*$")
        cycles=$(echo "$flood" | grep -o "^[0-9]*")
        busoff=$(grep -c "can: gun 0 vcan0: controller bus-off" "$OUT/can-rt-flood.log")
        # The flood must not take the loop's cycles: at least three quarters of the idle run's count and 500
        # of 1000. A cycle count in 10 s is the guest's timers' as much as chargerd's, so it is judged against
        # the idle run's with a wide margin, not against 900 (857 flooded beside 928 idle under stress-ng
        # --cpu 2, the guest's wake-ups up to 235 ms late; a loop that read the flood itself would lose most).
        if [ $rc -eq 0 ] && [ "${unknown:-0}" -gt 1000 ] && [ "${cycles:-0}" -ge 500 ] \
           && [ $(( ${cycles:-0} * 4 )) -ge $(( ${idle_cycles:-1000} * 3 )) ] && [ "$busoff" = 1 ] \
           && grep -q "bus-off 1  restarts 1" "$OUT/can-rt-flood.log"; then
            pass "can link on the real loop: idle: $idle | flooded ($unknown frames counted, $overflow dropped by the kernel): $flood; bus-off and restart error frames counted and reported (guest timer slip $slip ms)$( [ $attempt = 2 ] && echo " (run again: the first run was starved)")"
            break
        fi
        why="can link on the real loop: rc $rc, unknown ${unknown:-none}, cycles ${cycles:-none} ($(tail -3 $OUT/can-rt-flood.log | tr '\n' ' ')) (guest timer slip $slip ms)"
        if ! starved "$slip"; then failc "$why"; break
        elif [ $attempt = 1 ]; then echo "NOTE first run $why: starved; run again" >> "$RES"
        # Starved on both runs: the cycle count is the host's, and so is the flood's size (cangen starved
        # too: 922 frames in a run under stress-ng --cpu 4); neither is judged, and the line says so. The
        # run without a fault, the flood counted off the loop and the error frames still are.
        elif [ $rc -eq 0 ] && [ "${unknown:-0}" -gt 0 ] && [ "$busoff" = 1 ] && grep -q "bus-off 1  restarts 1" "$OUT/can-rt-flood.log"; then
            pass "can link on the real loop: NOT JUDGED ON TIME, starved on both runs: cycles ${cycles:-none} beside the idle run's ${idle_cycles:-none}; judged: no fault, $unknown flood frames counted off the loop ($overflow dropped by the kernel), bus-off and restart counted (guest timer slip $slip ms)"
        else failc "$why (starved on both runs)"; fi
        done
    fi
}
