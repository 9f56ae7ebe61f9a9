// The EMS register map of chargerd's Modbus TCP server, as data: the server, the documentation
// (`chargerd ems-map`, HIL/ems-register-map.csv, docs/grid.md) and the tests all read this one table.
// Values are big-endian; 32-bit values take two registers, high word first, and must be written whole.
import ChargerCore

/// Modbus exception codes the server answers with (Modbus Application Protocol v1.1b3 §7).
public enum ModbusExceptionCode: UInt8, Sendable {
    case illegalFunction = 1, illegalDataAddress = 2, illegalDataValue = 3, gatewayTargetFailed = 0x0B
}

/// A request the map refuses: the exception and why (logged by the server).
public struct EMSRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    public var code: ModbusExceptionCode
    public var why: String
    public var description: String { "exception \(code.rawValue): \(why)" }
    public init(code: ModbusExceptionCode, why: String) { self.code = code; self.why = why }
}

/// What the EMS reads back about the station and each gun (filled from the loop's view).
public struct GunObservation: Sendable, Equatable {
    public var phase: SessionPhase = .unplugged
    public var binding: LimitSource = .none
    public var gridSource: GridSource = .none
    /// A fault that stops or blocks the gun is latched (a refuse or shutdown reaction, or a metering fault
    /// where the board refuses sessions on one); a derate fault or a metering record alone is not one.
    public var faulted = false
    /// The metering faults latched on the gun (E34, E35: records, not stops), by name; empty: none.
    public var meteringFaults: String = ""
    public var voltage: Volts = .zero
    public var current: Amps = .zero
    public var power: Watts { Watts(voltage.value * current.value) }
    public var meterEnergy: WattHours = .zero
    public var powerLimit: Watts = .zero
    public var ratedPower: Watts = .zero
    public var soc: Double = .nan
    /// The gun's lock feedback says locked.
    public var lockConfirmed = false
    /// V2G: the meter's export register; the car's offer (BDP) in force, with its minimum state of
    /// charge; the battery's energy (BCP); and what the gun may export now (W, zero where it may not).
    public var exportEnergy: WattHours = .zero
    public var offersDischarge = false
    public var carMinSoc: Double = 0
    public var batteryEnergy: WattHours = .zero
    public var dischargeAvailable: Watts = .zero
    /// Plug and charge: the VIN the car sent in BRM during this recognition (nil: none sent yet).
    public var vin: VINReading? = nil
    /// Why the gun's last session stopped (the core's; `none` while one runs or before any).
    public var stopReason: StopReason = .none
    public init() {}
}

public struct StationObservation: Sendable, Equatable {
    public var at: Instant = .zero
    public var gridConnection: Watts = .zero
    public var guns: [GunObservation] = []
    /// The faults latched on the station's power modules (E22, E23: derates, not stops), by name; empty: none.
    public var moduleFaults: String = ""
    public init() {}
}

public enum RegisterTable: String, Sendable { case holding, input }

/// One field of the map.
public struct EMSField: Sendable, Equatable {
    public var name: String
    public var table: RegisterTable
    /// Address of gun 0's field for per-gun fields (add `stride` × gun).
    public var address: Int
    public var words: Int
    public var stride: Int
    public var unit: String
    public var range: String
    public var meaning: String
}

public enum EMSRegisterMap {
    /// "No value" in a 32-bit power register (no setpoint, no limit).
    public static let none32: UInt32 = 0xFFFF_FFFF
    public static let gunHoldingBase = 100, gunHoldingStride = 2
    public static let gunInputBase = 100, gunInputStride = 16
    public static let touPeriodBase = 15
    /// V2G (docs/grid.md "V2G"): signed values are two's complement, 0x7FFFFFFF = none.
    public static let none32Signed: UInt32 = 0x7FFF_FFFF
    public static let gunSignedHoldingBase = 60, gunExportInputBase = 40, gunDischargeInputBase = 64

