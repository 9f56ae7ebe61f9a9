# DC charger controller. `make run` and `make test` work on a fresh Debian machine with Swift:
# they install what is missing (apt-get) and do nothing more on a second call.
SWIFT ?= swift
BOARD ?= Boards/sim-60kw.toml
SPEED ?= 60

.PHONY: deps kernel-deps build run test test-swift test-fuzz fuzz-build campaign-build fuzz-parsers test-cli test-wire test-console test-grid test-hil test-kernel test-deb test-deb-static deb deb-deps hil fuzz powerloss bench bench-ocpp bench-session bench-campaign clean

deps:
	@command -v $(SWIFT) >/dev/null || { echo "swift is not installed (Swift 6.2 or newer is required: Package.swift is tools-version 6.2)"; exit 1; }
	@missing=""; \
	command -v python3 >/dev/null || missing="$$missing python3"; \
	python3 -m pip --version >/dev/null 2>&1 || missing="$$missing python3-pip"; \
	command -v pkg-config >/dev/null || missing="$$missing pkg-config"; \
	dpkg -s libgpiod-dev >/dev/null 2>&1 || missing="$$missing libgpiod-dev"; \
	dpkg -s libmodbus-dev >/dev/null 2>&1 || missing="$$missing libmodbus-dev"; \
	dpkg -s libssl-dev >/dev/null 2>&1 || missing="$$missing libssl-dev"; \
	command -v openssl >/dev/null || missing="$$missing openssl"; \
	command -v socat >/dev/null || missing="$$missing socat"; \
	dpkg -s libstdc++-12-dev >/dev/null 2>&1 || [ -n "$$(ls /usr/lib/gcc/x86_64-linux-gnu/*/libstdc++.so 2>/dev/null)" ] || missing="$$missing libstdc++-12-dev"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi
	@python3 -c "import pymodbus, serial, pexpect, ocpp, websockets, cantools, can, pyftpdlib, cryptography" 2>/dev/null || { echo "installing: HIL/peers/requirements.txt (pymodbus, pyserial, pexpect, ocpp, websockets, cantools, python-can, pyftpdlib, cryptography)"; \
	  python3 -m pip install -q -r HIL/peers/requirements.txt 2>/dev/null || python3 -m pip install -q --break-system-packages -r HIL/peers/requirements.txt; }

# Every build in .build: release, without debug info. -gnone took the suite's build from 521 to 459 s of
# CPU (271 to 233 s of wall time, BENCHMARKS.md "Where make test's time goes"); symbols stay, so a crash's
# backtrace names its functions, not their lines. `make build RELEASE="-c release"` for the lines (a
# change of flags rebuilds everything; so does a bare `swift build -c release` beside these).
RELEASE ?= -c release -Xswiftc -gnone -Xcc -g0
export RELEASE

build: deps
	$(SWIFT) build $(RELEASE) --product chargerd
	$(SWIFT) build $(RELEASE) --product charger-plant
	$(SWIFT) build $(RELEASE) --product charger-hil

# One simulated session on the default board, at 60x (about 40 s for a 37-minute 20->80 % charge).
run: build
	.build/release/chargerd --board $(BOARD) --speed $(SPEED) --status-interval 60

# Tests run in release: full 30-minute sessions at 1 kHz take seconds there, minutes in debug.
# Tests/suite.py: one build of every product and test (swift build $(RELEASE) --build-tests), then the
# targets in three lanes side by side (the CPU's, the qemu guest's, the real-time peers'); every target
# runs even when another failed, each one's output printed whole when it ends, a table of wall times last,
# and the exit status non-zero if any failed. SERIAL=1 one after another; TARGETS="test-wire ..." some.
# NO_BUILD=1 (set by the suite for its targets) skips each target's own build step.
# The real-time peers' tests, several at a time each (Tests/run_parallel.py: each test a process of its
# own; they wait on real time, not on the CPU).
WIRE_JOBS ?= 3
GRID_JOBS ?= 3
CONSOLE_JOBS ?= 2
TEST_TARGETS = test-swift test-fuzz test-cli test-wire test-console test-grid test-hil test-kernel test-deb
BUILD_STEP = $(if $(NO_BUILD),,build)
test: deps kernel-deps deb-deps
	@python3 Tests/suite.py

