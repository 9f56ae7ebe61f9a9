// Modbus RTU and TCP through libmodbus 3.1. Every call blocks, so none runs on the real-time thread:
// the polling side owns connections and meets the loop through SPSC queues. Errors are typed and carry
// the device, the operation and libmodbus's own text (modbus_strerror).
import CModbus
import SystemErrors
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

public enum Parity: String, Sendable { case none = "N", even = "E", odd = "O" }

/// Where a device is: TCP host and port, or an RTU serial line (options from the board file).
public enum ModbusTransport: Sendable, Equatable, CustomStringConvertible {
    case tcp(host: String, port: Int)
    case rtu(device: String, baud: Int, parity: Parity, dataBits: Int, stopBits: Int, rs485: Bool, rtsToggle: Bool)

    public var description: String {
        switch self {
        case .tcp(let h, let p): "tcp \(h):\(p)"
        case .rtu(let d, let b, let p, let db, let sb, _, _): "rtu \(d) \(b) \(db)\(p.rawValue)\(sb)"
        }
    }
}

/// A failed Modbus exchange.
public struct ModbusError: Error, CustomStringConvertible, Equatable, Sendable {
    public enum Kind: Sendable, Equatable {
        /// No (complete) reply within the response timeout: the device is silent or too slow.
        case timeout
        /// The device answered with a Modbus exception (1 illegal function, 2 illegal data address,
        /// 3 illegal data value, 4 device failure, …).
        case exception(UInt8)
        /// A reply that is not a valid answer: CRC error, wrong length, wrong unit, garbage.
        case badReply
        /// The connection could not be made or was lost.
        case connection
        /// The port cannot do what the board file asks (RS-485 mode or RTS on a port without them).
        case unsupported
        case other
    }
    public var kind: Kind
    public var device: String
    public var operation: String
    /// errno as libmodbus left it: a system error, or one of libmodbus's own (MODBUS_ENOBASE + n).
    public var errno: Errno
    /// libmodbus's text for the error (modbus_strerror).
    public var text: String

    public var description: String { "modbus \(device): \(operation): \(text)" }

    static let base: Int32 = 112_345_678  // MODBUS_ENOBASE (the EMB* codes are macros Swift does not import)

    init(device: String, operation: String, errno e: Int32) {
        self.device = device
        self.operation = operation
        errno = Errno(rawValue: e)
        text = String(cString: modbus_strerror(e))
        switch errno {
        case .timedOut: kind = .timeout
        case _ where (Self.base + 1 ... Self.base + 11).contains(e): kind = .exception(UInt8(e - Self.base))
        case _ where (Self.base + 12 ... Self.base + 17).contains(e), .messageTooLong: kind = .badReply  // EMBBADCRC … EMBBADSLAVE
        case .connectionReset, .connectionRefused, .brokenPipe, .badFileDescriptor, .socketNotConnected, .noRouteToHost, .networkUnreachable:
            kind = .connection
        default: kind = .other
        }
    }
    public init(device: String, operation: String, unsupported why: String) {
        self.device = device; self.operation = operation; errno = .inappropriateIOCTLForDevice; kind = .unsupported; text = why
    }
}

/// One Modbus device (a unit id on a transport) and its connection.
public final class ModbusConnection {
    let context: OpaquePointer
    public let transport: ModbusTransport
    public private(set) var unit: Int
    public var name: String { "\(transport) unit \(unit)" }

    /// Addresses the next requests to another unit on the same link (an RTU bus, a TCP gateway).
    public func setUnit(_ u: Int) {
        guard u != unit else { return }
        unit = u
        modbus_set_slave(context, Int32(u))
    }
    public private(set) var connected = false

    /// Creates the context, sets the unit id (libmodbus TCP would send 0xFF otherwise) and the response
    /// timeout, and applies the RTU options; RS-485 mode and RTS toggling are refused with a clear
    /// message where the port cannot do them (a pty, a plain USB UART without RS-485 support).
    public init(_ transport: ModbusTransport, unit: Int, responseTimeoutMs: Int = 100) throws(ModbusError) {
        self.transport = transport
        self.unit = unit
        let name = "\(transport) unit \(unit)"
        let ctx: OpaquePointer?
        switch transport {
        case .tcp(let host, let port):
            ctx = modbus_new_tcp(host, Int32(port))
        case .rtu(let device, let baud, let parity, let dataBits, let stopBits, _, _):
            ctx = modbus_new_rtu(device, Int32(baud), CChar(UInt8(ascii: parity.rawValue.unicodeScalars.first!)), Int32(dataBits), Int32(stopBits))
        }
        guard let ctx else { throw ModbusError(device: name, operation: "create context", errno: errno) }
        context = ctx
        guard modbus_set_slave(ctx, Int32(unit)) == 0 else {
            let e = errno
            modbus_free(ctx)
            throw ModbusError(device: name, operation: "set unit id \(unit)", errno: e)
        }
        modbus_set_response_timeout(ctx, UInt32(responseTimeoutMs / 1000), UInt32((responseTimeoutMs % 1000) * 1000))
    }