    /// Every field, holding then input (the documentation's order).
    public static let fields: [EMSField] = {
        var f: [EMSField] = [
            .init(name: "heartbeat", table: .holding, address: 0, words: 1, stride: 0, unit: "-", range: "0...65535",
                  meaning: "The EMS writes a new value (a counter) at least every heartbeat_timeout; a repeated value does not count."),
            .init(name: "heartbeat_timeout", table: .holding, address: 1, words: 1, stride: 0, unit: "s", range: "1...3600",
                  meaning: "Longest time between two heartbeats before the fail-safe applies."),
            .init(name: "failsafe_limit", table: .holding, address: 2, words: 2, stride: 0, unit: "W", range: "0...grid connection",
                  meaning: "Station power limit while the heartbeat is lost."),
            .init(name: "failsafe_minimum", table: .holding, address: 4, words: 2, stride: 0, unit: "s", range: "0...86400",
                  meaning: "The fail-safe holds at least this long, then the default (no EMS limit) until the heartbeat returns."),
            .init(name: "station_setpoint", table: .holding, address: 6, words: 2, stride: 0, unit: "W", range: "0...grid connection, 0xFFFFFFFF = none",
                  meaning: "Station power limit while the heartbeat is valid."),
            .init(name: "tou_peak_limit", table: .holding, address: 8, words: 2, stride: 0, unit: "W", range: "0...grid connection, 0xFFFFFFFF = none",
                  meaning: "Station limit during peak periods."),
            .init(name: "tou_flat_limit", table: .holding, address: 10, words: 2, stride: 0, unit: "W", range: "0...grid connection, 0xFFFFFFFF = none",
                  meaning: "Station limit during flat periods."),
            .init(name: "tou_valley_limit", table: .holding, address: 12, words: 2, stride: 0, unit: "W", range: "0...grid connection, 0xFFFFFFFF = none",
                  meaning: "Station limit during valley periods."),
            .init(name: "tou_count", table: .holding, address: 14, words: 1, stride: 0, unit: "-", range: "0...\(TimeOfUse.maxPeriods)",
                  meaning: "Periods in use. Write the count and its periods in one request (entries beyond the count read back as 0)."),
        ]
        for i in 0..<TimeOfUse.maxPeriods {
            f.append(.init(name: "tou_\(i)_start", table: .holding, address: touPeriodBase + 2 * i, words: 1, stride: 0, unit: "min", range: "0...1439",
                           meaning: "Local minute of the day period \(i) starts (strictly increasing over the periods in use)."))
            f.append(.init(name: "tou_\(i)_kind", table: .holding, address: touPeriodBase + 2 * i + 1, words: 1, stride: 0, unit: "-", range: "1 peak, 2 flat, 3 valley",
                           meaning: "Kind of period \(i)."))
        }
        f += [
            .init(name: "station_setpoint_signed", table: .holding, address: 40, words: 2, stride: 0, unit: "W",
                  range: "-grid connection...grid connection (int32), 0x7FFFFFFF = none",
                  meaning: "V2G: the station setpoint, signed: negative asks the station to export (shared among the guns whose cars offer discharge). The same setpoint as station_setpoint, which reads 0 while it is negative."),
            .init(name: "tou_peak_discharge", table: .holding, address: 42, words: 2, stride: 0, unit: "W", range: "1000...grid connection, 0xFFFFFFFF = none",
                  meaning: "V2G: the export asked of each gun in peak periods whose car offers discharge and whose driver set a plan."),
            .init(name: "gun_setpoint_signed", table: .holding, address: gunSignedHoldingBase, words: 2, stride: 2, unit: "W",
                  range: "-gun rating...gun rating (int32), 0x7FFFFFFF = none",
                  meaning: "V2G: one gun's setpoint, signed: negative asks the gun to export. The same setpoint as gun_setpoint, which reads 0 while it is negative."),
            .init(name: "gun_setpoint", table: .holding, address: gunHoldingBase, words: 2, stride: gunHoldingStride, unit: "W", range: "0...gun rating, 0xFFFFFFFF = none",
                  meaning: "Power limit of one gun while the heartbeat is valid."),
            .init(name: "ems_state", table: .input, address: 0, words: 1, stride: 0, unit: "-", range: "0 waiting, 1 valid, 2 fail-safe, 3 default",
                  meaning: "The EMS link's state."),
            .init(name: "tou_kind_now", table: .input, address: 1, words: 1, stride: 0, unit: "-", range: "0 none, 1 peak, 2 flat, 3 valley",
                  meaning: "The time-of-use period now."),
            .init(name: "station_limit_source", table: .input, address: 2, words: 1, stride: 0, unit: "-", range: GridSource.allCases.map { "\($0.rawValue) \($0.name)" }.joined(separator: ", "),
                  meaning: "Which source binds the station's composite limit."),
            .init(name: "gun_count", table: .input, address: 3, words: 1, stride: 0, unit: "-", range: "1...\(Capacity.guns)", meaning: "Guns of the station."),
            .init(name: "station_limit", table: .input, address: 4, words: 2, stride: 0, unit: "W", range: "0xFFFFFFFF = none",
                  meaning: "The station's composite grid limit applied now."),
            .init(name: "station_power", table: .input, address: 6, words: 2, stride: 0, unit: "W", range: "-", meaning: "Measured output power of all guns."),
            .init(name: "failsafe_remaining", table: .input, address: 8, words: 2, stride: 0, unit: "s", range: "-", meaning: "Time left of the fail-safe's minimum."),
            .init(name: "heartbeat_age", table: .input, address: 10, words: 2, stride: 0, unit: "s", range: "0xFFFFFFFF = never", meaning: "Time since the last heartbeat."),
            .init(name: "grid_connection", table: .input, address: 12, words: 2, stride: 0, unit: "W", range: "-", meaning: "The station's grid connection (board file)."),
            .init(name: "station_power_signed", table: .input, address: 14, words: 2, stride: 0, unit: "W", range: "int32",
                  meaning: "V2G: measured power of all guns, signed (negative: the station exports)."),
            .init(name: "station_exported", table: .input, address: 16, words: 2, stride: 0, unit: "Wh", range: "-",
                  meaning: "V2G: the guns' meters' export registers, summed."),
            .init(name: "gun_exported", table: .input, address: gunExportInputBase, words: 2, stride: 2, unit: "Wh", range: "-",
                  meaning: "V2G: the gun's DC meter's export register."),
            .init(name: "gun_discharge_available", table: .input, address: gunDischargeInputBase, words: 2, stride: 2, unit: "W", range: "-",
                  meaning: "V2G: what the gun may export now (its car's offer, ratings, modules; 0 where it may not)."),
            .init(name: "gun_phase", table: .input, address: gunInputBase, words: 1, stride: gunInputStride, unit: "-",
                  range: SessionPhase.allCases.map { "\($0.rawValue) \($0.name)" }.joined(separator: ", "), meaning: "Session phase."),
            .init(name: "gun_binding", table: .input, address: gunInputBase + 1, words: 1, stride: gunInputStride, unit: "-",
                  range: LimitSource.allCases.map { "\($0.rawValue) \($0.name)" }.joined(separator: ", "), meaning: "Which limit binds the gun's current."),
            .init(name: "gun_grid_source", table: .input, address: gunInputBase + 2, words: 1, stride: gunInputStride, unit: "-",
                  range: "as station_limit_source", meaning: "Which grid source set the gun's grid limit."),
            .init(name: "gun_faulted", table: .input, address: gunInputBase + 3, words: 1, stride: gunInputStride, unit: "-", range: "0 no, 1 latched fault", meaning: "A fault that stops or blocks the gun is latched (a derate fault or a metering record is not one)."),
            .init(name: "gun_power", table: .input, address: gunInputBase + 4, words: 2, stride: gunInputStride, unit: "W", range: "-", meaning: "Measured output power."),
            .init(name: "gun_energy", table: .input, address: gunInputBase + 6, words: 2, stride: gunInputStride, unit: "Wh", range: "-", meaning: "The DC meter's register."),
            .init(name: "gun_power_limit", table: .input, address: gunInputBase + 8, words: 2, stride: gunInputStride, unit: "W", range: "-", meaning: "The gun's power limit applied now (all sources)."),
            .init(name: "gun_voltage", table: .input, address: gunInputBase + 10, words: 1, stride: gunInputStride, unit: "0.1 V", range: "-", meaning: "Output voltage."),
            .init(name: "gun_current", table: .input, address: gunInputBase + 11, words: 1, stride: gunInputStride, unit: "0.1 A", range: "-", meaning: "Output current."),
            .init(name: "gun_soc", table: .input, address: gunInputBase + 12, words: 1, stride: gunInputStride, unit: "0.1 %", range: "0xFFFF = unknown", meaning: "The car's state of charge."),
            .init(name: "gun_power_signed", table: .input, address: gunInputBase + 13, words: 2, stride: gunInputStride, unit: "W", range: "int32",
                  meaning: "V2G: measured output power, signed (negative: the car is discharged)."),
        ]
        return f
    }()