test-swift:
	$(if $(NO_BUILD),,$(SWIFT) build $(RELEASE) --build-tests)
	$(SWIFT) test -c release --skip-build

# Every parser of outside bytes under libFuzzer (docs/fuzzing.md). `-Xswiftc -sanitize=fuzzer,address`: SwiftPM
# hands swiftc the two --sanitize values as two flags in a random order and swiftc keeps the last, so a
# build had either coverage or the address sanitizer, never both (clang, for TOMLKit's C++, takes both).
# The instrumented build (address sanitizer,
# its own scratch path, about 75 s on 2 cores), then each target 100,000 executions from seed 1 and its
# committed corpus, two at a time: the same inputs on every machine, so the gate never fails on luck.
# Its time bound (1800 s) only ends a hang: a target that reaches it before its 100,000 fails.
# `make fuzz-parsers FUZZ_SECONDS=600` is the long, random run. (test-swift runs every corpus file too.)
FUZZ_SECONDS ?= 600
fuzz-build: deps
	@mkdir -p .build-fuzz
	@$(SWIFT) build -c release --sanitize fuzzer --sanitize address -Xswiftc -sanitize=fuzzer,address --product charger-fuzz --scratch-path .build-fuzz > .build-fuzz/build.log 2>&1 \
	  && grep -E "^(Build|\[[0-9]+/[0-9]+\] Linking)" .build-fuzz/build.log \
	  || { grep -v "ld.gold: warning: Cannot export local symbol" .build-fuzz/build.log | tail -40; exit 1; }
test-fuzz: fuzz-build
	FUZZ_RUNS=100000 FUZZ_SEED=1 Fuzz/run.sh 1800
# The issue's bar: each target 10 minutes or 10 million executions, whichever comes first.
fuzz-parsers: fuzz-build
	FUZZ_MAX_RUNS=10000000 Fuzz/run.sh $(FUZZ_SECONDS)

test-cli: $(BUILD_STEP)
	Tests/cli/chargerd-contract.sh .build/release/chargerd Boards
	Tests/cli/dependent-package.sh .
	python3 Tests/cli/module-graph.py .
	python3 Tests/cli/device-library.py --check .
	python3 Tests/cli/doc-links.py .
	python3 Tests/cli/code-shape.py .
	python3 Tests/cli/signal-stop.py .build/release/chargerd Boards
	python3 Tests/cli/journal-report.py .build/release/chargerd Boards
	python3 Tests/cli/journal-verify.py .build/release/chargerd Boards
	python3 Tests/cli/notify.py .build/release/chargerd Boards
	python3 Tests/cli/can-dbc.py .build/release/chargerd HIL/can/gbt27930-2015.dbc

# Over the wire: chargerd against the plant emulator through libmodbus (TCP and RTU on socat ptys),
# every communication fault, pymodbus against the emulator. Three tests at a time: 88 s in make test (ci6),
# the two 434 s sessions at 10x first.
test-wire: $(BUILD_STEP)
	python3 Tests/run_parallel.py Tests/wire $(WIRE_JOBS) --first Session. --first V2GOverTheWire

# The technician's console over a real pty driven by socat under pexpect (read-only commands, login and
# lockout, actuator tests and refusals, noise, disconnects, a terminal that never reads) and the journal
# under SIGKILL in a loop. Two at a time: 28 s in make test (ci6).
test-console: $(BUILD_STEP)
	python3 Tests/run_parallel.py Tests/console $(CONSOLE_JOBS)
	python3 Tests/console/transcript.py $(CURDIR)/.build/release/chargerd $(CURDIR)/Boards/sim-60kw.toml --check docs/technician.md

