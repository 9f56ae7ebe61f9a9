// swift-tools-version:6.2
// 6.2: SwiftPM accepts the core's whole-module flag (below) in a package that depends on ChargerCore at a
// version (Tests/cli/dependent-package.sh builds one); 6.1 refused it.
// DC charger controller: pure control core, hardware abstraction, simulated board, runtime, chargerd.
import PackageDescription

let package = Package(
    name: "dc-charger",
    products: [
        .executable(name: "chargerd", targets: ["chargerd"]),
        .executable(name: "charger-plant", targets: ["charger-plant"]),
        .executable(name: "charger-hil", targets: ["charger-hil"]),
        .library(name: "ChargerCore", targets: ["ChargerCore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/LebJe/TOMLKit.git", from: "0.6.0"),
        // Errno as a type (the C names and strerror text) in the errors of the I/O layers.
        .package(url: "https://github.com/apple/swift-system.git", from: "1.6.0"),
    ],
    targets: [
        // Pure control core: units, session, safety supervisor, limits, module pool, fault log.
        // No I/O, no Foundation, no allocation in the cycle (compiler-checked). Whole-module: without it a debug
        // build cannot check @_noAllocation code that calls into another file (release builds are WMO anyway).
        // libm: the metering budget's square root (a dependent package's debug build calls sqrt, not the
        // intrinsic, and must link it).
        .target(name: "ChargerCore", swiftSettings: [.unsafeFlags(["-wmo", "-num-threads", "4"])],
                linkerSettings: [.linkedLibrary("m", .when(platforms: [.linux]))]),
        // The C library calls of the real-time runtime (clock_nanosleep, mlockall, SCHED_FIFO, affinity).
        .target(name: "CRealTime"),
        // Replaces malloc to count allocations per thread: linked by the tests and the benchmark only.
        .target(name: "CAllocationCounter"),
        // errno as a type (swift-system's Errno) with the C names, for the I/O layers' errors.
        .target(name: "SystemErrors", dependencies: [.product(name: "SystemPackage", package: "swift-system")]),
        // Cyclic executive, lock-free SPSC queues, latency histograms (their cycle-side bodies are @inlinable,
        // so the compiler-checked code of other modules sees them in debug builds too).
        .target(name: "RealTime", dependencies: ["CRealTime", "SystemErrors", .product(name: "SystemPackage", package: "swift-system")]),
        // libgpiod v1 (Debian's libgpiod-dev) and its Swift wrapper + the GPIO backend of real boards.
        .systemLibrary(name: "CGPIOD", pkgConfig: "libgpiod", providers: [.apt(["libgpiod-dev"])]),
        .target(name: "GPIOD", dependencies: ["CGPIOD", "RealTime", "BoardFile", "ChargerCore", "ChargerHAL", "SystemErrors", .product(name: "SystemPackage", package: "swift-system")]),
        // The analog front end: IIO channels through sysfs, sampled on a thread of their own.
        .target(name: "IIO", dependencies: ["BoardFile", "ChargerCore", "RealTime", "SystemErrors", .product(name: "SystemPackage", package: "swift-system")]),
        // GB/T 27930-2015 on CAN as data: the message table, 29-bit identifiers, the codec of the core's values.
        .target(name: "GBT27930", dependencies: ["ChargerCore"]),
        // SocketCAN (linux/can.h, raw sockets, error frames, SO_TIMESTAMP) and the car link on the CAN wire:
        // a thread per board, the codec and J1939-21 transport off the loop, triple buffers to it.
        .target(name: "CSocketCAN"),
        .target(name: "CANLink", dependencies: ["CSocketCAN", "GBT27930", "BoardFile", "ChargerCore", "ChargerHAL", "RealTime"]),
        // libmodbus (Debian's libmodbus-dev) and its Swift wrapper: RTU and TCP, typed errors.
        .systemLibrary(name: "CModbus", pkgConfig: "libmodbus", providers: [.apt(["libmodbus-dev"])]),
        .target(name: "Modbus", dependencies: ["CModbus", "SystemErrors", .product(name: "SystemPackage", package: "swift-system")]),
        // Modbus devices from their board-file register maps: one polling thread per bus, triple buffers
        // to the loop, per-device counters; the HAL drivers of modules, meters and IMDs.
        .target(name: "FieldBus", dependencies: ["Modbus", "BoardFile", "ChargerHAL", "ChargerCore", "RealTime"]),
        // The fault and session journal on the board's storage (append-only, checksummed, rotating) and
        // the operator figures computed from it.
        .target(name: "Journal", dependencies: ["SystemErrors", .product(name: "SystemPackage", package: "swift-system")]),
        // crypt(3) (libxcrypt) for the technicians' password hashes, and the XSI pty calls.
        .systemLibrary(name: "CConsole"),
        // The technician's serial console (line editor, termios/pty port, login, commands) and the
        // recorder of loop events into the journal.
        .target(name: "Console", dependencies: ["ChargerCore", "LoopContract", "Journal", "CConsole", "RealTime", "SystemErrors", .product(name: "SystemPackage", package: "swift-system")]),
        // The local channel of a bench board with the plant emulator (shared memory, seqlocks, lockstep clock).
        .target(name: "CBenchChannel"),
        .target(name: "BenchChannel", dependencies: ["CBenchChannel", "RealTime", "ChargerCore", "ChargerHAL"]),
        // The loop's contract with the rest of the process: events, operator commands, the station's view,
        // the requests held between cycles and the one rule that merges them into a cycle's inputs.
        .target(name: "LoopContract", dependencies: ["ChargerCore"]),
        // One protocol per device class; no implementation.
        .target(name: "ChargerHAL", dependencies: ["ChargerCore"]),
        // Orderly charging, pure: station clock, time of use, the EMS register map and its fail-safe,
        // OCPP charging profiles, and the composite grid limit fed to the loop.
        .target(name: "Grid", dependencies: ["ChargerCore", "LoopContract"]),
        // The grid interfaces of chargerd: the EMS's Modbus TCP server (libmodbus) and the OCPP 1.6J charge
        // point (WebSocket over TCP or TLS with OpenSSL). Threads of their own, never the loop's.
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        // The OCPP 1.6J charge point as a state machine: a frame, a loop event or a turn, and the time in; its
        // state changed and the effects out (frames, journal lines, state files to store). No I/O.
        .target(name: "OCPPChargePoint", dependencies: ["Grid", "SiteFile", "ChargerCore", "LoopContract"]),
        .target(name: "GridInterfaces", dependencies: ["OCPPChargePoint", "Grid", "SiteFile", "ChargerCore", "LoopContract", "RealTime", "CModbus", "COpenSSL"]),
        // Board files (TOML) -> validated plain data: the StationSpec, the plant model, the loop's scheduling,
        // GPIO lines, Modbus register maps, analog inputs, watchdog, console, storage. Depends on the core only;
        // the plant, the runtime and the backends build their own types from it.
        .target(name: "BoardFile", dependencies: [
            "ChargerCore",
            .product(name: "TOMLKit", package: "TOMLKit"),
        ]),
        // Site files (TOML): what an installation adds to a board (clock offset, EMS server, time of use, OCPP).
        .target(name: "SiteFile", dependencies: [
            "BoardFile", "Grid", "ChargerCore",
            .product(name: "TOMLKit", package: "TOMLKit"),
        ]),
        // The mocked board: a physical plant + simulated car behind the HAL protocols.
        .target(name: "SimPlant", dependencies: ["ChargerCore", "ChargerHAL", "BoardFile"]),
        // The production loop: the controller on a board's drivers (sample → step → apply), the events it
        // publishes, the station's view, the loop settings from the board file and the run's summary. On the
        // production path: it must never link the simulator (SimPlant); Tests/cli/module-graph.py holds that.
        .target(name: "StationLoop", dependencies: ["ChargerCore", "LoopContract", "ChargerHAL", "BoardFile", "RealTime"]),
        // The simulated board: the plant and car behind the HAL in virtual time, its invariants, the real-time
        // body that runs it on the cyclic executive, injections and reporting.
        .target(name: "ChargerRuntime", dependencies: ["StationLoop", "ChargerCore", "LoopContract", "ChargerHAL", "BoardFile", "SimPlant", "RealTime"]),
        // The station's application layer, the production path: one supervisor around the loop on every
        // board (the loop driver is what differs), the journal and console desk, the grid desk, the car
        // links, and the real and bench boards' runs. Never links SimPlant (module-graph.py holds that).
        .target(name: "Station", dependencies: [
            "StationLoop", "LoopContract", "ChargerCore", "ChargerHAL", "BoardFile", "SiteFile", "RealTime", "GPIOD", "IIO", "FieldBus",
            "BenchChannel", "Console", "Journal", "Grid", "GridInterfaces", "CANLink",
        ]),
        // A simulated board's runs on the station's supervisor: in virtual time, or on the cyclic executive.
        .target(name: "SimulatedStation", dependencies: [
            "Station", "StationLoop", "ChargerRuntime", "SimPlant", "BoardFile", "ChargerCore", "LoopContract", "RealTime",
        ]),
        // The command line only: parsing, then a run of Station or SimulatedStation.
        .executableTarget(name: "chargerd", dependencies: [
            "Station", "SimulatedStation", "StationLoop", "ChargerRuntime", "LoopContract", "SiteFile", "GPIOD", "Console", "Journal", "Grid", "GridInterfaces",
            "GBT27930", "BoardFile", "ChargerCore", "SimPlant", "RealTime", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ],
        // The Debian package's unit, generator, maintainer scripts and build script (make deb).
        exclude: ["package"]),
        // The plant emulator of bench boards (HIL/): simulated plant and car, Modbus TCP/RTU slaves from the
        // board's register maps, the bench channel in lockstep with chargerd.
        .executableTarget(name: "charger-plant", dependencies: [
            "ChargerRuntime", "LoopContract", "RealTime", "BenchChannel", "BoardFile", "SimPlant", "ChargerCore", "ChargerHAL", "CANLink",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], path: "HIL/emulator"),
        // HIL scenarios (files under HIL/scenarios), their traces, JUnit and plots; seeded fault campaigns.
        .target(name: "HILRunner", dependencies: [
            "StationLoop", "ChargerRuntime", "LoopContract", "BoardFile", "SiteFile", "SimPlant", "ChargerCore", "Grid",
            .product(name: "TOMLKit", package: "TOMLKit"),
        ]),
        .executableTarget(name: "charger-hil", dependencies: [
            "HILRunner",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        // One fuzz target per parser of bytes from outside (make fuzz-parsers, docs/fuzzing.md): a library the
        // tests run every corpus file through, and libFuzzer's entry, built with --sanitize fuzzer only.
        .target(name: "ParserFuzzing", dependencies: ["Grid", "GridInterfaces", "OCPPChargePoint", "GBT27930", "Console", "Journal", "BoardFile", "SiteFile", "ChargerCore", "LoopContract"]),
        .executableTarget(name: "charger-fuzz", dependencies: ["ParserFuzzing"]),
        // The benchmark (make bench): latency vs cyclictest, step time, allocations, reaction, speed, memory.
        .executableTarget(name: "charger-bench", dependencies: [
            "StationLoop", "ChargerRuntime", "LoopContract", "RealTime", "CAllocationCounter", "BoardFile", "SimPlant", "HILRunner",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .testTarget(name: "ChargerCoreTests", dependencies: ["ChargerCore"]),
        .testTarget(name: "ParserFuzzingTests", dependencies: ["ParserFuzzing"]),
        .testTarget(name: "GridTests", dependencies: ["StationLoop", "Grid", "GridInterfaces", "BoardFile", "ChargerCore", "ChargerRuntime", "LoopContract", "SimPlant"]),
        .testTarget(name: "JournalTests", dependencies: ["Journal"]),
        .testTarget(name: "HILTests", dependencies: ["HILRunner", "ChargerCore", "ChargerRuntime", "LoopContract", "BoardFile", "SimPlant", .product(name: "TOMLKit", package: "TOMLKit")]),
        .testTarget(name: "ConsoleTests", dependencies: ["Console", "Journal", "ChargerRuntime", "LoopContract", "ChargerCore"]),
        .testTarget(name: "BoardFileTests", dependencies: ["BoardFile", "SiteFile", "Grid", "ChargerCore"]),
        .testTarget(name: "ModbusTests", dependencies: ["Modbus", "FieldBus", "BoardFile", "ChargerCore", "ChargerHAL"]),
        .testTarget(name: "GPIOTests", dependencies: ["GPIOD", "IIO", "BoardFile", "ChargerCore"]),
        .testTarget(name: "OCPPChargePointTests", dependencies: ["OCPPChargePoint", "Grid", "SiteFile", "LoopContract", "ChargerCore"]),
        .testTarget(name: "CANLinkTests", dependencies: ["CANLink", "BoardFile", "ChargerCore", "ChargerHAL"]),
        .testTarget(name: "GBT27930Tests", dependencies: ["GBT27930", "ChargerCore"]),
        .testTarget(name: "RuntimeTests", dependencies: ["StationLoop", "RealTime", "BenchChannel", "ChargerHAL", "ChargerRuntime", "LoopContract", "CAllocationCounter", "BoardFile", "SimPlant", "ChargerCore"]),
        .testTarget(name: "StationTests", dependencies: ["Station", "StationLoop", "LoopContract", "RealTime", "BoardFile", "ChargerCore"]),
        .testTarget(name: "SimulationTests", dependencies: ["StationLoop", "ChargerRuntime", "LoopContract", "SimPlant", "BoardFile", "ChargerCore"]),
    ]
)
