# The car link on the CAN wire (sourced by guest.sh, inside the qemu guest): vcan0, the bench board
# bench-60kw-can at a 10 ms loop (qemu's software emulation), charger-plant running the plant and the
# battery, and the independent BMS (HIL/peers/gbt_bms.py: python-can, cantools, the shipped DBC) on the
# wire. candump (can-utils) records every frame; Tests/kernel/can_check.py reads the records.
# Needs from guest.sh: BIN BOARDS OUT T SRC PY, pass/failc.

modprobe vcan 2>/dev/null
ip link add dev vcan0 type vcan 2>/dev/null
ip link set vcan0 up
CANB="$T/can.toml"
sed -e 's|^channel = .*|channel = "'"$T"'/can-channel"|' -e 's|^period = "1 ms"|period = "10 ms"|' \
    "$BOARDS/bench-60kw-can.toml" > "$CANB"
BMS="$PY $SRC/HIL/peers/gbt_bms.py --interface vcan0 --dbc $SRC/HIL/can/gbt27930-2015.dbc --max-voltage 750 --max-current 250"

# One session: the plant (battery $1 kWh from $2 %, 750 V: 169 cells, charged at constant current), the BMS (its arguments after the first two), chargerd
# with --sessions 1. Leaves $OUT/can-$TAG.{plant,bms,chargerd,candump}; returns chargerd's exit status.
can_session() {
    local cap=$1 soc=$2; shift 2
    if [ "${1:-}" = plant ]; then
        # The plant's own car speaks on the wire (its BMS stops at its target) and no other BMS runs.
        shift
        "$BIN/charger-plant" --board "$CANB" --speed 1 --car "capacity=${cap}kWh,soc=$soc,target=80,max-voltage=750V,max-current=250A" \
            --bms-on-can --once > "$OUT/can-$TAG.plant" 2>&1 &
    else
        "$BIN/charger-plant" --board "$CANB" --speed 1 --car "capacity=${cap}kWh,soc=$soc,target=100,max-voltage=750V,max-current=250A" \
            --once > "$OUT/can-$TAG.plant" 2>&1 &
    fi
    local plant=$!
    for i in $(seq 1 300); do grep -q ready "$OUT/can-$TAG.plant" && break; sleep 0.1; done
    candump -L vcan0 > "$OUT/can-$TAG.candump" 2>/dev/null &
    local dump=$!
    local bms=""
    if ! grep -q "talks GB/T 27930" "$OUT/can-$TAG.plant"; then
        $BMS --capacity-kwh "$cap" --soc "$soc" "$@" > "$OUT/can-$TAG.bms" 2> "$OUT/can-$TAG.bms.err" &
        bms=$!
        # The BMS is up (python and cantools take seconds to load under emulation) before the charger starts.
        for i in $(seq 1 600); do grep -q listening "$OUT/can-$TAG.bms.err" && break; sleep 0.1; done
    fi
    timeout 400 "$BIN/chargerd" --board "$CANB" --sessions 1 --max-time 360 --status-interval 5 \
        --can-log "$OUT/can-$TAG.log" > "$OUT/can-$TAG.chargerd" 2>&1
    local rc=$?
    sleep 1
    [ -n "$bms" ] && { kill $bms 2>/dev/null; wait $bms 2>/dev/null; }
    kill $dump 2>/dev/null; wait $dump 2>/dev/null
    kill $plant 2>/dev/null; wait $plant 2>/dev/null
    return $rc
}
check() { $PY "$SRC/Tests/kernel/can_check.py" --dbc "$SRC/HIL/can/gbt27930-2015.dbc" "$@"; }

# 8. A whole 20 → 80 % session over CAN with the independent BMS: chargerd ends it without a fault; the
#    BMS saw CML, the CCS stream, CST and CSD; every message the charger sends keeps its period (measured
#    from candump's kernel timestamps); the decoded CML/CCS/CST agree with what the loop commanded.
TAG=session
if can_session 5 20; then
    if out=$(check session --candump "$OUT/can-$TAG.candump" --bms "$OUT/can-$TAG.bms" --chargerd "$OUT/can-$TAG.chargerd" 2>&1); then
        pass "can session 20 -> 80 % with the python BMS: $out"
    else failc "can session: $out"; fi
else failc "can session: chargerd exit $? ($(tail -3 $OUT/can-$TAG.chargerd | tr '\n' ' ')) bms: $(tail -2 $OUT/can-$TAG.bms.err | tr '\n' ' ')"; fi

