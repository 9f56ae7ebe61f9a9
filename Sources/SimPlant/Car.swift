// A simulated car: battery (OCV curve, internal resistance, SOC), its contactors (K5/K6), the CC1
// resistors of the vehicle inlet, and a BMS that speaks the GB/T 27930 sequence with its periods.
import BoardFile
import ChargerCore

/// What the car is, as given on the command line: `capacity=60kWh,soc=20,target=80,max-voltage=500V`.
public struct CarProfile: Sendable, Equatable {
    public var capacity: WattHours = .kWh(60)
    public var soc: Double = 20
    public var target: Double = 80
    /// The car's maximum allowed charging voltage (BHM).
    public var maxVoltage = Volts(500)
    /// The car's maximum charging current (BCP).
    public var maxCurrent = Amps(250)
    /// Plug-in time after the start of the simulation.
    public var plugAt: TimeSpan = .s(2)
    /// Reported battery voltage offset in BCP (a lying or mis-calibrated BMS).
    public var reportedVoltageOffset: Volts = .zero
    /// V2G: the car offers to be discharged (BDP) down to this state of charge, at most at this current
    /// and power; nil: a car that only charges (keys `v2g-min-soc`, `v2g-max-current`, `v2g-max-power`).
    public var v2g: V2GOffer? = nil
    /// The VIN the BMS sends in BRM (`vin=`); nil: the short BRM, no VIN (`vin=none`).
    public var vin: String? = "LSIMCAR0000000001"
    /// The battery's internal resistance (`resistance=`), where the model's (below) is not wanted: the
    /// guest's bench charges a small battery that takes the gun's power to its target (docs/testing.md).
    public var resistance: Ohms? = nil
    public init() {}

    public struct V2GOffer: Sendable, Equatable {
        public var minSoc: Double = 30
        public var maxCurrent = Amps(100)
        public var maxPower = Watts.kW(30)
        public init(minSoc: Double = 30, maxCurrent: Amps = Amps(100), maxPower: Watts = .kW(30)) {
            self.minSoc = minSoc; self.maxCurrent = maxCurrent; self.maxPower = maxPower
        }
    }

    /// Series cells: the CV voltage (4.15 V/cell) stays at or below 95 % of the car's maximum.
    public var cells: Int { max(1, Int(0.95 * maxVoltage.value / 4.2)) }
    public var nominalVoltage: Volts { Volts(Double(cells) * 3.7) }
    public var cvVoltage: Volts { Volts(Double(cells) * 4.15) }
    /// 0.4 mΩ a cell at 60 kWh, inversely to the capacity: a smaller battery charges no faster, since the
    /// time its CV phase takes stays the same (a 2 kWh one took 225 s from 20 to 80 % at 60 kW, a 5 kWh one 240).
    public var internalResistance: Ohms { resistance ?? Ohms(Double(cells) * 0.0004 * 60_000 / max(capacity.value, 1_000)) }

    public enum ParseError: Error, CustomStringConvertible, Equatable {
        case malformed(String), unknownKey(String), badValue(key: String, value: String, why: String)
        public var description: String {
            switch self {
            case .malformed(let s): "car: malformed item '\(s)' (expected key=value)"
            case .unknownKey(let k): "car: unknown key '\(k)' (known: capacity, soc, target, max-voltage, max-current, plug-at, resistance, v2g-min-soc, v2g-max-current, v2g-max-power, vin)"
            case .badValue(let k, let v, let why): "car: \(k)=\(v): \(why)"
            }
        }
    }