    /// The map as CSV (the committed data file HIL/ems-register-map.csv is this text).
    public static var csv: String {
        var s = "name,table,address,words,gun_stride,unit,range,meaning\n"
        for f in fields {
            s +=
                [f.name, f.table.rawValue, String(f.address), String(f.words), String(f.stride), f.unit, quote(f.range), quote(f.meaning)].joined(
                    separator: ",") + "\n"
        }
        return s
    }
    static func quote(_ t: String) -> String { t.contains(",") || t.contains("\"") ? "\"" + t.replacingAll("\"", "\"\"") + "\"" : t }

    // MARK: holding registers

    public static func holdingCount(gunCount: Int) -> Int { gunHoldingBase + gunHoldingStride * gunCount }

    /// Which holding registers exist, and which are the first word of a 32-bit field.
    static func holdingLayout(gunCount: Int) -> (defined: [Bool], wideStart: [Bool]) {
        let n = holdingCount(gunCount: gunCount)
        var defined = [Bool](repeating: false, count: n), wide = [Bool](repeating: false, count: n)
        for f in fields where f.table == .holding {
            for g in 0..<(f.stride > 0 ? gunCount : 1) {
                let a = f.address + f.stride * g
                for w in 0..<f.words { defined[a + w] = true }
                if f.words == 2 { wide[a] = true }
            }
        }
        return (defined, wide)
    }

