#!/usr/bin/env bash
# Another package can depend on this one's ChargerCore product at a version, as a user's package would.
# The core is built whole-module (-wmo, an unsafe flag) so that its compiler-checked cycle code sees every
# body in debug builds too; SwiftPM accepts unsafe flags in a versioned dependency only from a package of
# tools-version 6.2 or newer. This clones the committed repository, tags it, and builds a tiny consumer
# (debug, the configuration a user starts with) that calls the core.
set -u
repo=${1:-.}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
git clone -q "$repo" "$tmp/dc-charger" || { echo "FAIL cannot clone $repo"; exit 1; }
git -C "$tmp/dc-charger" tag 99.0.0
mkdir -p "$tmp/consumer/Sources/consumer"
cat > "$tmp/consumer/Package.swift" <<PKG
// swift-tools-version:6.1
import PackageDescription
let package = Package(
    name: "consumer",
    dependencies: [.package(url: "file://$tmp/dc-charger", from: "99.0.0")],
    targets: [.executableTarget(name: "consumer", dependencies: [.product(name: "ChargerCore", package: "dc-charger")])]
)
PKG
cat > "$tmp/consumer/Sources/consumer/main.swift" <<'SWIFT'
import ChargerCore
// A 60 kW gun's current limit at 400 V, from the core's own types.
let p = Watts(60_000), v = Volts(400)
print("limit \((p / v).value) A")
SWIFT
if ! (cd "$tmp/consumer" && swift build -q >"$tmp/build.log" 2>&1); then
    echo "FAIL a package depending on ChargerCore 99.0.0 does not build:"; tail -20 "$tmp/build.log"; exit 1
fi
out=$("$tmp/consumer/.build/debug/consumer")
if [ "$out" != "limit 150.0 A" ]; then echo "FAIL the consumer printed '$out', expected 'limit 150.0 A'"; exit 1; fi
echo "ok   a package depending on ChargerCore (versioned, debug build) builds and runs: $out"