    /// Parses `capacity=60kWh,soc=20,target=80,max-voltage=500V[,max-current=250A][,plug-at=2s]`.
    public static func parse(_ text: String) throws(ParseError) -> CarProfile {
        var car = CarProfile()
        for item in text.split(separator: ",", omittingEmptySubsequences: true) {
            let kv = item.split(separator: "=", maxSplits: 1).map { String($0).trimmingSpaces }
            guard kv.count == 2, !kv[0].isEmpty else { throw .malformed(String(item)) }
            let (k, v) = (kv[0].lowercased(), kv[1])
            // Quantities as board files write them (QuantityText: the unit required); SOC and target are
            // percentages of the battery, written with or without "%".
            func number(_ table: UnitTable) throws(ParseError) -> Double {
                switch QuantityText.parse(v, table) {
                case .success(let x): return x
                case .failure(let e): throw .badValue(key: k, value: v, why: e.description)
                }
            }
            func percent() throws(ParseError) -> Double {
                let digits = v.hasSuffix("%") ? String(v.dropLast()).trimmingSpaces : v
                guard let d = Double(digits), d.isFinite else { throw .badValue(key: k, value: v, why: "not a number (a percentage, e.g. 20 or 20%)") }
                return d
            }
            switch k {
            case "capacity":
                let d = try number(.energy) / 1000
                // From 1 kWh, under any car's: the qemu guest's bench charges 20 -> 80 % in real time.
                guard d >= 1, d <= 2000 else { throw .badValue(key: k, value: v, why: "must be 1...2000 kWh") }
                car.capacity = .kWh(d)
            case "soc":
                let d = try percent()
                guard d >= 0, d < 100 else { throw .badValue(key: k, value: v, why: "must be 0...<100 %") }
                car.soc = d
            case "target":
                let d = try percent()
                guard d > 0, d <= 100 else { throw .badValue(key: k, value: v, why: "must be >0...100 %") }
                car.target = d
            case "max-voltage":
                let d = try number(.voltage)
                guard d >= 150, d <= 1500 else { throw .badValue(key: k, value: v, why: "must be 150...1500 V") }
                car.maxVoltage = Volts(d)
            case "max-current":
                let d = try number(.current)
                guard d > 0, d <= 3000 else { throw .badValue(key: k, value: v, why: "must be >0...3000 A") }
                car.maxCurrent = Amps(d)
            case "plug-at":
                let d = try number(.time)
                guard d >= 0, let at = TimeSpan.checkedSeconds(d) else { throw .badValue(key: k, value: v, why: "must be 0 s to 100 years") }
                car.plugAt = at
            case "v2g-min-soc":
                let d = try percent()
                guard d >= 5, d < 100 else { throw .badValue(key: k, value: v, why: "must be 5...<100 %") }
                car.v2g = car.v2g ?? V2GOffer(); car.v2g!.minSoc = d
            case "v2g-max-current":
                let d = try number(.current)
                guard d > 0, d <= 1000 else { throw .badValue(key: k, value: v, why: "must be >0...1000 A") }
                car.v2g = car.v2g ?? V2GOffer(); car.v2g!.maxCurrent = Amps(d)
            case "v2g-max-power":
                let d = try number(.power)
                guard d >= 1000, d <= 1_000_000 else { throw .badValue(key: k, value: v, why: "must be 1...1000 kW") }
                car.v2g = car.v2g ?? V2GOffer(); car.v2g!.maxPower = Watts(d)
            case "resistance":
                let d = try number(.resistance)
                guard d >= 0.001, d <= 10 else { throw .badValue(key: k, value: v, why: "must be 1 mΩ...10 Ω (the whole battery's)") }
                car.resistance = Ohms(d)
            case "vin":
                if v.lowercased() == "none" { car.vin = nil; break }
                guard v.utf8.count == 17, v.utf8.allSatisfy(BRM.isVINByte) else {
                    throw .badValue(key: k, value: v, why: "must be 17 characters 0-9 and A-Z without I, O and Q (ISO 3779), or none")
                }
                car.vin = v
            default: throw .unknownKey(k)
            }
        }
        guard car.target > car.soc else { throw .badValue(key: "target", value: "\(car.target)", why: "must be above soc (\(car.soc))") }
        return car
    }
}

extension String {
    var trimmingSpaces: String {
        var s = Substring(self)
        while s.first == " " { s.removeFirst() }
        while s.last == " " { s.removeLast() }
        return String(s)
    }
}

