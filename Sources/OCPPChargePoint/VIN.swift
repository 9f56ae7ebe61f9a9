// Plug and charge by the car's VIN (即插即充; docs/grid.md "Authorization by VIN"). With `vin` in the site's
// `authorize`, a car plugged without an idTag is let through to the handshake; the core holds recognition
// (CRM 0x00) until this client's word on the VIN the car sent in BRM, at most 4 s (Standard.vinAnswerWait).
// The VIN travels as the idTag "VIN" + its 17 characters (CiString20): the local list and the cache know it
// as any idTag, an Authorize.req asks the central system, and offline the idTag rules apply. A refused,
// unknown, malformed or absent VIN stops before any energy; where the site lists a method after `vin`, the
// gun then waits for it (an idTag presented, a remote start).
import ChargerCore
import Grid
import LoopContract
import SiteFile

/// Where plug and charge stands for the car on one gun.
enum VINStage: Equatable {
    case none
    /// Waiting for the car's VIN (the handshake runs).
    case waiting
    /// Authorize.req sent for this idTag; the answer decides.
    case asked(String)
    /// Recognition ended while the answer was awaited: why is read from the next observation.
    case ended(String)
    /// Decided (accepted, refused); the answer for this car is given.
    case decided
}

extension ChargePoint {
    /// An idTag as the journal shows it: a VIN's masked unless the site allows the whole.
    func shown(_ tag: String) -> String {
        guard tag.hasPrefix(VINIdentity.prefix), tag.utf8.count == 20 else { return tag }
        return VINIdentity.prefix + VINIdentity.shown(String(tag.dropFirst(VINIdentity.prefix.count)), whole: config.showVIN)
    }

    /// A car plugged with no authorization in force: the site's first usable method starts. An idTag
    /// presented goes first unless `vin` comes before `idtag`; with `vin` listed the session goes on to the
    /// handshake and the VIN decides.
    mutating func carPlugged(_ g: Int) {
        let order = config.authorize
        let tag = order.contains(.idtag) ? presentedTags[g] : nil
        let vinAt = order.firstIndex(of: .vin)
        if let vinAt, tag == nil || vinAt < (order.firstIndex(of: .idtag) ?? order.count) {
            startVIN(g)
        } else if let tag {
            authorizeAtPlug(tag, g)
        }
    }

    mutating func startVIN(_ g: Int) {
        vinStage[g] = .waiting
        idTag[g] = nil
        let check: VINCheck = fallBackMethods.isEmpty ? .pending : .pendingFallBack
        grid.authorized[g] = true; grid.vinChecks[g] = check; grid.identities[g] = nil
        log("ocpp", "connector \(g + 1): plug and charge: the car's VIN will decide (BRM)")
    }

    /// Each observation: a VIN the car sent while its word is awaited is decided (VINDecision: the local
    /// list and the cache as for an idTag at the plug, LocalPreAuthorize online, LocalAuthorizeOffline and
    /// AllowOfflineTxForUnknownId offline; otherwise the central system is asked).
    mutating func vinObserved() {
        for g in 0..<min(gunCount, observation.guns.count) {
            if case .ended(let tag) = vinStage[g], observation.guns[g].phase != .identification { vinEnded(g, tag, observation.guns[g].stopReason) }
        }
        for g in 0..<min(gunCount, observation.guns.count) where vinStage[g] == .waiting {
            guard let reading = observation.guns[g].vin else { continue }
            switch VINDecision.decide(reading, local: localAuth, atMillis: stationMillis, online: online, settings: settings) {
            case .accept(let tag, let why): vinAccepted(g, tag, why: why)
            case .refuse(let tag, let why):
                let identity = tag.map(shown) ?? (reading == .absent ? "none" : "malformed")
                vinRefused(g, identity: identity, why: why)
            case .ask(let tag):
                vinStage[g] = .asked(tag)
                idTag[g] = tag
                authorizeQueue.append((tag, g))
                log("ocpp", "connector \(g + 1): VIN \(shown(tag)) sent to the central system (Authorize)")
            }
        }
    }

