// One fuzz target per parser of bytes from outside the charger (docs/fuzzing.md). Each takes the bytes
// libFuzzer makes and runs them through the same code chargerd runs, then asserts what must hold of the
// result (a frame read back re-encodes to itself, a refused request changes nothing, a bound is kept):
// a failed assertion is a crash to libFuzzer, as a trap or an overflow is.
//
// Built twice: instrumented into `charger-fuzz` (make fuzz-parsers; `swift build --sanitize fuzzer`),
// and plainly into the tests, which run every corpus file under Fuzz/corpus through its target.

/// A fuzz target: its name (the corpus directory under Fuzz/corpus) and its entry.
public struct FuzzTarget: Sendable {
    public let name: String
    public let summary: String
    public let run: @Sendable ([UInt8]) -> Void
}

public enum FuzzTargets {
    public static let all: [FuzzTarget] = [
        FuzzTarget(name: "websocket", summary: "RFC 6455 frames and their assembly into messages (Grid/WebSocketFrame.swift)", run: websocket),
        FuzzTarget(name: "ocpp", summary: "OCPP-J frames, every action's payload decoded, charging profiles installed and evaluated", run: ocpp),
        FuzzTarget(name: "charge-point", summary: "the OCPP charge point's every handler under hostile frames, a transaction running (OCPPChargePoint)",
                   run: chargePoint),
        FuzzTarget(name: "http-ftp", summary: "HTTP answer heads, chunked bodies, FTP replies and PASV answers (GridInterfaces/FileTransfer.swift)", run: httpFTP),
        FuzzTarget(name: "ems", summary: "the EMS server's Modbus PDUs, applied to the register map (a refused one changes nothing)", run: ems),
        FuzzTarget(name: "j1939", summary: "CAN frames from the BMS through the J1939-21 receiver and the GB/T 27930 decoder", run: j1939),
        FuzzTarget(name: "console", summary: "bytes typed on the technician's console: line editor and command parser", run: console),
        FuzzTarget(name: "board-file", summary: "board files (TOML) through the loader's validation", run: boardFile),
        FuzzTarget(name: "site-file", summary: "site files (TOML) over the default board", run: siteFile),
        FuzzTarget(name: "journal", summary: "journal files, torn and hostile, read as at start (records, latched faults, figures)", run: journal),
        FuzzTarget(name: "firmware-package", summary: "the firmware package's head and checks", run: firmwarePackage),
        FuzzTarget(name: "state-files", summary: "the OCPP client's state files read at start, and the credentials file", run: stateFiles),
    ]

    public static func named(_ name: String) -> FuzzTarget? { all.first { $0.name == name } }
}

/// A property that must hold: a failure stops the fuzzer with the input that broke it.
@inline(__always)
func require(_ ok: @autoclosure () -> Bool, _ what: @autoclosure () -> String, file: StaticString = #fileID, line: UInt = #line) {
    if !ok() { fatalError("fuzz property failed: \(what())", file: file, line: line) }
}

/// The input split at its first byte: a selector and the rest.
func split(_ data: [UInt8]) -> (UInt8, ArraySlice<UInt8>) { data.isEmpty ? (0, []) : (data[0], data.dropFirst()) }
