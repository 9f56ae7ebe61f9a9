#!/bin/bash
# Tests/package/run.sh, inside the overlay root: $1 the shared directory (the package, results), $2 the
# overlay's upper layer (every file the package and its scripts changed on the filesystem).
set -u
M="$1"; UP="$2"
RES="$M/results"; : > "$RES"
pass() { echo "PASS $*" >> "$RES"; }
failc() { echo "FAIL $*" >> "$RES"; }
mode() { stat -c %a "$1" 2>/dev/null; }
export PATH=/usr/sbin:/usr/bin:/sbin:/bin

# What the filesystem holds before the package (compared after the purge).
snapshot() { find /etc /usr /lib /var /opt -xdev \( -path /var/lib/dpkg -o -path /var/log -o -path /var/cache -o -path /var/tmp \) -prune -o -print 2>/dev/null | sort; }
snapshot > "$M/before.txt"

# 1. Install.
if ! dpkg -i "$M/chargerd.deb" > "$M/dpkg-install.log" 2>&1; then
    failc "install: dpkg -i failed: $(tail -3 $M/dpkg-install.log)"; echo DONE >> "$RES"; exit 0
fi
missing=""
for f in /usr/bin/chargerd /usr/lib/chargerd/chargerd-start /lib/systemd/system/chargerd.service /lib/systemd/system-generators/chargerd-board-generator \
         /etc/chargerd/board.toml /etc/default/chargerd /usr/share/doc/chargerd/technician.md \
         /usr/share/chargerd/boards/cm4-rs485-60kw.toml /usr/share/chargerd/boards/sim-60kw.toml \
         /etc/systemd/system/multi-user.target.wants/chargerd.service; do [ -e "$f" ] || missing="$missing $f"; done
modes="credentials $(mode /etc/chargerd/credentials), /etc/chargerd $(mode /etc/chargerd), /var/lib/chargerd $(mode /var/lib/chargerd), board.toml $(mode /etc/chargerd/board.toml)"
conf=$(dpkg-query -W -f='${Conffiles}' chargerd | awk '{print $1}' | tr '\n' ' ')
if [ -z "$missing" ] && [ "$modes" = "credentials 600, /etc/chargerd 750, /var/lib/chargerd 750, board.toml 640" ] \
   && [ "$conf" = "/etc/chargerd/board.toml /etc/default/chargerd " ]; then
    pass "install: $(dpkg-query -W -f='${Package} ${Version} ${Architecture}, depends ${Depends}' chargerd); $modes; conffiles $conf; enabled"
else failc "install: missing [$missing]; modes [$modes]; conffiles [$conf]"; fi

# 2. The binary carries its Swift runtime: no libswift*.so needed on a board. make test's package is
#    built from the shared-runtime build it already has (X-Swift-Runtime: shared): then every library
#    must resolve, the Swift ones to the toolchain, and nothing else may be missing.
swiftlibs=$(ldd /usr/bin/chargerd | grep -c 'libswift\|libFoundation' || true)
unresolved=$(ldd /usr/bin/chargerd | grep -c 'not found' || true)
size=$(du -m /usr/bin/chargerd | cut -f1)
runtime=$(dpkg-query -W -f='${X-Swift-Runtime}' chargerd 2>/dev/null)
if [ -z "$runtime" ]; then
    if [ "$swiftlibs" = 0 ] && /usr/bin/chargerd --list-faults > /dev/null; then pass "binary: runs, no Swift shared library needed, $size MB stripped"
    else failc "binary: $swiftlibs Swift shared libraries needed, or it does not run"; fi
else
    if [ "$unresolved" = 0 ] && /usr/bin/chargerd --list-faults > /dev/null; then pass "binary: runs, every library resolved ($swiftlibs Swift libraries from the toolchain: a test package, X-Swift-Runtime: ${runtime%% *}), $size MB stripped"
    else failc "binary: $unresolved libraries not found, or it does not run"; fi
fi

# 3. The unit as systemd reads it, and the generator's drop-in from the board file.
if out=$(systemd-analyze verify /lib/systemd/system/chargerd.service 2>&1) && [ -z "$(echo "$out" | grep -v 'Failed to connect\|bus\|No such file or directory.*/run')" ]; then
    pass "unit: systemd-analyze verify clean"
