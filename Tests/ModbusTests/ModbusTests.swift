// libmodbus from Swift against independent peers: pymodbus (PyPI) as the device over TCP and over RTU
// on a socat pseudo-terminal pair, pymodbus as a client reading back what Swift wrote, and raw peers
// that are silent, answer garbage or answer late. Nothing crashes; every failure is typed and named.
import Foundation
import Modbus
import Testing

let repoRoot: String = {
    var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(3)
    return parts.joined(separator: "/")
}()

/// A child process (peer), ready once a line containing `ready` appears on its standard output (or
/// standard error); killed (SIGKILL: pymodbus servers may catch SIGTERM) when released.
final class Peer {
    let process = Process()
    let output = Pipe()
    var listening = ""

    init(_ arguments: [String], ready: String = "listening ", onStandardError: Bool = false) throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        if onStandardError { process.standardError = output; process.standardOutput = FileHandle.nullDevice }
        else { process.standardOutput = output; process.standardError = FileHandle.nullDevice }
        try process.run()
        var text = ""
        let end = Date().addingTimeInterval(20)
        while Date() < end && !text.contains(ready) {
            let data = output.fileHandleForReading.availableData
            if data.isEmpty { break }
            text += String(decoding: data, as: UTF8.self)
        }
        guard let line = text.split(separator: "\n").first(where: { $0.contains(ready) }) else {
            kill(process.processIdentifier, SIGKILL)
            throw PeerError.notReady(text)
        }
        if let r = line.range(of: "listening ") { listening = String(line[r.upperBound...]) }
    }
    enum PeerError: Error { case notReady(String) }

    var port: Int { Int(listening.split(separator: ":").last!)! }
    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
    }

    static func device(_ extra: [String]) throws -> Peer {
        try Peer(["python3", "\(repoRoot)/HIL/peers/modbus_peer.py"] + extra)
    }
}

func python(_ code: String) throws -> String {
    let p = Process(), out = Pipe()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["python3", "-c", code]
    p.standardOutput = out
    try p.run()
    p.waitUntilExit()
    return String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
}

@Suite(.serialized) struct ModbusOverTCP {
    @Test func readWriteAgainstPymodbusBothWays() throws {
        let peer = try Peer.device(["--tcp", "0", "--unit", "3", "--holding", "100=1234,101=5678", "--input", "7=400"])
        let c = try ModbusConnection(.tcp(host: "127.0.0.1", port: peer.port), unit: 3, responseTimeoutMs: 500)
        #expect(try c.readHoldingRegisters(100, count: 2) == [1234, 5678])
        #expect(try c.readInputRegisters(7, count: 1) == [400])
        try c.writeRegister(200, 42)
        try c.writeRegisters(300, [1, 2, 65535])
        #expect(try c.readHoldingRegisters(300, count: 3) == [1, 2, 65535])
        // pymodbus's own client reads what Swift wrote (independent peer on both ends of the check).
        let seen = try python("""
        from pymodbus.client import ModbusTcpClient
        c = ModbusTcpClient('127.0.0.1', port=\(peer.port)); c.connect()
        r = c.read_holding_registers(200, count=1, device_id=3); s = c.read_holding_registers(300, count=3, device_id=3)
        print(r.registers[0], *s.registers)
        """)
        #expect(seen == "42 1 2 65535")
    }

    /// An address the device does not have: exception 2 (illegal data address), named; the
    /// connection stays usable.
    @Test func exceptionReplyIsTypedAndTheLinkSurvives() throws {
        let peer = try Peer.device(["--tcp", "0", "--unit", "1", "--size", "100", "--holding", "5=9"])
        let c = try ModbusConnection(.tcp(host: "127.0.0.1", port: peer.port), unit: 1, responseTimeoutMs: 500)
        do {
            _ = try c.readHoldingRegisters(500, count: 4)
            Issue.record("read beyond the device's registers succeeded")
        } catch {
            #expect(error.kind == .exception(2), "\(error)")
            #expect(error.description.contains("read holding registers 500+4"))
            #expect(error.description.lowercased().contains("illegal data address"), "\(error)")
        }
        #expect(try c.readHoldingRegisters(5, count: 1) == [9])
    }