    static func put32(_ img: inout [UInt16], _ a: Int, _ v: UInt32) { img[a] = UInt16(v >> 16); img[a + 1] = UInt16(v & 0xFFFF) }
    static func get32(_ img: [UInt16], _ a: Int) -> UInt32 { UInt32(img[a]) << 16 | UInt32(img[a + 1]) }
    static func watts32(_ w: Watts?) -> UInt32 { w.map { UInt32(clamping: Int64(max(0, $0.value).rounded())) } ?? none32 }
    /// A signed power (int32, two's complement), 0x7FFFFFFF for none.
    static func signedWatts32(_ w: Watts?) -> UInt32 {
        guard let w else { return none32Signed }
        return UInt32(bitPattern: Int32(clamping: Int64(w.value.rounded())))
    }

    /// The holding registers as the EMS reads them back.
    public static func holdingImage(_ s: EMSState) -> [UInt16] {
        let n = s.gunSetpoints.count
        var img = [UInt16](repeating: 0, count: holdingCount(gunCount: n))
        img[0] = s.lastBeatValue ?? 0
        img[1] = UInt16(clamping: Int(s.settings.heartbeatTimeout.seconds.rounded()))
        put32(&img, 2, watts32(s.settings.failsafeLimit))
        put32(&img, 4, UInt32(clamping: Int(s.settings.failsafeMinimum.seconds.rounded())))
        put32(&img, 6, watts32(s.stationSetpoint))
        put32(&img, 8, watts32(s.tou.peakLimit))
        put32(&img, 10, watts32(s.tou.flatLimit))
        put32(&img, 12, watts32(s.tou.valleyLimit))
        img[14] = UInt16(s.tou.periods.count)
        for (i, p) in s.tou.periods.enumerated() {
            img[touPeriodBase + 2 * i] = UInt16(p.startMinute); img[touPeriodBase + 2 * i + 1] = p.kind.rawValue
        }
        for g in 0..<n { put32(&img, gunHoldingBase + gunHoldingStride * g, watts32(s.gunSetpoints[g])) }
        put32(&img, 40, signedWatts32(s.stationSetpoint))
        put32(&img, 42, watts32(s.tou.peakDischarge))
        for g in 0..<n { put32(&img, gunSignedHoldingBase + 2 * g, signedWatts32(s.gunSetpoints[g])) }
        return img
    }

