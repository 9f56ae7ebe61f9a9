// The Local Authorization List, the Authorization Cache and the configuration keys, with plain values
// (OCPP 1.6 §3.5, §5.15, §9).
import ChargerCore
import Grid
import Testing

let t0: Int64 = Timestamp.parse("2026-11-28T10:00:00Z")!
func entry(_ tag: String, _ s: AuthorizationStatus?, expires: String? = nil) -> AuthorizationData {
    AuthorizationData(idTag: tag, idTagInfo: s.map { IdTagInfo(status: $0, expiryDate: expires) })
}

@Suite struct LocalAuthorizationTests {
    @Test func fullAndDifferentialUpdatesKeepTheirVersions() {
        var a = LocalAuthorization()
        #expect(a.listVersion == 0)
        #expect(
            a.apply(
                SendLocalListReq(listVersion: 3, localAuthorizationList: [entry("CARD-1", .Accepted), entry("card-2", .Blocked)], updateType: .Full)
            ).0 == .Accepted)
        #expect(a.listVersion == 3)
        // IdToken is case-insensitive.
        #expect(a.verdict("card-1", atMillis: t0, listEnabled: true, cacheEnabled: true) == .accepted(.list))
        #expect(a.verdict("CARD-2", atMillis: t0, listEnabled: true, cacheEnabled: true) == .refused(.Blocked, .list))
        #expect(a.verdict("CARD-3", atMillis: t0, listEnabled: true, cacheEnabled: true) == .unknown)
        // A differential update must be newer than the list.
        #expect(
            a.apply(SendLocalListReq(listVersion: 3, localAuthorizationList: [entry("CARD-3", .Accepted)], updateType: .Differential)).0
                == .VersionMismatch)
        #expect(a.verdict("CARD-3", atMillis: t0, listEnabled: true, cacheEnabled: true) == .unknown)
        // It adds, replaces, and removes an entry sent without idTagInfo.
        #expect(a.apply(SendLocalListReq(listVersion: 4, localAuthorizationList: [entry("CARD-3", .Accepted), entry("CARD-2", nil), entry("CARD-1", .Invalid)],
                                         updateType: .Differential)).0 == .Accepted)
        #expect(a.listVersion == 4 && a.list.count == 2)
        #expect(a.verdict("CARD-1", atMillis: t0, listEnabled: true, cacheEnabled: true) == .refused(.Invalid, .list))
        #expect(a.verdict("CARD-2", atMillis: t0, listEnabled: true, cacheEnabled: true) == .unknown)
        // A full update with no entries empties the list.
        #expect(a.apply(SendLocalListReq(listVersion: 5, localAuthorizationList: nil, updateType: .Full)).0 == .Accepted)
        #expect(a.list.isEmpty && a.listVersion == 5)
        // Disabled, the list is not consulted.
        _ = a.apply(SendLocalListReq(listVersion: 6, localAuthorizationList: [entry("CARD-1", .Accepted)], updateType: .Full))
        #expect(a.verdict("CARD-1", atMillis: t0, listEnabled: false, cacheEnabled: true) == .unknown)
    }

    @Test func badUpdatesFailAndChangeNothing() {
        var a = LocalAuthorization()
        _ = a.apply(SendLocalListReq(listVersion: 1, localAuthorizationList: [entry("KEEP", .Accepted)], updateType: .Full))
        let before = a
        let tooMany = (0...LocalAuthorization.sendListMaxLength).map { entry("T\($0)", .Accepted) }
        let cases: [(SendLocalListReq, String)] = [
            (SendLocalListReq(listVersion: 2, localAuthorizationList: tooMany, updateType: .Full), "SendLocalListMaxLength"),
            (SendLocalListReq(listVersion: 2, localAuthorizationList: [entry("A", .Accepted), entry("a", .Blocked)], updateType: .Full), "twice"),
            (SendLocalListReq(listVersion: 2, localAuthorizationList: [entry("A", nil)], updateType: .Full), "no idTagInfo"),
            (SendLocalListReq(listVersion: 2, localAuthorizationList: [entry("A", .Accepted, expires: "tomorrow")], updateType: .Full), "expiryDate"),
            (SendLocalListReq(listVersion: 2, localAuthorizationList: [entry("A-TAG-LONGER-THAN-20-CHARS", .Accepted)], updateType: .Full), "IdToken"),
            (SendLocalListReq(listVersion: -1, localAuthorizationList: [], updateType: .Full), "negative"),
        ]
        for (r, why) in cases {
            let (status, text) = a.apply(r)
            #expect(status == .Failed, "\(why)")
            #expect(text.contains(why), "\(text)")
            #expect(a == before)
        }
        // The whole list is bounded too: 4 differential updates of 250 fill it to 1000, one more fails.
        var b = LocalAuthorization()
        for v in 1...4 {
            #expect(
                b.apply(
                    SendLocalListReq(
                        listVersion: v, localAuthorizationList: (0..<250).map { entry("V\(v)-\($0)", .Accepted) }, updateType: .Differential)
                ).0 == .Accepted)
        }
        #expect(b.list.count == LocalAuthorization.listMaxLength)
        #expect(b.apply(SendLocalListReq(listVersion: 5, localAuthorizationList: [entry("ONE-MORE", .Accepted)], updateType: .Differential)).0 == .Failed)
    }

    @Test func expiryAndPrecedence() {
        var a = LocalAuthorization()
        _ = a.apply(SendLocalListReq(listVersion: 1, localAuthorizationList: [entry("FLEET", .Accepted, expires: "2026-11-28T11:00:00Z")], updateType: .Full))
        #expect(a.verdict("FLEET", atMillis: t0, listEnabled: true, cacheEnabled: true) == .accepted(.list))
        #expect(a.verdict("FLEET", atMillis: t0 + 3_600_000, listEnabled: true, cacheEnabled: true) == .refused(.Expired, .list))
        // The list takes precedence over the cache (§3.5.3); the cache answers for what the list lacks.
        a.remember("FLEET", IdTagInfo(status: .Blocked), atMillis: t0)
        a.remember("VISITOR", IdTagInfo(status: .Accepted), atMillis: t0)
        #expect(a.verdict("FLEET", atMillis: t0, listEnabled: true, cacheEnabled: true) == .accepted(.list))
        #expect(a.verdict("FLEET", atMillis: t0, listEnabled: false, cacheEnabled: true) == .refused(.Blocked, .cache))
        #expect(a.verdict("visitor", atMillis: t0, listEnabled: true, cacheEnabled: true) == .accepted(.cache))
        #expect(a.verdict("VISITOR", atMillis: t0, listEnabled: true, cacheEnabled: false) == .unknown)
        a.clearCache()
        #expect(a.verdict("VISITOR", atMillis: t0, listEnabled: true, cacheEnabled: true) == .unknown)
        #expect(a.list.count == 1)
    }

    @Test func theCacheIsBoundedAndForgetsTheOldest() {
        var a = LocalAuthorization()
        for i in 0..<LocalAuthorization.cacheMaxLength { a.remember("T\(i)", IdTagInfo(status: .Accepted), atMillis: t0 + Int64(i)) }
        a.remember("NEW", IdTagInfo(status: .Accepted), atMillis: t0 + 10_000)
        #expect(a.cache.count == LocalAuthorization.cacheMaxLength)
        #expect(a.verdict("T0", atMillis: t0, listEnabled: true, cacheEnabled: true) == .unknown)
        #expect(a.verdict("T1", atMillis: t0, listEnabled: true, cacheEnabled: true) == .accepted(.cache))
        #expect(a.verdict("NEW", atMillis: t0, listEnabled: true, cacheEnabled: true) == .accepted(.cache))
    }
}