/// Where the plug is (GB/T 18487.1 Annex B, detection point 1 as the charger sees it).
public enum PlugState: Sendable, Equatable {
    case holstered, latchPressed, insertedLatchPressed, connected, removing
}

/// The simulated car and its BMS on one gun.
public struct SimCar: Sendable {
    public var profile: CarProfile
    public var soc: Double
    public var plug: PlugState = .holstered
    public var plugSince: Instant = .zero
    public var contactorsClosed = false
    /// BMS has auxiliary power (K3/K4).
    public var powered = false
    public var silent = false
    public var pauseRequested = false
    public var ownFault = false
    public var stopSent = false
    public var bstReasons = BST.Reasons()
    var lastSent = InlineArray<10, Instant>(repeating: .never)
    var sawCRO = false, sawCML = false, sawCRMRecognised = false, sawCHM = false, sawCST = false, sawCSD = false
    var readySince: Instant? = nil
    var lowCurrentSince: Instant? = nil
    public var unplugRequested = false
    public var done = false
    /// V2G: when the driver (or the car) withdrew the discharge offer, if they did.
    public var v2gWithdrawnAt: Instant? = nil
    public init(profile: CarProfile) { self.profile = profile; soc = profile.soc }

    public var ocv: Volts { Volts(Double(profile.cells) * (3.4 + 0.7 * soc / 100)) }

    /// CC1 voltage at detection point 1 for the plug state (R1 = R2 = R4 = 1 kΩ, U1 = 12 V).
    public var cc1: Volts {
        switch plug {
        case .holstered: Volts(6)
        case .latchPressed: Volts(12)
        case .insertedLatchPressed: Volts(6)
        case .connected: Volts(4)
        case .removing: Volts(6)
        }
    }

    /// Current the BMS asks for: CC at its maximum, tapering above 50 % SOC.
    public var currentDemand: Amps {
        let taper = soc < 50 ? 1.0 : max(0.3, 1.0 - (soc - 50) * 0.014)
        return profile.maxCurrent * taper
    }

    /// Moves the plug: latch pressed 0.3 s, inserted 0.3 s, connected; after the session, out.
    /// `locked`: the gun's lock holds it in the inlet (a driver who wants to leave waits for it to open).
    mutating func movePlug(now: Instant, locked: Bool = false) {
        let since = now - plugSince
        switch plug {
        case .holstered:
            if !done && now >= Instant.zero + profile.plugAt { plug = .latchPressed; plugSince = now }
        case .latchPressed:
            if since >= .ms(300) { plug = done ? .holstered : .insertedLatchPressed; plugSince = now }
        case .insertedLatchPressed:
            if since >= .ms(300) { plug = .connected; plugSince = now }
        case .connected:
            if unplugRequested && !locked { plug = .removing; plugSince = now }
        case .removing:
            if since >= .ms(300) { plug = .latchPressed; plugSince = now; done = true }
        }
    }

    private mutating func due(_ k: Int, _ period: TimeSpan, _ now: Instant) -> Bool {
        if now - lastSent[k] >= period { lastSent[k] = now; return true }
        return false
    }