else failc "unit: systemd-analyze verify: $out"; fi
G=$(mktemp -d)
/lib/systemd/system-generators/chargerd-board-generator "$G" "$G" "$G"
drop="$G/chargerd.service.d/50-board.conf"
if grep -q '^LimitRTPRIO=80$' "$drop" 2>/dev/null && grep -q '^WatchdogSec=2s$' "$drop" && grep -q '^LimitMEMLOCK=infinity$' "$drop" \
   && grep -q '^After=sys-subsystem-net-devices-can0.device$' "$drop"; then
    pass "generator: $(grep -v '^#' $drop | tr '\n' ' ')from /etc/chargerd/board.toml"
else failc "generator: drop-in [$(cat $drop 2>/dev/null)]"; fi
sed -i 's/^priority = 80/priority = 80x/' /etc/chargerd/board.toml
/lib/systemd/system-generators/chargerd-board-generator "$G" "$G" "$G"
[ ! -e "$drop" ] && pass "generator: a board file that does not load leaves no drop-in (chargerd names the fault at start)" \
    || failc "generator: a broken board file left [$(cat $drop)]"
sed -i 's/^priority = 80x/priority = 80/' /etc/chargerd/board.toml

# 4. The unit's own command line (ExecStart with /etc/default/chargerd), on a simulated board, under a
#    NOTIFY_SOCKET of this test's, as systemd would run it.
unit_cmd() {   # $1 board, $2 args: ExecStart as systemd expands it (${X} one word, $X split on spaces)
    local line; line=$(sed -n 's/^ExecStart=//p' /lib/systemd/system/chargerd.service)
    line=${line//'${CHARGERD_BOARD}'/$1}
    line=${line//'$CHARGERD_ARGS'/$2}
    echo "$line"
}
. /etc/default/chargerd
[ "$CHARGERD_BOARD" = /etc/chargerd/board.toml ] || failc "default: CHARGERD_BOARD=$CHARGERD_BOARD"
CAR="capacity=5kWh,soc=70,target=80,max-voltage=500V,plug-at=2s"
read -r -a cmd <<< "$(unit_cmd /usr/share/chargerd/boards/sim-60kw.toml "--car $CAR --speed 30 --status-interval 0 --journal /var/lib/chargerd/journal")"
python3 "$M/notify_listen.py" 400000 -- "${cmd[@]}" > "$M/notify.log" 2> "$M/run1.log"; rc=$?
if [ $rc = 0 ] && head -1 "$M/notify.log" | grep -q 'READY=1|STATUS=gun0 unplugged' && grep -q 'STATUS=gun0 charging' "$M/notify.log" \
   && grep -q 'WATCHDOG=1' "$M/notify.log" && tail -1 "$M/notify.log" | grep -q 'STOPPING=1'; then
    pass "notify: ${cmd[0]} ${cmd[1]} ${cmd[2]} …: READY, STATUS gun0 charging, $(grep -c 'WATCHDOG=1' $M/notify.log) WATCHDOG pings, STOPPING; exit 0"
else failc "notify: rc $rc; $(head -3 $M/notify.log | tr '\n' ' '); $(tail -2 $M/run1.log)"; fi

# 4b. The launcher with a firmware update on trial: a version that does not come up (exits 1) is started
#     CHARGERD_TRIAL_STARTS times, then `current` goes back to `previous` (the packaged chargerd).
F=$(mktemp -d)
printf '#!/bin/sh\nexit 1\n' > "$F/chargerd-bad"; chmod 755 "$F/chargerd-bad"
ln -s /usr/bin/chargerd "$F/chargerd-good"; ln -s chargerd-good "$F/previous"; ln -s chargerd-bad "$F/current"; echo 0 > "$F/trial"
rcs=""
for i in 1 2 3 4; do CHARGERD_FIRMWARE_DIR=$F CHARGERD_TRIAL_STARTS=3 /usr/lib/chargerd/chargerd-start --list-faults > /dev/null 2>> "$M/launcher.log"; rcs="$rcs$?"; done
if [ "$rcs" = 1110 ] && [ "$(readlink $F/current)" = chargerd-good ] && [ "$(cat $F/rolled-back)" = chargerd-bad ] && [ ! -e "$F/trial" ]; then
    pass "launcher: a version on trial that exits 1 started 3 times (exits $rcs), then current -> $(readlink $F/current), rolled-back names it"
else failc "launcher: exits $rcs; current -> $(readlink $F/current); $(cat $M/launcher.log | tail -2)"; fi
rm -rf "$F"

# 5. A fault latched in one run is latched again in the next: the restart policy cannot clear it.
read -r -a cmd <<< "$(unit_cmd /usr/share/chargerd/boards/sim-60kw.toml "--car $CAR --speed max --status-interval 0 --inject estop@10s --journal /var/lib/chargerd/journal")"
"${cmd[@]}" > "$M/run2.log" 2>&1; rc2=$?
read -r -a cmd <<< "$(unit_cmd /usr/share/chargerd/boards/sim-60kw.toml "--car $CAR --speed max --status-interval 0 --journal /var/lib/chargerd/journal")"
"${cmd[@]}" > "$M/run3.log" 2>&1; rc3=$?
jmode=$(mode /var/lib/chargerd/journal); fmode=$(stat -c %a /var/lib/chargerd/journal/journal-*.log | sort -u | tr '\n' ' ')
if [ $rc2 = 1 ] && [ "$jmode" = 750 ] && [ "$fmode" = "640 " ] && grep -q "fault(s) latched before this start, latched again until a reset: .*E01" "$M/run3.log" && [ $rc3 != 0 ]; then
    pass "restart: E01 latched in one run (exit $rc2), latched again from /var/lib/chargerd/journal by the next (exit $rc3); journal directory $jmode, files $fmode"
else failc "restart: exits $rc2/$rc3; $(grep -m1 'latched before' $M/run3.log)"; fi

# 6. Remove: program and unit gone, configuration and journal kept.
dpkg -r chargerd > "$M/dpkg-remove.log" 2>&1
if [ ! -e /usr/bin/chargerd ] && [ ! -e /lib/systemd/system/chargerd.service ] && [ -e /etc/chargerd/board.toml ] \
   && [ -n "$(ls /var/lib/chargerd/journal 2>/dev/null)" ] && [ ! -e /etc/systemd/system/multi-user.target.wants/chargerd.service ]; then
    pass "remove: binary and unit gone; /etc/chargerd and the journal kept"
else failc "remove: $(ls /usr/bin/chargerd /etc/chargerd /var/lib/chargerd 2>&1 | tr '\n' ' ')"; fi

# 7. Purge, asked to keep the journal: it alone stays.
touch /var/lib/chargerd/keep-journal
mkdir -p /var/lib/chargerd/ocpp && touch /var/lib/chargerd/ocpp/state.json
dpkg --purge chargerd > "$M/dpkg-purge1.log" 2>&1
left=$(cd /var/lib/chargerd 2>/dev/null && ls -A | tr '\n' ' ')
if [ ! -e /etc/chargerd ] && [ ! -e /etc/default/chargerd ] && [ "$left" = "journal keep-journal " ]; then
    pass "purge with keep-journal: configuration and OCPP state gone, /var/lib/chargerd holds [$left]"
else failc "purge with keep-journal: /etc/chargerd $(ls -d /etc/chargerd 2>&1); /var/lib/chargerd [$left]"; fi

# 8. Install and purge again without asking: nothing of the package is left, file or directory.
rm -rf /var/lib/chargerd
dpkg -i "$M/chargerd.deb" > /dev/null 2>&1 && dpkg --purge chargerd > "$M/dpkg-purge2.log" 2>&1
snapshot > "$M/after.txt"
leftovers=$(comm -13 "$M/before.txt" "$M/after.txt" | head -5 | tr '\n' ' ')
gone=$(comm -23 "$M/before.txt" "$M/after.txt" | head -5 | tr '\n' ' ')
if [ -z "$leftovers" ] && [ -z "$gone" ]; then pass "purge: the filesystem is as before the install ($(wc -l < $M/after.txt) paths compared)"
else failc "purge: left [$leftovers], removed what was there before [$gone]"; fi
echo DONE >> "$RES"