@Suite struct ConfigurationKeyTests {
    let facts = OCPPSettings.Facts(connectors: 2, featureProfiles: "Core", maxStackLevel: 8, maxPeriods: 48, maxProfiles: 32)

    @Test func everyKeyHasAValueAndEveryWritableOneTakesItsOwnValueBack() {
        var s = OCPPSettings(heartbeatInterval: 300, meterValueSampleInterval: 60, connectionTimeOut: 60)
        for k in OCPPSettings.keys where k.name != "AuthorizationKey" {      // write-only: listed without a value
            let v = s.value(k.name, facts)
            #expect(v != nil, "\(k.name)")
            if k.writable, !OCPPSettings.clientKeys.contains(k.name), let v {
                let r = s.set(k.name, v, connectors: 2)
                #expect((try? r.get()) != nil, "\(k.name) = \(v)")
            }
        }
        #expect(s.value("GetConfigurationMaxKeys", facts) == String(OCPPSettings.keys.count))
        #expect(s.value("NoSuchKey", facts) == nil)
    }

    @Test func valuesOutOfTypeOrRangeAreRefusedWithTheReason() {
        var s = OCPPSettings(heartbeatInterval: 300, meterValueSampleInterval: 60, connectionTimeOut: 60)
        let before = s
        let bad: [(String, String, String)] = [
            ("HeartbeatInterval", "0", "1...86400"), ("HeartbeatInterval", "soon", "whole number"),
            ("MeterValueSampleInterval", "-1", "0...86400"), ("ClockAlignedDataInterval", "90000", "0...86400"),
            ("TransactionMessageAttempts", "0", "1...10"), ("LocalPreAuthorize", "yes", "true or false"),
            ("MeterValuesSampledData", "Energy.Active.Import.Register,Temperature", "'Temperature'"),
            ("StopTransactionOnEVSideDisconnect", "false", "cannot be false"),
            ("ConnectorPhaseRotation", "1.RST", "NotApplicable"), ("ConnectorPhaseRotation", "3.NotApplicable", "0...2"),
            ("NumberOfConnectors", "4", "not a writable key"),
        ]
        for (k, v, why) in bad {
            guard case .failure(let r) = s.set(k, v, connectors: 2) else { Issue.record("\(k)=\(v) accepted"); continue }
            #expect(r.description.contains(why), "\(r)")
        }
        #expect(s == before)
        #expect((try? s.set("MeterValuesSampledData", " Voltage , SoC,Voltage", connectors: 2).get()) != nil)
        #expect(s.meterValuesSampledData == [.voltage, .soc])
        #expect((try? s.set("LocalPreAuthorize", "TRUE", connectors: 2).get()) != nil)
        #expect(s.localPreAuthorize)
        #expect((try? s.set("ConnectorPhaseRotation", "0.NotApplicable,1.Unknown,2.NotApplicable", connectors: 2).get()) != nil)
        // What is stored comes back the same through set (a restart restores it).
        var restored = OCPPSettings(heartbeatInterval: 300, meterValueSampleInterval: 60, connectionTimeOut: 60)
        for (k, v) in s.stored(facts) { _ = restored.set(k, v, connectors: 2) }
        #expect(restored == s)
    }
}

