# The car link on the CAN wire (sourced by guest.sh, inside the qemu guest): the bench board
# bench-60kw-can at a 10 ms loop (qemu's software emulation), charger-plant running the plant and the
# battery, and on the wire either the independent BMS (HIL/peers/gbt_bms.py: python-can, cantools, the
# shipped DBC) or charger-plant's own car. candump (can-utils) records every frame; Tests/kernel/can_check.py
# judges the records. Sessions run two or three at a time, each on its own vcanN, bench channel and Modbus port
# (their wall time is the charge's: a 5 kWh battery from 50 to 80 % at 60 kW takes ~2 min).
# Needs from guest.sh: BIN BOARDS OUT T SRC PY, pass/failc.

modprobe vcan 2>/dev/null
for n in 0 1 2; do ip link add dev vcan$n type vcan 2>/dev/null; ip link set vcan$n up; done
for n in 0 1 2; do
    sed -e 's|^channel = .*|channel = "'"$T"'/can-channel-'$n'"|' -e 's|^period = "1 ms"|period = "10 ms"|' \
        -e 's|^port = 15021|port = 1503'$n'|' -e 's|^interface = "vcan0"|interface = "vcan'$n'"|' \
        "$BOARDS/bench-60kw-can.toml" > "$T/can-$n.toml"
done
check() { $PY "$SRC/Tests/kernel/can_check.py" --dbc "$SRC/HIL/can/gbt27930-2015.dbc" "$@"; }

# One session on vcan$1 (tag $2): the plant with a 750 V battery (169 cells, charged at constant current)
# of $3 kWh from $4 %; then 'plant' (the plant's car on the wire, to 80 %) or the Python BMS's arguments.
# chargerd runs --sessions 1. Leaves $OUT/can-TAG.{plant,bms,bms.err,chargerd,candump,log,rc}.
can_session() {
    local n=$1 tag=$2 cap=$3 soc=$4; shift 4
    local board="$T/can-$n.toml" o="$OUT/can-$tag"
    if [ "${1:-}" = plant ]; then
        shift
        "$BIN/charger-plant" --board "$board" --speed 1 --car "capacity=${cap}kWh,soc=$soc,target=80,max-voltage=750V,max-current=250A" \
            --bms-on-can --once > "$o.plant" 2>&1 &
    else
        "$BIN/charger-plant" --board "$board" --speed 1 --car "capacity=${cap}kWh,soc=$soc,target=100,max-voltage=750V,max-current=250A" \
            --once > "$o.plant" 2>&1 &
    fi
    local plant=$!
    for i in $(seq 1 300); do grep -q ready "$o.plant" && break; sleep 0.1; done
    candump -L vcan$n > "$o.candump" 2>/dev/null &
    local dump=$!
    local bms=""
    if ! grep -q "talks GB/T 27930" "$o.plant"; then
        $PY "$SRC/HIL/peers/gbt_bms.py" --interface vcan$n --dbc "$SRC/HIL/can/gbt27930-2015.dbc" --max-voltage 750 --max-current 250 \
            --capacity-kwh "$cap" --soc "$soc" "$@" > "$o.bms" 2> "$o.bms.err" &
        bms=$!
        # The BMS is up (python and cantools take seconds to load under emulation) before the charger starts.
        for i in $(seq 1 600); do grep -q listening "$o.bms.err" && break; sleep 0.1; done
    fi
    timeout 420 "$BIN/chargerd" --board "$board" --sessions 1 --max-time 400 --status-interval 5 \
        --can-log "$o.log" > "$o.chargerd" 2>&1
    echo $? > "$o.rc"
    sleep 1
    [ -n "$bms" ] && { kill $bms 2>/dev/null; wait $bms 2>/dev/null; }
    kill $dump 2>/dev/null; wait $dump 2>/dev/null
    kill $plant 2>/dev/null; wait $plant 2>/dev/null
}
rc_of() { cat "$OUT/can-$1.rc" 2>/dev/null || echo none; }
why() { echo "chargerd exit $(rc_of $1) ($(tail -3 $OUT/can-$1.chargerd | tr '\n' ' '))$( [ -s $OUT/can-$1.bms.err ] && echo " bms: $(tail -2 $OUT/can-$1.bms.err | tr '\n' ' ')")"; }
# The verdict on session TAG: chargerd's exit status must be RC, then can_check.py's MODE over its records
# (the BMS's report too when the Python BMS ran); LABEL names the case; ARGS go to can_check.py.
judge() {
    local tag=$1 rc=$2 label=$3 mode=$4; shift 4
    local bms=() out
    [ -s "$OUT/can-$tag.bms" ] && bms=(--bms "$OUT/can-$tag.bms")
    if [ "$(rc_of $tag)" != "$rc" ]; then failc "$label: expected exit $rc: $(why $tag)"; return; fi
    if out=$(check "$mode" --candump "$OUT/can-$tag.candump" "${bms[@]}" --chargerd "$OUT/can-$tag.chargerd" "$@" 2>&1); then
        pass "$label: $out"
    else failc "$label: $out"; fi
}

