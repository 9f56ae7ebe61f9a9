// What the control loop and the rest of the process say to each other, by value. The loop (virtual time,
// real-time simulation, or a board) writes events and the station's view; the console, the grid
// interfaces and the journal read them and send operator commands back. No dependency on the plant or
// the runtime: Console and GridInterfaces import this, not the simulator.
import ChargerCore
import Foundation

/// What the loop tells the rest of the process, by value, through an SPSC queue.
public enum LoopEvent: Sendable, BitwiseCopyable {
    /// A fault latched (or an existing record cleared), as logged by the core.
    case fault(FaultRecord)
    /// A gun's session changed phase.
    case phase(gun: Int8, SessionPhase, at: Instant)
    /// The loop missed `misses` deadlines in a row (beyond the board's limit): outputs forced safe.
    case overrun(misses: Int32, at: Instant)
    /// A gun's figures, once per status interval.
    case status(GunStatus)
    /// A session began or ended (for the journal).
    case session(SessionEdge)
    /// A gun went out of service (`out`) or came back, whoever asked (console, central system): the
    /// journal's service report keeps that time apart from availability.
    case service(gun: Int8, out: Bool, at: Instant)
}

/// Operator requests into the loop (console, grid interface, signal handler).
public enum OperatorCommand: Sendable, BitwiseCopyable {
    case reset(gun: Int8)
    case stop(gun: Int8)
    case stationSetpoint(Watts?)
    case gunSetpoint(gun: Int8, Watts?)
    /// A technician's temporary power cap on a gun (nil lifts it).
    case operatorCap(gun: Int8, Watts?)
    /// Take a gun out of service (true) or back (false).
    case outOfService(gun: Int8, Bool)
    /// Hold an actuator test on an idle gun (`.none` ends it).
    case actuatorTest(gun: Int8, ActuatorTest)
}

/// A session's edges for the journal: begins when the plug is confirmed and the lock commanded, ends
/// at `finished`, `faulted`, or when the car is gone before either.
public struct SessionEdge: Sendable, BitwiseCopyable {
    public var gun: Int8
    public var started: Bool
    public var at: Instant
    public var meterEnergy: WattHours
    /// The car's SOC (BCS), NaN when unknown.
    public var soc: Double
    public var stopReason: StopReason
    /// V2G: the meter's export register.
    public var meterExportEnergy: WattHours
    /// At the end: the charger's own energy over the session and the meter's deviation from it as last
    /// judged ((meter − charger) / charger; NaN: not judged, below the minimum energy or the register
    /// misbehaved). ChargerCore's Metering.swift.
    public var chargerEnergy: WattHours = .zero
    public var meteringDeviation: Double = .nan
    public init(gun: Int8, started: Bool, at: Instant, meterEnergy: WattHours, soc: Double, stopReason: StopReason,
                meterExportEnergy: WattHours = .zero) {
        self.gun = gun; self.started = started; self.at = at; self.meterEnergy = meterEnergy; self.soc = soc; self.stopReason = stopReason
        self.meterExportEnergy = meterExportEnergy
    }
}

/// One gun's figures at one instant (the status line's data).
public struct GunStatus: Sendable, BitwiseCopyable {
    public var gun: Int8
    public var at: Instant
    public var phase: SessionPhase
    public var voltage: Volts
    public var current: Amps
    public var powerLimit: Watts
    public var binding: LimitSource
    /// NaN when no car.
    public var soc: Double
    public var gunTemperature: Celsius
    public var faults: FaultSet
    public init(gun: Int8, at: Instant, phase: SessionPhase, voltage: Volts, current: Amps, powerLimit: Watts,
                binding: LimitSource, soc: Double, gunTemperature: Celsius, faults: FaultSet) {
        self.gun = gun; self.at = at; self.phase = phase; self.voltage = voltage; self.current = current
        self.powerLimit = powerLimit; self.binding = binding; self.soc = soc; self.gunTemperature = gunTemperature; self.faults = faults
    }
}

extension GunStatus {
    /// "[  60.0 s] gun0 charging  406.8 V  147.5 A   60.0 kW  limit 60.0 kW (gun-rating)  SOC 21.4%  gun 25.3 °C"
    public var line: String {
        let p = voltage * current
        let socText = soc.isNaN ? "-" : fmt(soc, 1) + "%"
        var s = "[\(fmt(at.seconds, 1).leftPad(8)) s] gun\(gun) \(phase.name.rightPad(18)) \(fmt(voltage.value, 1).leftPad(6)) V \(fmt(current.value, 1).leftPad(6)) A \(fmt(p.kilowatts, 1).leftPad(6)) kW"
        s += "  limit \(fmt(powerLimit.kilowatts, 1).leftPad(6)) kW (\(binding.name))  SOC \(socText)  gun \(fmt(gunTemperature.value, 1)) °C"
        if !faults.isEmpty { s += "  FAULT " + faults.codes.map(\.name).joined(separator: ",") }
        return s
    }
}

/// Fixed-point formatting for reports ("%.*f").
public func fmt(_ v: Double, _ places: Int) -> String {
    guard v.isFinite else { return v > 0 ? "inf" : (v < 0 ? "-inf" : "nan") }
    return String(format: "%.\(places)f", v)
}

extension String {
    public func leftPad(_ n: Int) -> String { count >= n ? self : String(repeating: " ", count: n - count) + self }
    public func rightPad(_ n: Int) -> String { count >= n ? self : self + String(repeating: " ", count: n - count) }
}