@Suite struct ReservationTests {
    let hour = "2026-11-28T11:00:00Z"

    @Test func reserveAnswersEachCaseAndReplacesItsOwnId() {
        var r = Reservations()
        func reserve(_ c: Int, _ id: Int, _ tag: String = "DRIVER", expiry: String? = nil, state: Reservations.ConnectorState = .free)
            -> ReservationStatus
        {
            r.reserve(ReserveNowReq(connectorId: c, expiryDate: expiry ?? hour, idTag: tag, reservationId: id), connectors: 2, atMillis: t0) { _ in
                state
            }.0
        }
        #expect(reserve(0, 1) == .Rejected)
        #expect(reserve(3, 1) == .Rejected)
        #expect(reserve(-1, 1) == .Rejected)
        #expect(reserve(1, 1, expiry: "2026-11-28T09:00:00Z") == .Rejected)
        #expect(reserve(1, 1, expiry: "later") == .Rejected)
        #expect(reserve(1, 1, state: .faulted) == .Faulted)
        #expect(reserve(1, 1, state: .unavailable) == .Unavailable)
        #expect(reserve(1, 1, state: .occupied) == .Occupied)
        #expect(r.held.isEmpty)
        #expect(reserve(1, 7) == .Accepted)
        #expect(reserve(1, 8) == .Occupied)
        // The same id again replaces it (here onto connector 2, for another idTag).
        #expect(reserve(2, 7, "OTHER") == .Accepted)
        #expect(r.held.count == 1 && r.on(gun: 1)?.idTag == "OTHER" && r.on(gun: 0) == nil)
        #expect(r.cancel(99) == nil)
        #expect(r.cancel(7)?.id == 7)
        #expect(r.held.isEmpty)
    }