    /// One BMS cycle: read the charger's broadcast, decide, send what is due into `rx` (the charger's view).
    mutating func bms(now: Instant, tx: ChargerMessages, terminal: Volts, current: Amps, rx: inout VehicleMessages) {
        guard powered else {
            self = SimCar(resetting: self)
            return
        }
        if tx.chm { sawCHM = true }
        if tx.crm == .recognised { sawCRMRecognised = true }
        if tx.cml != nil { sawCML = true }
        if tx.cro == true { sawCRO = true }
        if tx.cst != nil { sawCST = true }
        if tx.csd != nil { sawCSD = true }
        if tx.crm == .notRecognised && !sawCML { sawCRO = false }

        // The car closes its contactors once parameters are exchanged and opens them when the current
        // is down after a stop.
        if sawCML && !stopSent && !sawCST && readySince == nil { readySince = now }
        if let r = readySince, now - r >= .ms(200), !stopSent, !sawCST { contactorsClosed = true }
        let stopping = stopSent || sawCST
        if stopping && contactorsClosed {
            if current.magnitude <= Amps(5) {
                let s = lowCurrentSince ?? now
                lowCurrentSince = s
                if now - s >= .ms(100) { contactorsClosed = false }
            } else { lowCurrentSince = nil }
        }
        if sawCRO && !stopSent && (soc >= profile.target || ownFault) {
            stopSent = true
            bstReasons = ownFault ? .batteryFault : .socTargetReached
        }
        if sawCST && !stopSent { stopSent = true; bstReasons = .chargerStopped }

        if silent { return }
        if sawCHM && !sawCRMRecognised && tx.crm == nil && due(0, Standard.periodBHM, now) {
            rx.bhm = Stamped(BHM(maxAllowedVoltage: profile.maxVoltage), at: now)
        }
        if tx.crm == .notRecognised && due(1, Standard.periodBRM, now) {
            var vin = InlineArray<17, UInt8>(repeating: 0)   // the short BRM: no VIN
            if let v = profile.vin { for (i, c) in v.utf8.enumerated() where i < 17 { vin[i] = c } }
            rx.brm = Stamped(BRM(batteryType: .nmc, ratedCapacityAh: profile.capacity.value / profile.nominalVoltage.value,
                                 ratedVoltage: profile.nominalVoltage, vin: vin), at: now)
        }
        if sawCRMRecognised && !sawCRO && !stopping && due(2, Standard.periodBCP, now) {
            rx.bcp = Stamped(BCP(maxCellVoltage: Volts(4.2), maxChargeCurrent: profile.maxCurrent, nominalEnergy: profile.capacity,
                                 maxChargeVoltage: min(profile.maxVoltage, profile.cvVoltage + Volts(5)),
                                 maxTemperature: Celsius(55), soc: soc, batteryVoltage: ocv + profile.reportedVoltageOffset), at: now)
        }
        if sawCML && !sawCRO && !stopping && due(3, Standard.periodBRO, now) {
            rx.bro = Stamped(BRO(ready: contactorsClosed), at: now)
        }
        if sawCRO && !stopping {
            if due(4, Standard.periodBCL, now) {
                rx.bcl = Stamped(BCL(voltageDemand: profile.cvVoltage, currentDemand: currentDemand,
                                     mode: terminal >= profile.cvVoltage - Volts(1) ? .constantVoltage : .constantCurrent), at: now)
            }
            if due(5, Standard.periodBCS, now) {
                rx.bcs = Stamped(BCS(measuredVoltage: terminal, measuredCurrent: current, soc: soc, remainingMinutes: 0), at: now)
            }
            if due(6, Standard.periodBSM, now) {
                rx.bsm = Stamped(BSM(chargingAllowed: !pauseRequested, maxCellTemperature: Celsius(35), faultFlags: 0), at: now)
            }
            if let offer = profile.v2g, due(9, Standard.periodBDP, now) {
                rx.bdp = Stamped(BDP(allowed: v2gWithdrawnAt == nil, minSoc: offer.minSoc, maxDischargeCurrent: offer.maxCurrent,
                                     maxDischargePower: offer.maxPower), at: now)
            }
        }
        if stopSent && !sawCSD && due(7, Standard.periodBST, now) {
            rx.bst = Stamped(BST(reasons: bstReasons), at: now)
        }
        if sawCSD && due(8, Standard.periodBSD, now) {
            rx.bsd = Stamped(BSD(finalSoc: soc, minCellVoltage: Volts(3.9), maxCellVoltage: Volts(4.1)), at: now)
        }
    }

    /// BMS power loss resets the protocol state, not the battery or the plug.
    init(resetting c: SimCar) {
        self = SimCar(profile: c.profile)
        soc = c.soc; plug = c.plug; plugSince = c.plugSince; silent = c.silent; done = c.done
        unplugRequested = c.unplugRequested; ownFault = c.ownFault; pauseRequested = c.pauseRequested
        v2gWithdrawnAt = c.v2gWithdrawnAt
        contactorsClosed = false
    }
}