# Orderly charging against real peers on loopback: pymodbus as the station EMS (setpoints, bad writes,
# allow-list, heartbeat fail-safe) and the `ocpp` package as the OCPP 1.6J central system (transactions,
# charging profiles, composite schedules, a dropped connection, a restart, wss, certificates, firmware).
# Three tests at a time, each in its own process (Tests/run_parallel.py; GRID_JOBS=N for more or
# fewer): 150 s for the 35 tests in make test (ci6), 385 s one after another with 32 tests.
test-grid: $(BUILD_STEP)
	python3 Tests/run_parallel.py Tests/grid $(GRID_JOBS) --first heartbeat_loss --first local_list --first reservations --first connection_timeout

# The real board on the Linux kernel's own GPIO subsystem (Tests/kernel/run.sh): gpio-sim built from
# Debian's linux-source-6.1 at test time, Debian's kernel booted under qemu (software emulation) with
# virtme-ng, chargerd on Boards/vm-gpio-sim-60kw.toml there: a held line, every line requested safe, the
# e-stop line, an RCD trip shorter than a cycle, a welded contactor, softdog kept quiet by a healthy loop
# and an orderly exit, run out by a stopped one; the CAN cases (Tests/kernel/can.sh). 523 s in make test
# (ci6, beside the other lanes), 830 s beside stress-ng --cpu 2 (BENCHMARKS.md).
kernel-deps:
	@missing=""; \
	command -v qemu-system-x86_64 >/dev/null || missing="$$missing qemu-system-x86"; \
	dpkg -s busybox-static >/dev/null 2>&1 || missing="$$missing busybox-static"; \
	dpkg -s linux-image-amd64 >/dev/null 2>&1 || missing="$$missing linux-image-amd64"; \
	dpkg -s linux-headers-amd64 >/dev/null 2>&1 || missing="$$missing linux-headers-amd64"; \
	dpkg -s linux-source-6.1 >/dev/null 2>&1 || missing="$$missing linux-source-6.1"; \
	command -v gpioinfo >/dev/null || missing="$$missing gpiod"; \
	command -v candump >/dev/null || missing="$$missing can-utils"; \
	command -v ip >/dev/null || missing="$$missing iproute2"; \
	command -v make >/dev/null || missing="$$missing make"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi
	@python3 -c "import virtme_ng" 2>/dev/null || { echo "installing: virtme-ng"; \
	  python3 -m pip install -q virtme-ng 2>/dev/null || python3 -m pip install -q --break-system-packages virtme-ng; \
	  command -v pyenv >/dev/null && pyenv rehash || true; }

test-kernel: $(BUILD_STEP) kernel-deps
	$(if $(NO_BUILD),,$(SWIFT) build $(RELEASE) --build-tests)
	Tests/kernel/run.sh

# The Debian package a board installs (docs/technician.md): chargerd linked with the Swift runtime inside
# (--static-swift-stdlib, in a scratch path of its own: switching the flag in .build rebuilds everything),
# the unit, its generator, every board file, a default configuration. About 3.5 min of build on 2 cores.
deb-deps:
	@missing=""; \
	command -v dpkg-deb >/dev/null || missing="$$missing dpkg"; \
	command -v readelf >/dev/null && command -v strip >/dev/null || missing="$$missing binutils"; \
	command -v systemd-analyze >/dev/null || missing="$$missing systemd"; \
	command -v unshare >/dev/null || missing="$$missing util-linux"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

deb: deps deb-deps
	$(SWIFT) build -c release --static-swift-stdlib --product chargerd --scratch-path .build-static
	Sources/chargerd/package/build-deb.sh .build-static/release/chargerd .build/deb

# The package installed, run under a notify socket, restarted with a latched fault, removed and purged
# on an overlay of this machine's root (a private mount namespace: the real system is not touched).
# The package is made from the release build every other target uses (--test-package: the Swift runtime
# is the toolchain's, X-Swift-Runtime: shared in its control file), not from a second, static build
# (minutes of CPU); `make deb` is what a board installs, and `make test-deb-static` tests that one.
test-deb: $(BUILD_STEP) deb-deps
	Sources/chargerd/package/build-deb.sh --test-package .build/release/chargerd .build/deb-test > .build/deb-test.log || { cat .build/deb-test.log; exit 1; }
	Tests/package/run.sh $$(tail -1 .build/deb-test.log)