# 12. The same whole session with charger-plant's own simulated car on the wire (--bms-on-can): the
#     plant's BMS, through the Swift codec's car side and its J1939-21 sender.
TAG=plantcar
if can_session 5 20 plant; then
    if out=$(check session --candump "$OUT/can-$TAG.candump" --chargerd "$OUT/can-$TAG.chargerd" 2>&1); then
        pass "can session 20 -> 80 % with charger-plant's car: $out; plant: $(grep -o 'car on CAN: .*' $OUT/can-$TAG.plant)"
    else failc "can session with charger-plant's car: $out"; fi
else failc "can session with charger-plant's car: chargerd exit $? ($(tail -3 $OUT/can-$TAG.chargerd | tr '\n' ' '))"; fi

# 9. The BMS misbehaves during one session (70 -> 80 %): a BCL of the wrong length, frames of an unknown
#    PGN, a BCS transfer with a packet left out, a transfer it aborts, random frames, and a 2 s flood of
#    back-to-back frames. Each is counted and dropped (or asked again), and the session still ends normally.
TAG=misbehave
if can_session 5 70 --misbehave wrong-dlc@2 --misbehave unknown-pgn@4 --misbehave tp-gap@6 --misbehave abort@8 \
        --misbehave garbage@10 --misbehave flood@12; then
    if out=$(check misbehave --soc-from 70 --candump "$OUT/can-$TAG.candump" --bms "$OUT/can-$TAG.bms" --chargerd "$OUT/can-$TAG.chargerd" 2>&1); then
        pass "can misbehaving BMS: $out"
    else failc "can misbehaving BMS: $out"; fi
else failc "can misbehaving BMS: chargerd exit $? ($(tail -3 $OUT/can-$TAG.chargerd | tr '\n' ' '))"; fi

# 10. The BMS falls silent while charging: BCL times out (1 s), the charger sends CEM naming BCL and a CST
#     for a fault, the current stops; the session ends with E17 (the handshake retries find no BMS).
TAG=silent
can_session 5 70 --misbehave silent@3 --timeout 90
rc=$?
if [ $rc -eq 1 ]; then
    if out=$(check timeout --candump "$OUT/can-$TAG.candump" --bms "$OUT/can-$TAG.bms" --chargerd "$OUT/can-$TAG.chargerd" 2>&1); then
        pass "can silent BMS: $out"
    else failc "can silent BMS: $out"; fi
else failc "can silent BMS: chargerd exit $rc, expected 1 (a fault) ($(tail -3 $OUT/can-$TAG.chargerd | tr '\n' ' '))"; fi

# 11. The CAN link on the real board's loop (vm-gpio-sim-60kw + [[can]] on vcan0, SCHED_FIFO where the
#     guest allows it): 10 s attached and idle, then 10 s under cangen's flood of frames through the
#     link's filter. The loop keeps its period (every cycle run, its compute figures beside the idle ones);
#     the flood is counted by the link, off the loop.
if [ -f "$T/vm.toml" ]; then
    { cat "$T/vm.toml"; printf '\n[[can]]\ngun = 0\ninterface = "vcan0"\n'; } > "$T/vm-can.toml"
    loopline() { grep "^loop:" "$1" | tail -1 | sed 's/^loop: //'; }
    "$BIN/chargerd" --board "$T/vm-can.toml" --max-time 10 > "$OUT/can-rt-idle.log" 2>&1
    idle=$(loopline "$OUT/can-rt-idle.log")
    "$BIN/chargerd" --board "$T/vm-can.toml" --max-time 10 > "$OUT/can-rt-flood.log" 2>&1 &
    rp=$!
    for i in $(seq 1 100); do grep -q "car link on vcan0" "$OUT/can-rt-flood.log" && break; sleep 0.1; done
    sleep 2
    timeout 6 cangen vcan0 -g 0 -e -I 1834F456 -L 8 -D i -p 1 > /dev/null 2>&1
    wait $rp; rc=$?
    flood=$(loopline "$OUT/can-rt-flood.log")
    unknown=$(grep -o "unknown PGN [0-9]*" "$OUT/can-rt-flood.log" | grep -o "[0-9]*$")
    overflow=$(grep -o "rx overflow [0-9]*" "$OUT/can-rt-flood.log" | grep -o "[0-9]*$")
    cycles=$(echo "$flood" | grep -o "^[0-9]*")
    if [ $rc -eq 0 ] && [ "${unknown:-0}" -gt 1000 ] && [ "${cycles:-0}" -ge 900 ]; then
        pass "can link on the real loop: idle: $idle | flooded ($unknown frames counted, $overflow dropped by the kernel): $flood"
    else failc "can link on the real loop: rc $rc, unknown ${unknown:-none}, cycles ${cycles:-none} ($(tail -3 $OUT/can-rt-flood.log | tr '\n' ' '))"; fi
fi
