// libFuzzer's entry for every parser of outside bytes (Sources/ParserFuzzing): the target is named by
// CHARGER_FUZZ_TARGET (make fuzz-parsers sets it; docs/fuzzing.md). Built only with
// `swift build --sanitize fuzzer --sanitize address --product charger-fuzz`: libFuzzer supplies main().
import ParserFuzzing
#if canImport(Glibc)
import Glibc
#endif

nonisolated(unsafe) var selected: FuzzTarget? = nil

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<Int32>?, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>?)
    -> Int32
{
    let name = getenv("CHARGER_FUZZ_TARGET").map { String(cString: $0) } ?? ""
    guard let t = FuzzTargets.named(name) else {
        let names = FuzzTargets.all.map(\.name).joined(separator: ", ")
        let text = "charger-fuzz: set CHARGER_FUZZ_TARGET to one of: \(names) (got '\(name)')\n"
        _ = text.withCString { write(2, $0, strlen($0)) }
        exit(2)
    }
    selected = t
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let t = selected else { return 0 }
    t.run(size == 0 || data == nil ? [] : Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