# 8 and 12, side by side: a whole 50 -> 80 % session with the independent BMS (vcan0), and the same with
# charger-plant's own car on the wire (--bms-on-can: the Swift codec's car side and its J1939-21 sender;
# vcan1). chargerd ends each without a fault; every message the charger sends keeps its period (from
# candump's kernel timestamps); CML, CCS, CST and CSD decoded by cantools agree with what the loop
# commanded and the meter counted. (From BHM to BSD; the span of SOC only sets how long the charge is.)
can_session 0 session 5 50 &
s1=$!
can_session 1 plantcar 5 50 plant &
s2=$!
wait $s1 $s2
judge session 0 "can session 50 -> 80 % with the python BMS" session --soc-from 50
judge plantcar 0 "can session 50 -> 80 % with charger-plant's car (plant: $(grep -o 'car on CAN: .*' $OUT/can-plantcar.plant))" session --soc-from 50

# 9, 10 and 10b, side by side. 9: the BMS misbehaves during one session (70 -> 80 %): a BCL of the wrong
# length, frames of an unknown PGN, a BCS transfer with a packet left out, a transfer it aborts, random
# frames, and a 2 s flood of back-to-back frames; each is counted and dropped (or asked again), and the
# session still ends normally. 10: the BMS falls silent while charging: BCL times out (1 s), the charger
# sends CEM naming BCL and CST for a fault, the current stops, and the session ends with E17 (the
# handshake retries find no BMS). 10b: one that sends BCL late (every 1.2 s; the charger allows 1 s): the
# same reaction.
can_session 0 misbehave 5 70 --misbehave wrong-dlc@2 --misbehave unknown-pgn@4 --misbehave tp-gap@6 --misbehave abort@8 \
    --misbehave garbage@10 --misbehave flood@12 &
s1=$!
can_session 1 silent 5 70 --misbehave silent@3 --timeout 120 &
s2=$!
can_session 2 late 5 70 --misbehave late@3 --timeout 120 &
s3=$!
wait $s1 $s2 $s3
judge misbehave 0 "can misbehaving BMS" misbehave --soc-from 70
judge silent 1 "can silent BMS" timeout
judge late 1 "can late BMS" timeout

# 11. The CAN link on the real board's loop (vm-gpio-sim-60kw + [[can]] on vcan0, SCHED_FIFO where the
#     guest allows it): 10 s attached and idle, then 10 s under cangen's flood of frames through the
#     link's filter. The loop keeps its period (every cycle run, its compute figures beside the idle ones);
#     the flood is counted by the link, off the loop; bus-off and restart error frames before it.
if [ -f "$T/vm.toml" ]; then
    { cat "$T/vm.toml"; printf '\n[[can]]\ngun = 0\ninterface = "vcan0"\n'; } > "$T/vm-can.toml"
    loopline() { grep "^loop:" "$1" | tail -1 | sed 's/^loop: //'; }
    "$BIN/chargerd" --board "$T/vm-can.toml" --max-time 10 > "$OUT/can-rt-idle.log" 2>&1
    idle=$(loopline "$OUT/can-rt-idle.log")
    "$BIN/chargerd" --board "$T/vm-can.toml" --max-time 10 > "$OUT/can-rt-flood.log" 2>&1 &
    rp=$!
    for i in $(seq 1 100); do grep -q "car link on vcan0" "$OUT/can-rt-flood.log" && break; sleep 0.1; done
    # The controller's error frames as a CAN driver reports them (CAN_ERR_BUSOFF, then
    # CAN_ERR_RESTARTED): counted, the state changes printed and journalled (first: on a loaded host the
    # run's 10 s may end before the flood does).
    cansend vcan0 20000040#0000000000000000; sleep 0.3; cansend vcan0 20000100#0000000000000000
    sleep 1
    timeout 6 cangen vcan0 -g 0 -e -I 183456F4 -L 8 -D i -p 1 > /dev/null 2>&1
    wait $rp; rc=$?
    flood=$(loopline "$OUT/can-rt-flood.log")
    unknown=$(grep -o "unknown PGN [0-9]*" "$OUT/can-rt-flood.log" | grep -o "[0-9]*$")
    overflow=$(grep -o "rx overflow [0-9]*" "$OUT/can-rt-flood.log" | grep -o "[0-9]*$")
    cycles=$(echo "$flood" | grep -o "^[0-9]*")
    busoff=$(grep -c "can: gun 0 vcan0: controller bus-off" "$OUT/can-rt-flood.log")
    if [ $rc -eq 0 ] && [ "${unknown:-0}" -gt 1000 ] && [ "${cycles:-0}" -ge 900 ] && [ "$busoff" = 1 ] \
       && grep -q "bus-off 1  restarts 1" "$OUT/can-rt-flood.log"; then
        pass "can link on the real loop: idle: $idle | flooded ($unknown frames counted, $overflow dropped by the kernel): $flood; bus-off and restart error frames counted and reported"
    else failc "can link on the real loop: rc $rc, unknown ${unknown:-none}, cycles ${cycles:-none} ($(tail -3 $OUT/can-rt-flood.log | tr '\n' ' '))"; fi
fi
