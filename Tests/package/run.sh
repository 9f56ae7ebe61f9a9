#!/bin/bash
# make test-deb: the Debian package installed, used and purged on a copy of this machine's root
# filesystem (an overlay in a private mount namespace: nothing reaches the real system), with dpkg and the
# package's own maintainer scripts, as on a board:
#   install  - files, modes and conffiles where technician.md says; the unit passes systemd-analyze verify;
#              the generator writes the board's drop-in; the credentials file is 0600
#   run      - the unit's own ExecStart line (from /etc/default/chargerd) on a simulated board, under a
#              NOTIFY_SOCKET this test listens on: READY, STATUS with the gun states, WATCHDOG, STOPPING
#   launcher - chargerd-start turns a firmware version on trial that does not come up back to `previous`
#   restart  - a fault latched in one run is latched again by the next, from /var/lib/chargerd/journal
#   remove   - program and unit gone, configuration and journal kept
#   purge    - everything gone; with /var/lib/chargerd/keep-journal, the journal alone stays
# One PASS/FAIL line a case; fails (never skips) when the overlay cannot be made.
set -u
DEB="$1"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
[ -f "$DEB" ] || { echo "FAIL test-deb: no package at $DEB (make deb)"; exit 1; }
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
T=$(mktemp -d /tmp/chargerd-deb.XXXXXX)
trap 'rm -rf "$T"' EXIT
cp "$DEB" "$T/chargerd.deb"
cp "$ROOT/Tests/package/inside.sh" "$ROOT/Tests/package/notify_listen.py" "$T/"
# The overlay's layers on a tmpfs of its own (an overlay cannot be the upper layer of another).
$SUDO unshare --mount --propagation private bash -c '
    set -e
    T="$1"
    mount -t tmpfs tmpfs "$T/o" 2>/dev/null || { mkdir -p "$T/o" && mount -t tmpfs tmpfs "$T/o"; }
    mkdir -p "$T/o/upper" "$T/o/work" "$T/o/root"
    mount -t overlay overlay -o "lowerdir=/,upperdir=$T/o/upper,workdir=$T/o/work" "$T/o/root"
    mount -t proc proc "$T/o/root/proc"
    mount --rbind /dev "$T/o/root/dev"
    mount -t tmpfs tmpfs "$T/o/root/run"
    mount -t tmpfs tmpfs "$T/o/root/tmp"
    mkdir -p "$T/o/root/mnt/t" && mount --rbind "$T" "$T/o/root/mnt/t"
    chroot "$T/o/root" bash /mnt/t/inside.sh /mnt/t /mnt/t/o/upper
' _ "$T" > "$T/out.log" 2>&1
rc=$?
cat "$T/out.log"; cat "$T/results" 2>/dev/null
[ -f "$T/results" ] || { echo "FAIL test-deb: the overlay root could not be made or entered (rc $rc)"; exit 1; }
fails=$(grep -c '^FAIL' "$T/results"); passes=$(grep -c '^PASS' "$T/results")
grep -q '^DONE' "$T/results" || { echo "FAIL test-deb: stopped before the last case"; exit 1; }
echo "test-deb: $passes passed (11 expected), $fails failed"
[ "$fails" -eq 0 ] && [ "$passes" -ge 11 ]