    // Long: one write's checks, register by register in address order, on one copy of the state that is
    // returned only whole (a refused write changes nothing); split, each part would pass the same copy and
    // refusal along
    /// Applies a write of `values` at `address` to a copy of the state, checks the whole result, and only
    /// then returns it: a refused write changes nothing. `ratings` are the guns' rated powers.
    public static func write(_ s: EMSState, address: Int, values: [UInt16], gridConnection: Watts, ratings: [Watts],
                             now: Instant) throws(EMSRefusal) -> (EMSState, [String]) {
        let n = s.gunSetpoints.count
        let (defined, wide) = holdingLayout(gunCount: n)
        let end = address + values.count
        guard !values.isEmpty, address >= 0, end <= defined.count else {
            throw EMSRefusal(code: .illegalDataAddress, why: "write to \(address)...\(end - 1) outside the holding registers 0...\(defined.count - 1)")
        }
        for a in address..<end where !defined[a] {
            throw EMSRefusal(code: .illegalDataAddress, why: "holding register \(a) is not in the map")
        }
        // A 32-bit value must be written whole: no request may start on its low word or end on its high word.
        if address > 0 && wide[address - 1] { throw EMSRefusal(code: .illegalDataAddress, why: "write starts in the middle of the 32-bit \(name(holding: address - 1, gunCount: n))") }
        if wide[end - 1] { throw EMSRefusal(code: .illegalDataAddress, why: "write ends in the middle of the 32-bit \(name(holding: end - 1, gunCount: n))") }

        var img = holdingImage(s)
        for (i, v) in values.enumerated() { img[address + i] = v }
        func touches(_ a: Int, _ words: Int = 1) -> Bool { a < end && a + words > address }
        func power(_ a: Int, _ what: String, max: Watts, allowNone: Bool) throws(EMSRefusal) -> Watts? {
            let raw = get32(img, a)
            if raw == none32 {
                if allowNone { return nil }
                throw EMSRefusal(code: .illegalDataValue, why: "\(what): 0xFFFFFFFF (no value) is not allowed here")
            }
            guard Double(raw) <= max.value else { throw EMSRefusal(code: .illegalDataValue, why: "\(what) \(raw) W above \(Int(max.value)) W") }
            return Watts(Double(raw))
        }
        func signedPower(_ a: Int, _ what: String, bound: Watts) throws(EMSRefusal) -> Watts? {
            let raw = get32(img, a)
            if raw == none32Signed { return nil }
            let w = Double(Int32(bitPattern: raw))
            guard abs(w) <= bound.value else { throw EMSRefusal(code: .illegalDataValue, why: "\(what) \(Int(w)) W outside ±\(Int(bound.value)) W") }
            return Watts(w)
        }
        // The unsigned and the signed registers of one setpoint: whichever is written sets it (no request
        // can write both: registers not in the map lie between them).

        var next = s
        var changes: [String] = []
        if touches(1) {
            guard (1...3600).contains(Int(img[1])) else { throw EMSRefusal(code: .illegalDataValue, why: "heartbeat_timeout \(img[1]) s outside 1...3600") }
            next.settings.heartbeatTimeout = .s(Int64(img[1]))
        }
        if touches(2, 2) { next.settings.failsafeLimit = try power(2, "failsafe_limit", max: gridConnection, allowNone: false)! }
        if touches(4, 2) {
            let v = get32(img, 4)
            guard v <= 86_400 else { throw EMSRefusal(code: .illegalDataValue, why: "failsafe_minimum \(v) s outside 0...86400") }
            next.settings.failsafeMinimum = .s(Int64(v))
        }
        if touches(6, 2) { next.stationSetpoint = try power(6, "station_setpoint", max: gridConnection, allowNone: true) }
        if touches(8, 2) { next.tou.peakLimit = try power(8, "tou_peak_limit", max: gridConnection, allowNone: true) }
        if touches(10, 2) { next.tou.flatLimit = try power(10, "tou_flat_limit", max: gridConnection, allowNone: true) }
        if touches(12, 2) { next.tou.valleyLimit = try power(12, "tou_valley_limit", max: gridConnection, allowNone: true) }
        if touches(14, 1 + 2 * TimeOfUse.maxPeriods) {
            let count = Int(img[14])
            guard count <= TimeOfUse.maxPeriods else { throw EMSRefusal(code: .illegalDataValue, why: "tou_count \(count) above \(TimeOfUse.maxPeriods)") }
            var periods: [TimeOfUse.Period] = []
            for i in 0..<count {
                let start = Int(img[touPeriodBase + 2 * i]), k = img[touPeriodBase + 2 * i + 1]
                guard let kind = TariffKind(rawValue: k) else { throw EMSRefusal(code: .illegalDataValue, why: "tou_\(i)_kind \(k) is not 1 peak, 2 flat or 3 valley") }
                periods.append(.init(startMinute: start, kind: kind))
            }
            var t = next.tou
            t.periods = periods
            if let p = t.problem { throw EMSRefusal(code: .illegalDataValue, why: "time-of-use schedule: \(p)") }
            // Entries beyond the count are not kept: the count and its periods are written in one request.
            next.tou = t
        }
        for g in 0..<n where touches(gunHoldingBase + gunHoldingStride * g, 2) {
            next.gunSetpoints[g] = try power(gunHoldingBase + gunHoldingStride * g, "gun \(g) setpoint", max: ratings[g], allowNone: true)
        }
        if touches(40, 2) { next.stationSetpoint = try signedPower(40, "station_setpoint_signed", bound: gridConnection) }
        if touches(42, 2) {
            let w = try power(42, "tou_peak_discharge", max: gridConnection, allowNone: true)
            if let w, w < Watts(1_000) { throw EMSRefusal(code: .illegalDataValue, why: "tou_peak_discharge \(Int(w.value)) W below 1000 W (0xFFFFFFFF: none)") }
            next.tou.peakDischarge = w
        }
        for g in 0..<n where touches(gunSignedHoldingBase + 2 * g, 2) {
            next.gunSetpoints[g] = try signedPower(gunSignedHoldingBase + 2 * g, "gun \(g) setpoint_signed", bound: ratings[g])
        }
        if touches(0) { next.heartbeat(img[0], at: now) }
        if next.settings != s.settings { changes.append("settings: heartbeat timeout \(fmtSeconds(next.settings.heartbeatTimeout)), fail-safe \(fmtKW(next.settings.failsafeLimit)) for \(fmtSeconds(next.settings.failsafeMinimum))") }
        if next.stationSetpoint != s.stationSetpoint { changes.append("station setpoint " + (next.stationSetpoint.map(fmtKW) ?? "none")) }
        if next.tou != s.tou { changes.append("time of use: " + next.tou.text) }
        for g in 0..<n where next.gunSetpoints[g] != s.gunSetpoints[g] { changes.append("gun \(g) setpoint " + (next.gunSetpoints[g].map(fmtKW) ?? "none")) }
        return (next, changes)
    }