test-deb-static: deb
	Tests/package/run.sh $$(ls -t .build/deb/chargerd_*.deb | head -1)

# HIL: every scenario under HIL/scenarios (traces, SVG plots, junit.xml in .build/hil), a scenario with
# wrong expectations failing, the regression campaign (seeds 1-200), an exploration of 200 seeds from a
# start drawn per run (printed first; EXPLORE_SEED=S replays it), --jobs and shards merged equal to one
# run. 155 s in make test (ci6), 312 s beside stress-ng --cpu 2.
test-hil: $(BUILD_STEP)
	Tests/cli/charger-hil-contract.sh .build/release/charger-hil

# The scenarios alone, their outputs kept in .build/hil; `make fuzz SEEDS=1000` for a longer campaign.
hil: build
	.build/release/charger-hil run HIL/scenarios/*.toml --out .build/hil
SEEDS ?= 200
JOBS ?= $(shell nproc)
# The long campaign runs a binary optimised across modules (LTO: the core's step, the plant and the
# observer inlined into one another), built in its own scratch path so that the suite's build is left
# alone: 1.2x fewer seconds a seed than the suite's build, the same results and trace hashes (BENCHMARKS.md
# "The fault campaign's per-cycle budget"). About 2 min to build from clean.
CAMPAIGN_HIL = .build-campaign/release/charger-hil
campaign-build: deps
	@mkdir -p .build-campaign
	@$(SWIFT) build -c release --product charger-hil --scratch-path .build-campaign --experimental-lto-mode=full > .build-campaign/build.log 2>&1 \
	  && grep -E "^(Build|\[[0-9]+/[0-9]+\] Linking)" .build-campaign/build.log \
	  || { tail -40 .build-campaign/build.log; exit 1; }
fuzz: campaign-build
	$(CAMPAIGN_HIL) fuzz --seeds $(SEEDS) --jobs $(JOBS)

# Power-loss campaign (not in `make test`): chargerd killed KILLS times at random moments of sessions,
# fault latches and resets, console commands and OCPP traffic, restarted each time on one journal; every
# acknowledged record read back in order, the faults that stood latched again at the next start, no
# session counted twice (journal and central system). 783 s measured for 1000 kills with console and OCPP traffic, beside a 10 000-seed campaign.
KILLS ?= 1000
powerloss: build
	python3 HIL/powerloss/campaign.py .build/release/chargerd $(BOARD) --kills $(KILLS)

# The runtime's benchmark (one table, written to BENCHMARKS.md with the machine and the date): loop
# latency beside cyclictest (rt-tests, installed here if missing), step time, allocations per cycle,
# fault reaction, virtual-time speed, memory and a 24 h virtual soak. 233 s of benchmark on this 2-core VM, plus the build.
bench: deps
	@command -v cyclictest >/dev/null || { SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq rt-tests; }
	$(SWIFT) build $(RELEASE) --product chargerd
	$(SWIFT) build $(RELEASE) --product charger-bench
	.build/release/charger-bench --chargerd .build/release/chargerd --write BENCHMARKS.md

# The quick speed check: section 5 of `make bench` alone (whole sessions in virtual time per board).
# The real-time loop's figures while an OCPP central system floods the charge point (HIL/bench/ocpp_flood.py).
bench-ocpp: build
	python3 HIL/bench/ocpp_flood.py --seconds 20

# The campaign's cost in instructions (callgrind over seeds 1-2 of the LTO build, ~2 min): the same count
# on a loaded machine, so one change to the step, the plant or the observer is judged alone.
bench-campaign: campaign-build
	HIL/bench/campaign_cost.sh $(CAMPAIGN_HIL) 2

bench-session: deps
	$(SWIFT) build $(RELEASE) --product charger-bench
	.build/release/charger-bench --only 5

clean:
	rm -rf .build