    @Test func silentDeviceTimesOut() throws {
        let peer = try Peer.device(["--tcp", "0", "--mode", "silent"])
        let c = try ModbusConnection(.tcp(host: "127.0.0.1", port: peer.port), unit: 1, responseTimeoutMs: 100)
        for _ in 0..<3 {
            do { _ = try c.readHoldingRegisters(0, count: 1); Issue.record("a silent device answered") }
            catch { #expect(error.kind == .timeout, "\(error)") }
        }
    }

    @Test func garbageRepliesAreRefused() throws {
        let peer = try Peer.device(["--tcp", "0", "--mode", "garbage"])
        let c = try ModbusConnection(.tcp(host: "127.0.0.1", port: peer.port), unit: 1, responseTimeoutMs: 200)
        for _ in 0..<5 {
            do { _ = try c.readHoldingRegisters(0, count: 2); Issue.record("garbage accepted") }
            catch { #expect(error.kind == .badReply || error.kind == .timeout, "\(error)") }
        }
    }

    /// A device slower than the response timeout is a timeout; with a longer timeout the same device works.
    @Test func slowRepliesTimeOutThenSucceedWithALongerTimeout() throws {
        let peer = try Peer.device(["--tcp", "0", "--mode", "slow", "--delay-ms", "300", "--holding", "0=77"])
        let fast = try ModbusConnection(.tcp(host: "127.0.0.1", port: peer.port), unit: 1, responseTimeoutMs: 100)
        do { _ = try fast.readHoldingRegisters(0, count: 1); Issue.record("answered within 100 ms") }
        catch { #expect(error.kind == .timeout, "\(error)") }
        let patient = try ModbusConnection(.tcp(host: "127.0.0.1", port: peer.port), unit: 1, responseTimeoutMs: 1000)
        #expect(try patient.readHoldingRegisters(0, count: 1) == [77])
    }

    @Test func refusedConnectionIsNamed() throws {
        let c = try ModbusConnection(.tcp(host: "127.0.0.1", port: 1), unit: 1)
        do { try c.connect(); Issue.record("connected to port 1") }
        catch {
            #expect(error.kind == .connection, "\(error)")
            #expect(error.description.hasPrefix("modbus tcp 127.0.0.1:1 unit 1: connect:"))
        }
    }

    @Test func countOutsideThePDULimitIsRefusedBeforeSending() throws {
        let c = try ModbusConnection(.tcp(host: "127.0.0.1", port: 1), unit: 1)
        do { _ = try c.readHoldingRegisters(0, count: 126); Issue.record("126 registers requested") }
        catch { #expect(error.kind == .unsupported && error.text.contains("outside 1...125")) }
    }
}

@Suite(.serialized) struct ModbusOverRTU {
    /// A socat pseudo-terminal pair: pymodbus's RTU server on one end, libmodbus on the other.
    @Test func rtuOnAPtyPairAgainstPymodbus() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rtu-\(getpid())-\(Int.random(in: 0..<1_000_000))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let socat = try Peer(["socat", "-d", "-d", "pty,raw,echo=0,link=\(dir)/a", "pty,raw,echo=0,link=\(dir)/b"],
                             ready: "starting data transfer loop", onStandardError: true)
        _ = socat
        let device = try Peer.device(["--rtu", "\(dir)/a", "--unit", "5", "--holding", "10=4242,11=17"])
        _ = device
        let c = try ModbusConnection(.rtu(device: "\(dir)/b", baud: 115200, parity: .none, dataBits: 8, stopBits: 1, rs485: false, rtsToggle: false),
                                     unit: 5, responseTimeoutMs: 1000)
        #expect(try c.readHoldingRegisters(10, count: 2) == [4242, 17])
        try c.writeRegisters(20, [7, 8])
        #expect(try c.readHoldingRegisters(20, count: 2) == [7, 8])
        c.close()

        // RS-485 mode asked of a port that cannot do it: refused, naming the port and the board key.
        let rs485 = try ModbusConnection(
            .rtu(device: "\(dir)/b", baud: 115200, parity: .none, dataBits: 8, stopBits: 1, rs485: true, rtsToggle: false), unit: 5)
        do { try rs485.connect(); Issue.record("a pty switched to RS-485 mode") }
        catch {
            #expect(error.kind == .unsupported)
            #expect(error.text.contains("\(dir)/b cannot switch to RS-485 mode") && error.text.contains("rs485 = false"), "\(error)")
        }
    }
}