    /// The field a holding register belongs to, for refusals.
    static func name(holding a: Int, gunCount: Int) -> String {
        for f in fields where f.table == .holding {
            for g in 0..<(f.stride > 0 ? gunCount : 1) where (f.address + f.stride * g)..<(f.address + f.stride * g + f.words) ~= a {
                return f.stride > 0 ? "\(f.name) of gun \(g) (registers \(f.address + f.stride * g)-\(f.address + f.stride * g + 1))" : "\(f.name) (registers \(f.address)-\(f.address + f.words - 1))"
            }
        }
        return "register \(a)"
    }

    // MARK: input registers

    public static func inputCount(gunCount: Int) -> Int { gunInputBase + gunInputStride * gunCount }

    public static func inputImage(ems: EMSState?, touKind: TariffKind?, stationLimit: Watts?, stationSource: GridSource,
                                  observation o: StationObservation) -> [UInt16] {
        var img = [UInt16](repeating: 0, count: inputCount(gunCount: o.guns.count))
        img[0] = ems?.mode.rawValue ?? 0
        img[1] = touKind?.rawValue ?? 0
        img[2] = UInt16(stationSource.rawValue)
        img[3] = UInt16(o.guns.count)
        put32(&img, 4, watts32(stationLimit))
        put32(&img, 6, watts32(Watts(o.guns.reduce(0) { $0 + max(0, $1.power.value) })))
        put32(&img, 8, UInt32(clamping: Int64((ems?.failsafeRemaining(at: o.at).seconds ?? 0).rounded(.up))))
        put32(&img, 10, ems?.lastBeatAt.map { UInt32(clamping: Int64((o.at - $0).seconds.rounded(.down))) } ?? none32)
        put32(&img, 12, watts32(o.gridConnection))
        put32(&img, 14, signedWatts32(Watts(o.guns.reduce(0) { $0 + $1.power.value })))
        put32(&img, 16, UInt32(clamping: Int64(o.guns.reduce(0) { $0 + max(0, $1.exportEnergy.value) }.rounded(.down))))
        for (g, x) in o.guns.enumerated() {
            let b = gunInputBase + gunInputStride * g
            img[b] = UInt16(x.phase.rawValue)
            img[b + 1] = UInt16(x.binding.rawValue)
            img[b + 2] = UInt16(x.gridSource.rawValue)
            img[b + 3] = x.faulted ? 1 : 0
            put32(&img, b + 4, watts32(x.power))
            put32(&img, b + 6, UInt32(clamping: Int64(max(0, x.meterEnergy.value).rounded(.down))))
            put32(&img, b + 8, watts32(x.powerLimit))
            img[b + 10] = UInt16(clamping: Int((x.voltage.value * 10).rounded()))
            img[b + 11] = UInt16(clamping: Int((x.current.value * 10).rounded()))
            img[b + 12] = x.soc.isFinite ? UInt16(clamping: Int((x.soc * 10).rounded())) : 0xFFFF
            put32(&img, b + 13, signedWatts32(x.power))
            put32(&img, gunExportInputBase + 2 * g, UInt32(clamping: Int64(max(0, x.exportEnergy.value).rounded(.down))))
            put32(&img, gunDischargeInputBase + 2 * g, watts32(x.dischargeAvailable))
        }
        return img
    }
}

