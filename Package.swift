// swift-tools-version:6.1
// DC charger controller: pure control core, hardware abstraction, simulated board, runtime, chargerd.
import PackageDescription

let package = Package(
    name: "dc-charger",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "chargerd", targets: ["chargerd"]),
        .library(name: "ChargerCore", targets: ["ChargerCore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/LebJe/TOMLKit.git", from: "0.6.0"),
    ],
    targets: [
        // Pure control core: units, session, safety supervisor, limits, module pool, fault log.
        // No I/O, no Foundation, no allocation in the cycle (compiler-checked).
        .target(name: "ChargerCore", swiftSettings: [.unsafeFlags(["-wmo", "-num-threads", "4"])]),
        // One protocol per device class; no implementation.
        .target(name: "ChargerHAL", dependencies: ["ChargerCore"]),
        // Board files (TOML) -> validated StationSpec + plant parameters.
        .target(name: "BoardFile", dependencies: [
            "ChargerCore", "SimPlant",
            .product(name: "TOMLKit", package: "TOMLKit"),
        ]),
        // The mocked board: a physical plant + simulated car behind the HAL protocols.
        .target(name: "SimPlant", dependencies: ["ChargerCore", "ChargerHAL"]),
        // Cycle driver, virtual clock, invariants, reporting.
        .target(name: "ChargerRuntime", dependencies: ["ChargerCore", "ChargerHAL", "BoardFile", "SimPlant"]),
        .executableTarget(name: "chargerd", dependencies: [
            "ChargerRuntime",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .testTarget(name: "ChargerCoreTests", dependencies: ["ChargerCore"]),
        .testTarget(name: "BoardFileTests", dependencies: ["BoardFile", "ChargerCore"]),
        .testTarget(name: "SimulationTests", dependencies: ["ChargerRuntime", "SimPlant", "BoardFile", "ChargerCore"]),
    ]
)