    deinit {
        if connected { modbus_close(context) }
        modbus_free(context)
    }

    /// Connects (TCP) or opens the serial port (RTU) and applies the RTU line options.
    public func connect() throws(ModbusError) {
        if connected { return }
        guard modbus_connect(context) == 0 else { throw ModbusError(device: name, operation: "connect", errno: errno) }
        connected = true
        if case .rtu(let device, _, _, _, _, let rs485, let rts) = transport {
            if rs485 && modbus_rtu_set_serial_mode(context, MODBUS_RTU_RS485) != 0 {
                let e = errno
                close()
                throw ModbusError(device: name, operation: "RS-485 mode", unsupported: "\(device) cannot switch to RS-485 mode (\(Errno(rawValue: e))); set rs485 = false in the board file for a port that is RS-485 in hardware")
            }
            if rts && modbus_rtu_set_rts(context, MODBUS_RTU_RTS_UP) != 0 {
                let e = errno
                close()
                throw ModbusError(device: name, operation: "RTS toggling", unsupported: "\(device) cannot toggle RTS (\(Errno(rawValue: e))); set rts_toggle = false in the board file")
            }
            modbus_flush(context)
        }
    }

    public func close() {
        if connected { modbus_close(context); connected = false }
    }

    /// Function 3: `count` holding registers from `address`.
    public func readHoldingRegisters(_ address: Int, count: Int) throws(ModbusError) -> [UInt16] {
        try read(address, count, "read holding registers", modbus_read_registers)
    }

    /// Function 4: `count` input registers from `address`.
    public func readInputRegisters(_ address: Int, count: Int) throws(ModbusError) -> [UInt16] {
        try read(address, count, "read input registers", modbus_read_input_registers)
    }

    /// Function 6.
    public func writeRegister(_ address: Int, _ value: UInt16) throws(ModbusError) {
        try ensureConnected()
        guard modbus_write_register(context, Int32(address), value) == 1 else {
            throw failure("write register \(address)")
        }
    }

    /// Function 16: several registers in one request (applied atomically by a conforming device).
    public func writeRegisters(_ address: Int, _ values: [UInt16]) throws(ModbusError) {
        try ensureConnected()
        let n = values.withUnsafeBufferPointer { modbus_write_registers(context, Int32(address), Int32($0.count), $0.baseAddress) }
        guard n == Int32(values.count) else { throw failure("write \(values.count) registers at \(address)") }
    }

    private func read(_ address: Int, _ count: Int, _ what: String,
                      _ call: (OpaquePointer?, Int32, Int32, UnsafeMutablePointer<UInt16>?) -> Int32) throws(ModbusError) -> [UInt16] {
        guard (1...125).contains(count) else {
            throw ModbusError(device: name, operation: "\(what) \(address)+\(count)", unsupported: "count \(count) outside 1...125 (Modbus PDU limit)")
        }
        try ensureConnected()
        var out = [UInt16](repeating: 0, count: count)
        let n = out.withUnsafeMutableBufferPointer { call(context, Int32(address), Int32(count), $0.baseAddress) }
        guard n == Int32(count) else { throw failure("\(what) \(address)+\(count)") }
        return out
    }

    private func ensureConnected() throws(ModbusError) { if !connected { try connect() } }

    /// The error of the call that just failed; a lost TCP connection is closed so the next call reconnects.
    private func failure(_ operation: String) -> ModbusError {
        let e = ModbusError(device: name, operation: operation, errno: errno)
        var serial = false
        if case .rtu = transport { serial = true }
        if e.kind == .connection || (e.kind == .badReply && !serial) { close() }
        if e.kind == .timeout || (e.kind == .badReply && serial) {
            // On a serial line a late reply (or the rest of a bad one) may still be on its way: let the
            // line go quiet for a few character times, then drop what came in, so the next request does
            // not read the previous answer ("Response not from requested slave").
            if serial { usleep(5_000) }
            modbus_flush(context)
        }
        return e
    }
}