extension String {
    func replacingAll(_ a: String, _ b: String) -> String { split(separator: Character(a), omittingEmptySubsequences: false).joined(separator: b) }
}

/// One Modbus request to the EMS server, read from its PDU (function code onwards; the MBAP header and
/// the unit are the server's): Modbus Application Protocol v1.1b3 §6.3, 6.4, 6.6, 6.12. Every length is
/// checked exactly before a field is read, so a request cut short or padded is refused (exception 03)
/// and nothing of it is applied (the probe's case 6: a function 6 cut short wrote 0xFFFF and was still
/// answered with an exception).
public enum EMSRequest: Sendable, Equatable {
    case read(input: Bool, address: Int, count: Int)
    case write(address: Int, values: [UInt16])

    public static func parse(pdu: ArraySlice<UInt8>) -> Result<EMSRequest, EMSRefusal> {
        guard let fc = pdu.first else { return .failure(EMSRefusal(code: .illegalFunction, why: "an empty request")) }
        let b = pdu.startIndex
        func be16(_ i: Int) -> Int { Int(pdu[b + i]) << 8 | Int(pdu[b + i + 1]) }
        func short(_ want: Int) -> Result<EMSRequest, EMSRefusal> {
            .failure(EMSRefusal(code: .illegalDataValue, why: "function \(fc) of \(pdu.count) bytes (\(want) expected)"))
        }
        switch fc {
        case 0x03, 0x04:
            guard pdu.count == 5 else { return short(5) }
            let count = be16(3)
            guard (1...125).contains(count) else { return .failure(EMSRefusal(code: .illegalDataValue, why: "read of \(count) registers (1...125)")) }
            return .success(.read(input: fc == 0x04, address: be16(1), count: count))
        case 0x06:
            guard pdu.count == 5 else { return short(5) }
            return .success(.write(address: be16(1), values: [UInt16(be16(3))]))
        case 0x10:
            guard pdu.count >= 6 else { return short(6) }
            let count = be16(3), bytes = Int(pdu[b + 5])
            guard (1...123).contains(count), bytes == 2 * count else {
                return .failure(EMSRefusal(code: .illegalDataValue, why: "write of \(count) registers with \(bytes) bytes (1...123 registers, 2 bytes each)"))
            }
            guard pdu.count == 6 + bytes else { return short(6 + bytes) }
            return .success(.write(address: be16(1), values: (0..<count).map { UInt16(be16(6 + 2 * $0)) }))
        default:
            return .failure(EMSRefusal(code: .illegalFunction, why: "function \(fc) is not served (3, 4, 6 and 16 are)"))
        }
    }
}
