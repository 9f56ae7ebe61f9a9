// The station EMS's view of the charger: setpoints it writes, a heartbeat it must refresh, and the
// fail-safe that applies when it goes quiet (standards.md "Orderly charging and grid setpoints",
// EEBus LPC pattern: the fail-safe limit for at least its minimum duration, then the default).
import ChargerCore

/// Site settings of the EMS link (`[ems]` in the site file; the EMS may rewrite all but the address).
public struct EMSSettings: Sendable, Equatable {
    /// The EMS must write a new heartbeat value at least this often.
    public var heartbeatTimeout: TimeSpan = .s(60)
    /// Station limit while the heartbeat is lost.
    public var failsafeLimit = Watts.kW(0)
    /// The fail-safe holds at least this long, even if the heartbeat comes back sooner.
    public var failsafeMinimum: TimeSpan = .s(2 * 3600)
    public init() {}
}

/// Where the EMS link stands.
public enum EMSMode: UInt16, Sendable {
    /// Started, no heartbeat yet (the fail-safe follows if none comes within the timeout).
    case waiting = 0
    /// Heartbeat fresh: the EMS's setpoints apply.
    case valid = 1
    /// Heartbeat lost: the fail-safe limit applies.
    case failsafe = 2
    /// The fail-safe's minimum passed without a heartbeat: the default (no EMS limit) applies.
    case released = 3
    public var name: String {
        switch self { case .waiting: "waiting for the first heartbeat"; case .valid: "valid"; case .failsafe: "fail-safe"; case .released: "default (fail-safe over, EMS silent)" }
    }
}

/// A change of the EMS link's mode, for the journal and the console.
public struct EMSEvent: Sendable, Equatable {
    public var at: Instant
    public var mode: EMSMode
    public var text: String
}

/// Everything the EMS has written and the heartbeat's state machine. A plain value: the Modbus server
/// mutates it under a lock, the dispatcher reads copies.
public struct EMSState: Sendable, Equatable {
    public var settings: EMSSettings
    public var stationSetpoint: Watts? = nil
    public var gunSetpoints: [Watts?]
    public var tou: TimeOfUse
    public private(set) var mode: EMSMode = .waiting
    /// When the current mode began.
    public private(set) var modeSince: Instant
    public private(set) var lastBeatAt: Instant? = nil
    public private(set) var lastBeatValue: UInt16? = nil
    public private(set) var beats: UInt64 = 0

    public init(settings: EMSSettings, gunCount: Int, tou: TimeOfUse, startedAt: Instant = .zero) {
        self.settings = settings
        gunSetpoints = Array(repeating: nil, count: gunCount)
        self.tou = tou
        modeSince = startedAt
    }

    /// A write of the heartbeat register: counts when its value differs from the last one (an EMS that
    /// is stuck rewriting one value is not alive).
    public mutating func heartbeat(_ value: UInt16, at now: Instant) {
        if lastBeatValue != value {
            lastBeatValue = value
            lastBeatAt = now
            beats += 1
        }
    }

    /// Moves the state machine to `now`; returns the transitions made (in order).
    public mutating func advance(to now: Instant) -> [EMSEvent] {
        var events: [EMSEvent] = []
        let fresh = lastBeatAt.map { now - $0 <= settings.heartbeatTimeout } ?? false
        switch mode {
        case .waiting, .valid, .released:
            if fresh {
                if mode != .valid {
                    mode = .valid; modeSince = lastBeatAt ?? now
                    events.append(EMSEvent(at: now, mode: .valid, text: "EMS heartbeat received: its setpoints apply"))
                }
            } else if mode != .released {
                // The moment the heartbeat lapsed (the timeout after the last beat, or after the start).
                let lapsedAt = (lastBeatAt ?? modeSince) + settings.heartbeatTimeout
                guard now >= lapsedAt else { break }
                mode = .failsafe; modeSince = lapsedAt
                events.append(EMSEvent(at: lapsedAt, mode: .failsafe,
                    text: "EMS heartbeat \(lastBeatAt == nil ? "never came" : "lost") (timeout \(fmtSeconds(settings.heartbeatTimeout))): fail-safe \(fmtKW(settings.failsafeLimit)) for at least \(fmtSeconds(settings.failsafeMinimum))"))
            }
        case .failsafe:
            guard now - modeSince >= settings.failsafeMinimum else { break }
            // A heartbeat counts only if it came during the fail-safe and is fresh.
            if fresh, let b = lastBeatAt, b >= modeSince {
                mode = .valid; modeSince = now
                events.append(EMSEvent(at: now, mode: .valid, text: "fail-safe over after \(fmtSeconds(settings.failsafeMinimum)), EMS heartbeat back: its setpoints apply"))
            } else {
                mode = .released; modeSince = modeSince + settings.failsafeMinimum
                events.append(EMSEvent(at: modeSince, mode: .released, text: "fail-safe over after \(fmtSeconds(settings.failsafeMinimum)), EMS still silent: default limits"))
            }
        }
        return events
    }