    @Test func onlyItsIdTagOrParentMayUseItUntilItExpires() {
        var r = Reservations()
        _ = r.reserve(ReserveNowReq(connectorId: 1, expiryDate: hour, idTag: "Driver-1", parentIdTag: "FLEET", reservationId: 3),
                      connectors: 1, atMillis: t0) { _ in .free }
        #expect(r.admits("DRIVER-1", parent: nil, gun: 0))
        #expect(r.admits("DRIVER-2", parent: "fleet", gun: 0))
        #expect(!r.admits("DRIVER-2", parent: nil, gun: 0))
        #expect(!r.admits("WALK-IN", parent: "OTHER", gun: 0))
        #expect(r.expire(atMillis: t0 + 3_599_999).isEmpty)
        #expect(r.expire(atMillis: t0 + 3_600_000).map(\.id) == [3])
        #expect(r.admits("WALK-IN", parent: nil, gun: 0))
        _ = r.reserve(ReserveNowReq(connectorId: 1, expiryDate: hour, idTag: "D", reservationId: 4), connectors: 1, atMillis: t0) { _ in .free }
        #expect(r.use(gun: 0)?.id == 4)
        #expect(r.on(gun: 0) == nil)
    }
}

/// Plug and charge (issue 37): the VIN read from the car's bytes with care, its idTag and its masked form.
@Suite struct VINTests {
    func bytes(_ b: [UInt8]) -> InlineArray<17, UInt8> {
        var a = InlineArray<17, UInt8>(repeating: 0)
        for i in 0..<min(17, b.count) { a[i] = b[i] }
        return a
    }

    @Test func readings() {
        #expect(VINReading(bytes(Array("LFV3A23C5K3012345".utf8))) == .valid("LFV3A23C5K3012345"))
        #expect(VINReading(bytes([])) == .absent)
        #expect(VINReading(bytes([UInt8](repeating: 0xFF, count: 17))) == .absent)
        // I, O and Q are not VIN characters; nor is a lower-case letter, a space, a NUL inside or a high byte.
        for bad: [UInt8] in [Array("LFV3A23C5K301234O".utf8), Array("lfv3a23c5k3012345".utf8), Array("LFV3A23C5K30 2345".utf8),
                             Array("LFV3A23C5K3012".utf8), Array("LFV3A23C5K3012345".utf8).map { $0 == 0x33 ? 0xC3 : $0 }] {
            guard case .malformed(let why) = VINReading(bytes(bad)) else { Issue.record("\(bad) read as a VIN"); continue }
            #expect(why.hasPrefix("byte ") && why.contains("not a VIN character"), "\(why)")
            #expect(why.utf8.allSatisfy { $0 >= 0x20 && $0 < 0x7F }, "the car's bytes are shown as hexadecimal, never as text: \(why)")
        }
        #expect(VINReading.parse("LFV3A23C5K3012345") == "LFV3A23C5K3012345")
        #expect(VINReading.parse("LFV3A23C5K301234") == nil && VINReading.parse("LFV3A23C5K30123456") == nil)
    }

    @Test func idTagAndMask() {
        let tag = VINIdentity.idTag("LFV3A23C5K3012345")
        #expect(tag == "VINLFV3A23C5K3012345" && tag.utf8.count == 20, "OCPP 1.6 idTag is CiString20")
        #expect(VINIdentity.masked("LFV3A23C5K3012345") == "LFV**********2345")
        #expect(VINIdentity.shown("LFV3A23C5K3012345", whole: true) == "LFV3A23C5K3012345")
        #expect(VINIdentity.masked("SHORT") == "*****")
    }
}
