// Physical quantities as types. Nothing crosses a layer as a bare Double.
// All operators are @inlinable so the compiler-checked control step can see their bodies.

/// A scalar physical quantity stored in SI base units.
public protocol Quantity: Comparable, Hashable, Sendable, CustomStringConvertible {
    var value: Double { get set }
    init(_ value: Double)
    static var symbol: String { get }
}

extension Quantity {
    @inlinable public static var zero: Self { Self(0) }
    @inlinable public static func + (a: Self, b: Self) -> Self { Self(a.value + b.value) }
    @inlinable public static func - (a: Self, b: Self) -> Self { Self(a.value - b.value) }
    @inlinable public static prefix func - (a: Self) -> Self { Self(-a.value) }
    @inlinable public static func * (a: Self, k: Double) -> Self { Self(a.value * k) }
    @inlinable public static func * (k: Double, a: Self) -> Self { Self(a.value * k) }
    @inlinable public static func / (a: Self, k: Double) -> Self { Self(a.value / k) }
    /// Dimensionless ratio of two like quantities.
    @inlinable public static func / (a: Self, b: Self) -> Double { a.value / b.value }
    @inlinable public static func += (a: inout Self, b: Self) { a.value += b.value }
    @inlinable public static func -= (a: inout Self, b: Self) { a.value -= b.value }
    @inlinable public static func < (a: Self, b: Self) -> Bool { a.value < b.value }
    @inlinable public var magnitude: Self { Self(value < 0 ? -value : value) }
    /// Clamp into [lo, hi].
    @inlinable public func clamped(_ lo: Self, _ hi: Self) -> Self { self < lo ? lo : (hi < self ? hi : self) }
    public var description: String { "\(value) \(Self.symbol)" }
}

public struct Volts: Quantity {
    public var value: Double
    @inlinable public init(_ value: Double) { self.value = value }
    public static let symbol = "V"
}

public struct Amps: Quantity {
    public var value: Double
    @inlinable public init(_ value: Double) { self.value = value }
    public static let symbol = "A"
}

public struct Watts: Quantity {
    public var value: Double
    @inlinable public init(_ value: Double) { self.value = value }
    @inlinable public static func kW(_ kw: Double) -> Watts { Watts(kw * 1000) }
    @inlinable public var kilowatts: Double { value / 1000 }
    public static let symbol = "W"
}

public struct Ohms: Quantity {
    public var value: Double
    @inlinable public init(_ value: Double) { self.value = value }
    @inlinable public static func kOhm(_ k: Double) -> Ohms { Ohms(k * 1000) }
    public static let symbol = "Ω"
}

/// Insulation resistance normalised by the test voltage, as GB/T 18487.1 states its thresholds.
public struct OhmsPerVolt: Quantity {
    public var value: Double
    @inlinable public init(_ value: Double) { self.value = value }
    public static let symbol = "Ω/V"
}

public struct Celsius: Quantity {
    public var value: Double
    @inlinable public init(_ value: Double) { self.value = value }
    public static let symbol = "°C"
}

public struct WattHours: Quantity {
    public var value: Double
    @inlinable public init(_ value: Double) { self.value = value }
    @inlinable public static func kWh(_ k: Double) -> WattHours { WattHours(k * 1000) }
    @inlinable public var kilowattHours: Double { value / 1000 }
    public static let symbol = "Wh"
}

/// A rate of change of current (ramps).
public struct AmpsPerSecond: Quantity {
    public var value: Double
    @inlinable public init(_ value: Double) { self.value = value }
    public static let symbol = "A/s"
}

// MARK: Dimensional arithmetic

@inlinable public func * (v: Volts, i: Amps) -> Watts { Watts(v.value * i.value) }
@inlinable public func * (i: Amps, v: Volts) -> Watts { Watts(v.value * i.value) }
@inlinable public func / (p: Watts, v: Volts) -> Amps { Amps(v.value > 0 ? p.value / v.value : 0) }
@inlinable public func / (v: Volts, i: Amps) -> Ohms { Ohms(v.value / i.value) }
@inlinable public func * (i: Amps, r: Ohms) -> Volts { Volts(i.value * r.value) }
@inlinable public func / (r: Ohms, v: Volts) -> OhmsPerVolt { OhmsPerVolt(v.value > 0 ? r.value / v.value : .infinity) }
@inlinable public func * (r: AmpsPerSecond, t: TimeSpan) -> Amps { Amps(r.value * t.seconds) }
@inlinable public func * (p: Watts, t: TimeSpan) -> WattHours { WattHours(p.value * t.seconds / 3600) }

// MARK: Time

/// A span of time in whole microseconds. Integer so that virtual time is exact and replayable.
public struct TimeSpan: Comparable, Hashable, Sendable, CustomStringConvertible {
    public var micros: Int64
    @inlinable public init(micros: Int64) { self.micros = micros }
    @inlinable public static func us(_ v: Int64) -> TimeSpan { TimeSpan(micros: v) }
    @inlinable public static func ms(_ v: Int64) -> TimeSpan { TimeSpan(micros: v * 1_000) }
    @inlinable public static func s(_ v: Int64) -> TimeSpan { TimeSpan(micros: v * 1_000_000) }
    @inlinable public static func seconds(_ v: Double) -> TimeSpan { TimeSpan(micros: Int64(v * 1e6)) }
    /// Seconds read from outside (a file, a command line): nil for NaN, infinities and anything beyond
    /// ±100 years, which `seconds(_:)` would trap on converting to whole microseconds; otherwise the same
    /// value as `seconds(_:)` (truncated; no libm call: the core links without it).
    @inlinable public static func checkedSeconds(_ v: Double) -> TimeSpan? {
        guard v.isFinite, v <= 3.2e9, v >= -3.2e9 else { return nil }
        return seconds(v)
    }
    @inlinable public static var zero: TimeSpan { TimeSpan(micros: 0) }
    @inlinable public var seconds: Double { Double(micros) / 1e6 }
    @inlinable public static func < (a: TimeSpan, b: TimeSpan) -> Bool { a.micros < b.micros }
    @inlinable public static func + (a: TimeSpan, b: TimeSpan) -> TimeSpan { TimeSpan(micros: a.micros &+ b.micros) }
    @inlinable public static func - (a: TimeSpan, b: TimeSpan) -> TimeSpan { TimeSpan(micros: a.micros &- b.micros) }
    @inlinable public static func * (a: TimeSpan, k: Int64) -> TimeSpan { TimeSpan(micros: a.micros &* k) }
    public var description: String { "\(seconds) s" }
}

/// A point on the controller's monotonic clock (microseconds since start). The control step
/// never reads a clock: the instant is one of its inputs.
public struct Instant: Comparable, Hashable, Sendable, CustomStringConvertible {
    public var micros: Int64
    @inlinable public init(micros: Int64) { self.micros = micros }
    @inlinable public static var zero: Instant { Instant(micros: 0) }
    /// A time before anything happened (e.g. "never received").
    @inlinable public static var never: Instant { Instant(micros: Int64.min / 2) }
    @inlinable public static func < (a: Instant, b: Instant) -> Bool { a.micros < b.micros }
    @inlinable public static func + (a: Instant, d: TimeSpan) -> Instant { Instant(micros: a.micros &+ d.micros) }
    @inlinable public static func - (a: Instant, b: Instant) -> TimeSpan { TimeSpan(micros: a.micros &- b.micros) }
    @inlinable public var seconds: Double { Double(micros) / 1e6 }
    public var description: String { "t=\(seconds) s" }
}