    /// The station limit the EMS imposes now (after `advance`), with its source.
    public var stationLimit: (Watts, GridSource)? {
        switch mode {
        case .valid: stationSetpoint.map { ($0, .ems) }
        case .failsafe: (settings.failsafeLimit, .emsFailsafe)
        case .waiting, .released: nil
        }
    }

    /// The station limit expected at a later instant `t` as things stand (GetCompositeSchedule): a
    /// fail-safe ends at its minimum, into the EMS's setpoint if its heartbeat is fresh now, else the default.
    public func projectedStationLimit(at t: Instant, now: Instant) -> (Watts, GridSource)? {
        guard mode == .failsafe, t >= modeSince + settings.failsafeMinimum else { return stationLimit }
        let fresh = lastBeatAt.map { $0 >= modeSince && now - $0 <= settings.heartbeatTimeout } ?? false
        return fresh ? stationSetpoint.map { ($0, .ems) } : nil
    }

    /// A gun's limit from the EMS now (only while the link is valid).
    public func gunLimit(_ g: Int) -> Watts? {
        mode == .valid && g < gunSetpoints.count ? gunSetpoints[g] : nil
    }

    /// Seconds of fail-safe left (0 outside it).
    public func failsafeRemaining(at now: Instant) -> TimeSpan {
        mode == .failsafe ? max(.zero, settings.failsafeMinimum - (now - modeSince)) : .zero
    }
}

func fmtSeconds(_ d: TimeSpan) -> String {
    let s = Int(d.seconds.rounded())
    return s % 60 == 0 && s >= 60 ? "\(s / 60) min" : "\(s) s"
}

// The EMS's domain on the hub: what it reads and what a write does, pure of the Modbus transport
// (GridInterfaces' EMSServer only carries the bytes).
extension GridHub {
    /// The holding or input image the EMS reads now.
    public func emsImages(input: Bool) -> (EMSState?, [UInt16]) {
        let s = state, o = observation, f = lastFeed
        if input {
            let kind = s.tou.kind(atSecondOfDay: s.clock.localSecondOfDay(o.at))
            return (
                s.ems, EMSRegisterMap.inputImage(ems: s.ems, touKind: kind, stationLimit: f.station, stationSource: f.stationSource, observation: o)
            )
        }
        return (s.ems, s.ems.map { EMSRegisterMap.holdingImage($0) } ?? [])
    }

    /// Checks and applies one EMS write, atomically (all or nothing).
    public func emsWrite(address: Int, values: [UInt16]) -> Result<[String], EMSRefusal> {
        let now = observation.at
        return with { s in
            guard let ems = s.ems else { return .failure(EMSRefusal(code: .illegalFunction, why: "no EMS configured")) }
            do {
                let (next, changes) = try EMSRegisterMap.write(
                    ems, address: address, values: values, gridConnection: s.gridConnection, ratings: s.ratings, now: now)
                s.ems = next
                return .success(changes)
            } catch let e as EMSRefusal { return .failure(e) } catch { return .failure(EMSRefusal(code: .illegalDataValue, why: "\(error)")) }
        }
    }
}