    /// The central system's answer to the VIN's Authorize.
    mutating func vinAnswered(_ g: Int, tag: String, _ info: IdTagInfo) {
        guard phase[g] == .identification else {
            vinStage[g] = .decided
            log("ocpp", "connector \(g + 1): the answer for VIN \(shown(tag)) (\(info.status.rawValue)) came after the car's wait: the session had stopped")
            return
        }
        if info.status == .Accepted, reservations.on(gun: g) == nil || reservations.admits(tag, parent: info.parentIdTag, gun: g) {
            vinAccepted(g, tag, why: "the central system")
        } else if info.status == .Accepted {
            vinRefused(g, identity: shown(tag), why: "accepted, but the connector is reserved for another idTag")
        } else {
            vinRefused(g, identity: shown(tag), why: "\(info.status.rawValue) by the central system")
        }
    }

    mutating func vinAccepted(_ g: Int, _ tag: String, why: String) {
        vinStage[g] = .decided
        idTag[g] = tag
        let who = SessionIdentity(method: .vin, identity: shown(tag))
        grid.vinChecks[g] = .accepted; grid.identities[g] = who
        authorization(AuthorizationRecord(gun: g, method: .vin, identity: who.identity, verdict: "accepted", why: why),
                          text: "connector \(g + 1): VIN \(who.identity) accepted by \(why): charging may start")
    }

    /// The methods after `vin` in the site's list: the fallback when the VIN is refused or not answered.
    var fallBackMethods: [AuthorizationMethod] {
        let order = config.authorize
        return order.firstIndex(of: .vin).map { Array(order[($0 + 1)...]) } ?? []
    }

    /// Refused: the session stops before energy; a method after `vin` in the site's list is the fallback.
    mutating func vinRefused(_ g: Int, identity: String, why: String) {
        vinStage[g] = .decided
        idTag[g] = nil
        let after = fallBackMethods
        let fallBack = !after.isEmpty
        grid.vinChecks[g] = fallBack ? .refusedFallBack : .refused
        grid.identities[g] = nil
        if fallBack { grid.authorized[g] = false }
        let then = fallBack ? "no energy; the gun waits for \(after.map(\.rawValue).joined(separator: " or "))" : "no energy; the session ends"
        authorization(AuthorizationRecord(gun: g, method: .vin, identity: identity, verdict: fallBack ? "refused-fallback" : "refused", why: why),
                          text: "connector \(g + 1): VIN \(identity) refused: \(why): \(then)")
    }

    /// Recognition ended before the central system answered: the core's 4 s bound (stop reason
    /// not-authorized: journalled as a refusal) or another stop (an operator's, a fault: logged).
    mutating func vinEnded(_ g: Int, _ tag: String, _ why: StopReason) {
        vinStage[g] = .decided
        let after = fallBackMethods
        let fallBack = why == .notAuthorized && !after.isEmpty
        grid.vinChecks[g] = fallBack ? .refusedFallBack : .refused
        grid.identities[g] = nil
        if fallBack { grid.authorized[g] = false }
        guard why == .notAuthorized else {
            log("ocpp", "connector \(g + 1): the session stopped (\(why.name)) before the central system answered for VIN \(shown(tag))")
            return
        }
        let bound = Int(Standard.vinAnswerWait.seconds)
        let then = fallBack ? "no energy; the gun waits for \(after.map(\.rawValue).joined(separator: " or "))" : "no energy; the session ends"
        authorization(AuthorizationRecord(gun: g, method: .vin, identity: shown(tag), verdict: fallBack ? "refused-fallback" : "refused",
                                              why: "no answer within \(bound) s (the car's own wait is 5 s)"),
                          text: "connector \(g + 1): VIN \(shown(tag)) not answered within \(bound) s: \(then)")
    }

    /// The session's phases as they bear on the VIN: a wait the core ended (no answer within its bound),
    /// and the gun back in `connected` after a refusal with a fallback (an idTag presented is tried).
    mutating func vinPhaseChanged(_ g: Int, from before: SessionPhase, to p: SessionPhase) {
        if before == .identification && p != .parameterExchange, case .asked(let tag) = vinStage[g] {
            vinStage[g] = .ended(tag)
            idTag[g] = nil
        }
        if p == .connected && before == .unlocking && vinStage[g] == .decided {
            vinStage[g] = .none
            grid.vinChecks[g] = .notUsed
            if config.authorize.contains(.idtag), let tag = presentedTags[g] { authorizeAtPlug(tag, g) }
        }
    }
}
