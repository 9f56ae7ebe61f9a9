// What the people and systems around the control loop ask of it, and the one rule by which that becomes
// the step's inputs. Every loop uses it: the simulation (virtual time), the real-time simulation, and
// the hardware loop (bench and real boards). Before, each loop merged these by its own copy, with two
// rules for clearing a stop request (issue 15).
import ChargerCore

/// Inputs a technician sets from the console and that hold until changed.
public struct HeldOperatorInputs: Sendable, BitwiseCopyable {
    public var cap: Watts? = nil
    public var outOfService = false
    public var test: ActuatorTest = .none
    public init() {}
}

/// The requests held between cycles: the operator's hand setpoints and per-gun holds, one-cycle resets and
/// stops, the grid interfaces' composite feed (EMS, OCPP, time of use) and a loop overrun to report.
/// Plain values, no allocation: the loop owns one and merges it in place every cycle.
public struct LoopRequests: Sendable, BitwiseCopyable {
    /// Setpoints given by hand (console, HIL injection, bench action); the grid's composite binds beside them.
    public var stationSetpoint: Watts? = nil
    public var gunSetpoints = GunArray<Watts?>(repeating: nil)
    public var held = GunArray<HeldOperatorInputs>(repeating: HeldOperatorInputs())
    /// One-cycle requests: the step sees each once (the session acts on a stop in whatever phase it is).
    public var reset = GunArray<Bool>(repeating: false)
    public var stop = GunArray<Bool>(repeating: false)
    public var loopOverrun = false
    /// The grid's composite as last fed.
    public private(set) var grid = GridFeed()
    private var lastStopCount = GunArray<UInt32>(repeating: 0)
    public init() {}

    /// An operator's command (console, bench, HIL), effective from the next merge.
    public mutating func apply(_ c: OperatorCommand) {
        switch c {
        case .reset(let g): reset[Int(g)] = true
        case .stop(let g): stop[Int(g)] = true
        case .stationSetpoint(let p): stationSetpoint = p
        case .gunSetpoint(let g, let p): gunSetpoints[Int(g)] = p
        case .operatorCap(let g, let p): held[Int(g)].cap = p
        case .outOfService(let g, let o): held[Int(g)].outOfService = o
        case .actuatorTest(let g, let t): held[Int(g)].test = t
        }
    }

    /// A new composite from the grid interfaces: a bumped remote-stop count is a stop request.
    public mutating func feed(_ f: borrowing GridFeed, gunCount: Int) {
        for g in 0..<gunCount where f.stopCount[g] != lastStopCount[g] {
            lastStopCount[g] = f.stopCount[g]
            stop[g] = true
        }
        grid = copy f
    }

    /// Writes the requests into this cycle's inputs and consumes the one-cycle ones. A setpoint by hand
    /// and the grid's composite: the lower binds, and the source reported is the one that binds.
    @_noAllocation @_noLocks
    public mutating func merge(into i: inout StationInputs, gunCount: Int) {
        i.loopOverrun = loopOverrun
        loopOverrun = false
        i.stationSetpoint = lower(stationSetpoint, grid.station)
        for g in 0..<gunCount {
            let manual = gunSetpoints[g], composite = grid.guns[g]
            i.guns[g].gridSetpoint = lower(manual, composite)
            i.guns[g].gridCurrentLimit = grid.gunCurrents[g]
            if let m = manual, composite.map({ m <= $0 }) ?? true { i.guns[g].gridSource = .manual }
            else { i.guns[g].gridSource = grid.gunSources[g] }
            i.guns[g].authorized = grid.authorized[g]
            i.guns[g].vinCheck = grid.vinChecks[g]
            i.guns[g].resetRequest = reset[g]
            i.guns[g].stopRequest = stop[g]
            i.guns[g].operatorCap = held[g].cap
            i.guns[g].outOfService = held[g].outOfService || grid.unavailable[g]
            i.guns[g].actuatorTest = held[g].test
            reset[g] = false
            stop[g] = false
        }
    }
}

/// The lower of two optional limits (nil: none).
@inline(__always) func lower(_ a: Watts?, _ b: Watts?) -> Watts? {
    guard let a else { return b }
    guard let b else { return a }
    return a < b ? a : b
}
