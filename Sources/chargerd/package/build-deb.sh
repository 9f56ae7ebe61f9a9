#!/bin/bash
# make deb: the Debian package of chargerd, built with dpkg-deb from a release binary linked with the
# Swift runtime inside it (--static-swift-stdlib: the board needs no Swift toolchain).
#   build-deb.sh BINARY OUTDIR   -> OUTDIR/chargerd_VERSION_ARCH.deb (its path printed last)
#   build-deb.sh --test-package BINARY OUTDIR: the same package from the shared-runtime build that
#     `make test` already has (make test-deb: a second, static build would cost minutes of CPU); it says
#     so in its control file (X-Swift-Runtime: shared) and runs only where the toolchain is, as on the
#     machine that tests it. Never for a board.
# Layout: /usr/bin/chargerd and /usr/lib/chargerd/chargerd-start (what the unit runs); /lib/systemd/system/chargerd.service and the generator of its board drop-in;
# /usr/share/chargerd/boards/ (every board file, and devices/: the device files, for reading: chargerd has them
# compiled in); /etc/chargerd/board.toml (the CM4 board, a conffile
# to edit) and /etc/default/chargerd; /usr/share/doc/chargerd/ (technician's page, security notes).
# The state directory /var/lib/chargerd (journal, OCPP state) is made by postinst and systemd.
set -eu
TEST_PACKAGE=""
[ "${1:-}" = --test-package ] && { TEST_PACKAGE=1; shift; }
BIN="$1"; OUT="$2"
ROOT="$(cd "$(dirname "$0")/../../.." && pwd)"
PKG="$(cd "$(dirname "$0")" && pwd)"
VERSION=$(sed -n 's/^let firmwareVersion = "chargerd \([0-9.]*\)".*/\1/p' "$ROOT/Sources/chargerd/main.swift")
[ -n "$VERSION" ] || { echo "build-deb: no firmwareVersion in Sources/chargerd/main.swift"; exit 1; }
ARCH=$(dpkg --print-architecture)
[ -x "$BIN" ] || { echo "build-deb: $BIN is not an executable"; exit 1; }
SWIFT_LIBS='^(libswift.*|libFoundation.*|lib_Foundation.*|libdispatch|libBlocksRuntime|libXCTest|libTesting)\.so'
if [ -n "$TEST_PACKAGE" ]; then
    readelf -d "$BIN" | grep -q 'NEEDED.*libswiftCore' || { echo "build-deb: --test-package is for the shared-runtime build; $BIN has the runtime inside (build it without --test-package)"; exit 1; }
elif readelf -d "$BIN" | grep -q 'NEEDED.*libswiftCore'; then
    echo "build-deb: $BIN needs the Swift runtime's shared libraries (build it with --static-swift-stdlib)"; exit 1
fi

mkdir -p "$OUT"
S="$OUT/stage"
rm -rf "$S" && mkdir -p "$S/DEBIAN" "$S/usr/bin" "$S/lib/systemd/system" "$S/lib/systemd/system-generators" \
    "$S/usr/share/chargerd/boards" "$S/etc/chargerd" "$S/etc/default" "$S/usr/share/doc/chargerd"
install -m 0755 "$BIN" "$S/usr/bin/chargerd"
install -D -m 0755 "$PKG/chargerd-start" "$S/usr/lib/chargerd/chargerd-start"
strip --strip-unneeded "$S/usr/bin/chargerd"
install -m 0644 "$PKG/chargerd.service" "$S/lib/systemd/system/chargerd.service"
install -m 0755 "$PKG/chargerd-board-generator" "$S/lib/systemd/system-generators/chargerd-board-generator"
install -m 0644 "$ROOT"/Boards/*.toml "$S/usr/share/chargerd/boards/"
install -d "$S/usr/share/chargerd/boards/devices"
install -m 0644 "$ROOT"/Boards/devices/*.toml "$S/usr/share/chargerd/boards/devices/"
install -m 0640 "$ROOT/Boards/cm4-rs485-60kw.toml" "$S/etc/chargerd/board.toml"
install -m 0644 "$PKG/default" "$S/etc/default/chargerd"
# The pages a technician reads on the board: installing and wiring it, its console and journal, the
# fault codes, the board and site files, the command line and the threat model.
for page in technician console faults boards grid chargerd standards security; do
    install -m 0644 "$ROOT/docs/$page.md" "$S/usr/share/doc/chargerd/$page.md"
done
install -m 0755 "$PKG/postinst" "$PKG/prerm" "$PKG/postrm" "$S/DEBIAN/"
printf '/etc/chargerd/board.toml\n/etc/default/chargerd\n' > "$S/DEBIAN/conffiles"

# Depends: the package of every shared library the binary needs (what dpkg-shlibdeps would find).
deps=""
for lib in $(readelf -d "$BIN" | sed -n 's/.*NEEDED.*\[\(.*\)\]/\1/p'); do
    # A test package's Swift runtime is the toolchain's (no Debian package owns it).
    [ -n "$TEST_PACKAGE" ] && echo "$lib" | grep -Eq "$SWIFT_LIBS" && continue
    path=$(ldconfig -p | awk -v l="$lib" '$1 == l && /x86-64|AArch64|ARM/ { print $NF; exit }')
    [ -n "$path" ] || { echo "build-deb: no $lib on this machine"; exit 1; }
    p=$(dpkg -S "$(readlink -f "$path")" 2>/dev/null | head -1 | cut -d: -f1) || true
    [ -n "$p" ] || p=$(dpkg -S "$path" 2>/dev/null | head -1 | cut -d: -f1) || true
    [ -n "$p" ] || { echo "build-deb: no package owns $path ($lib)"; exit 1; }
    case " $deps " in *" $p "*) ;; *) deps="$deps $p" ;; esac
done
depends=$(echo $deps | sed 's/ /, /g')
xfield=""
[ -n "$TEST_PACKAGE" ] && xfield=$'\nX-Swift-Runtime: shared (a test package: the runtime is the toolchain\'s; make deb links it inside)'

size=$(du -sk "$S" --exclude=DEBIAN | cut -f1)
cat > "$S/DEBIAN/control" <<CONTROL
Package: chargerd
Version: $VERSION
Architecture: $ARCH
Maintainer: DC charger controller developers <chargerd@localhost>
Section: misc
Priority: optional
Installed-Size: $size
Depends: $depends$xfield
Description: DC electric-vehicle charger controller
 A hard real-time controller for DC chargers (GB/T 18487.1, GB/T 27930, IEC 61851-23): contactors,
 gun lock and lamps through GPIO, rectifier modules, meter and insulation monitor over Modbus, the
 whole DC session with its protections, a technician console, a journal, EMS and OCPP interfaces.
 Runs as chargerd.service (Type=notify) from the board file in /etc/chargerd.
CONTROL
deb="$OUT/chargerd_${VERSION}_${ARCH}.deb"
dpkg-deb --root-owner-group -Zxz --build "$S" "$deb" > /dev/null
rm -rf "$S"
echo "$deb"
