// Plug and charge in a scenario (issue 37): `[authorization]` makes every car's VIN decide its session, as
// chargerd's OCPP client does (Grid's VINDecision): the station is offline and its local authorization
// list holds the VINs the scenario names, or the central system is "silent" (online, the Authorize never
// answered: the core's 4 s bound ends the wait). Fed to the run every 100 ms of virtual time, as chargerd
// feeds the grid's word.
import ChargerCore
import ChargerRuntime
import Grid
import TOMLKit

public struct ScenarioAuthorization: Sendable {
    public enum CentralSystem: String, Sendable { case offline, silent }
    public var local = LocalAuthorization()
    public var centralSystem = CentralSystem.offline
    /// A refused VIN falls back to an idTag: the gun waits in `connected` (none comes in a scenario).
    public var fallback = false
    /// Per gun: the word given for the car plugged now (nil: not yet).
    var decided: [VINCheck?]

    init(guns: Int) { decided = Array(repeating: nil, count: guns) }

    /// The word for each gun into the feed, deciding for a car whose VIN arrived in this recognition.
    mutating func apply(_ feed: inout GridFeed, sim: Simulation) {
        for g in 0..<decided.count {
            let phase = sim.phase(g)
            if phase == .unplugged { decided[g] = nil }
            if decided[g] == nil, phase == .identification, let brm = sim.inputs.guns[g].vehicle.brm,
               brm.at >= sim.state.sessions[g].phaseSince {
                let online = centralSystem == .silent
                switch VINDecision.decide(
                    VINReading(brm.message.vin), local: local, atMillis: 0, online: online,
                    settings: OCPPSettings(heartbeatInterval: 300, meterValueSampleInterval: 60, connectionTimeOut: 60))
                {
                case .accept: decided[g] = .accepted
                case .refuse: decided[g] = fallback ? .refusedFallBack : .refused
                case .ask: decided[g] = fallback ? .pendingFallBack : .pending       // the central system never answers
                }
            }
            // The core's bound ended the wait: with a fallback, the gun waits for another method (as
            // chargerd's OCPP client records it when recognition ends unanswered).
            if decided[g] == .pendingFallBack, phase != .identification, sim.state.sessions[g].stopReason == .notAuthorized {
                decided[g] = .refusedFallBack
            }
            feed.vinChecks[g] = decided[g] ?? (fallback ? .pendingFallBack : .pending)
            if decided[g] == .refusedFallBack { feed.authorized[g] = false }
        }
    }
}

extension ScenarioReader {
    /// `[authorization]`: `local_list` (VINs accepted offline), `blocked` (VINs in the list as Blocked),
    /// `central_system` ("offline", the default, or "silent"), `fallback` (default false).
    func authorization(_ root: TOMLTable) throws(ScenarioError) -> ScenarioAuthorization? {
        guard let node = root["authorization"] else { return nil }
        guard let t = node.table else { throw err("authorization", "expected a table") }
        for k in t.keys where !["local_list", "blocked", "central_system", "fallback"].contains(k) {
            throw err("authorization.\(k)", "unknown key (known: local_list, blocked, central_system, fallback)")
        }
        var a = ScenarioAuthorization(guns: spec.gunCount)
        var entries: [AuthorizationData] = []
        for (key, status) in [("local_list", AuthorizationStatus.Accepted), ("blocked", .Blocked)] {
            guard let v = t[key] else { continue }
            guard let arr = v.array else { throw err("authorization.\(key)", "expected a list of VINs") }
            for (i, x) in arr.enumerated() {
                guard let s = x.string, let vin = VINReading.parse(s) else {
                    throw err("authorization.\(key)[\(i)]", "must be a VIN: 17 characters 0-9 and A-Z without I, O and Q")
                }
                entries.append(AuthorizationData(idTag: VINIdentity.idTag(vin), idTagInfo: IdTagInfo(status: status)))
            }
        }
        if !entries.isEmpty {
            let (status, why) = a.local.apply(SendLocalListReq(listVersion: 1, localAuthorizationList: entries, updateType: .Full))
            guard status == .Accepted else { throw err("authorization", "the local list was refused: \(why)") }
        }
        if let c = t["central_system"] {
            guard let s = c.string, let cs = ScenarioAuthorization.CentralSystem(rawValue: s) else {
                throw err("authorization.central_system", "must be \"offline\" or \"silent\"")
            }
            a.centralSystem = cs
        }
        if let f = t["fallback"] {
            guard let b = f.bool else { throw err("authorization.fallback", "must be true or false") }
            a.fallback = b
        }
        return a
    }
}
