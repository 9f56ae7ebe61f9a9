// Orderly charging with plain values: the station clock, time of use, the EMS heartbeat's fail-safe,
// the EMS register map's refusals, OCPP charging profiles and the composite limit; and, through the
// simulation, the grid feed reaching the step (ramped reductions, authorization).
import BoardFile
import ChargerCore
import ChargerRuntime
import StationLoop
import LoopContract
import Grid
import GridInterfaces
import Foundation
import Glibc
import SimPlant
import Testing

let repoRoot: String = {
    var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(3)
    return parts.joined(separator: "/")
}()

/// 2026-11-24T00:00:00+08:00 (local midnight in China).
let midnightCST: Int64 = Timestamp.parse("2026-11-24T00:00:00+08:00")!
let cst = StationClock(epochMillisAtZero: midnightCST, utcOffsetSeconds: 8 * 3600)
func at(_ s: Double) -> Instant { Instant(micros: Int64(s * 1e6)) }

let peakCap = TimeOfUse(periods: [.init(startMinute: 0, kind: .valley), .init(startMinute: 420, kind: .flat),
                                  .init(startMinute: 900, kind: .peak), .init(startMinute: 1320, kind: .valley)],
                        peak: .kW(40), flat: .kW(80), valley: nil)

@Suite struct Clock {
    @Test func timestampsRoundTripAndOffsets() {
        #expect(Timestamp.format(midnightCST) == "2026-11-23T16:00:00.000Z")
        #expect(Timestamp.parse("2026-11-23T16:00:00Z") == midnightCST)
        #expect(Timestamp.parse("2026-11-23T16:00:00.5Z") == midnightCST + 500)
        #expect(Timestamp.parse("2024-02-29T12:00:00Z").map(Timestamp.format) == "2024-02-29T12:00:00.000Z")
        #expect(Timestamp.parse("1969-12-31T23:59:59Z") == -1000)
        for bad in ["2026-13-01T00:00:00Z", "2026-11-24 00:00", "2026-11-24T00:00:00", "2026-11-24T00:00:00+8", "garbage"] {
            #expect(Timestamp.parse(bad) == nil, "\(bad)")
        }
        #expect(cst.localSecondOfDay(at(15 * 3600 + 1)) == 15 * 3600 + 1)
        #expect(cst.nextLocalMidnight(after: midnightCST + 1) == midnightCST + 86_400_000)
    }
}

@Suite struct TimeOfUseTests {
    @Test func periodsWrapPastMidnight() {
        #expect(peakCap.kind(atSecondOfDay: 0) == .valley)
        #expect(peakCap.kind(atSecondOfDay: 14 * 3600 + 3599) == .flat)
        #expect(peakCap.kind(atSecondOfDay: 15 * 3600) == .peak)
        #expect(peakCap.kind(atSecondOfDay: 22 * 3600) == .valley)
        // A schedule not starting at midnight: the last period runs on past it.
        let late = TimeOfUse(periods: [.init(startMinute: 480, kind: .flat), .init(startMinute: 1380, kind: .valley)])
        #expect(late.kind(atSecondOfDay: 3600) == .valley)
        #expect(peakCap.limit(atSecondOfDay: 16 * 3600)! == (Watts.kW(40), GridSource.touPeak))
        #expect(peakCap.limit(atSecondOfDay: 23 * 3600) == nil)
    }

    @Test func invalidSchedulesAreNamed() {
        var t = peakCap
        t.periods[2].startMinute = 300
        #expect(t.problem?.contains("period 2 starts at 05:00, not after") == true)
        t.periods = Array(repeating: .init(startMinute: 0, kind: .flat), count: 13)
        #expect(t.problem?.contains("13 periods") == true)
    }
}

@Suite struct EMSFailsafe {
    var settings: EMSSettings {
        var s = EMSSettings()
        s.heartbeatTimeout = .s(10); s.failsafeLimit = .kW(20); s.failsafeMinimum = .s(60)
        return s
    }

    @Test func noHeartbeatAfterStartMeansFailsafe() {
        var e = EMSState(settings: settings, gunCount: 2, tou: TimeOfUse())
        #expect(e.advance(to: at(9.9)).isEmpty)
        #expect(e.mode == .waiting && e.stationLimit == nil)
        let ev = e.advance(to: at(10.1))
        #expect(ev.map(\.mode) == [.failsafe])
        #expect(ev.first?.at == at(10))
        #expect(e.stationLimit! == (Watts.kW(20), GridSource.emsFailsafe))
    }

    @Test func lapseHoldsAtLeastTheMinimumThenDefaultOrBack() {
        var e = EMSState(settings: settings, gunCount: 2, tou: TimeOfUse())
        e.stationSetpoint = .kW(50)
        e.gunSetpoints[1] = .kW(30)
        e.heartbeat(1, at: at(1))
        #expect(e.advance(to: at(1)).map(\.mode) == [.valid])
        #expect(e.stationLimit! == (Watts.kW(50), GridSource.ems))
        #expect(e.gunLimit(1) == .kW(30))
        // A repeated value is not a heartbeat.
        e.heartbeat(1, at: at(8))
        #expect(e.advance(to: at(11.5)).map(\.mode) == [.failsafe])
        #expect(e.gunLimit(1) == nil)
        // Back within the minimum: the fail-safe holds on.
        e.heartbeat(2, at: at(20))
        #expect(e.advance(to: at(30)).isEmpty)
        #expect(e.mode == .failsafe)
        #expect(e.failsafeRemaining(at: at(30)) == .s(41))
        // The minimum passed with the heartbeat fresh: the EMS's setpoints again.
        e.heartbeat(3, at: at(70))
        #expect(e.advance(to: at(71.5)).map(\.mode) == [.valid])
        #expect(e.stationLimit! == (Watts.kW(50), GridSource.ems))
        // Lapse again; silent through the minimum: the default (no EMS limit).
        #expect(e.advance(to: at(80.5)).map(\.mode) == [.failsafe])
        let ev = e.advance(to: at(141))
        #expect(ev.map(\.mode) == [.released])
        #expect(ev.first?.at == at(140))
        #expect(e.stationLimit == nil)
        e.heartbeat(4, at: at(200))
        #expect(e.advance(to: at(200)).map(\.mode) == [.valid])
    }
}

@Suite struct EMSRegisters {
    var ems: EMSState {
        var s = EMSSettings()
        s.heartbeatTimeout = .s(10); s.failsafeLimit = .kW(20); s.failsafeMinimum = .s(60)
        return EMSState(settings: s, gunCount: 2, tou: peakCap)
    }
    let ratings = [Watts.kW(60), Watts.kW(60)]
    func write(_ e: EMSState, _ a: Int, _ v: [UInt16]) throws(EMSRefusal) -> EMSState {
        try EMSRegisterMap.write(e, address: a, values: v, gridConnection: .kW(120), ratings: ratings, now: at(5)).0
    }
    func refusal(_ e: EMSState, _ a: Int, _ v: [UInt16]) -> EMSRefusal? {
        do { _ = try write(e, a, v); return nil } catch { return error }
    }

    @Test func writesApplyWhole() throws {
        var e = try write(ems, 6, [0, 50_000])
        #expect(e.stationSetpoint == .kW(50))
        e = try write(e, 100, [0, 30_000, 0xFFFF, 0xFFFF])
        #expect(e.gunSetpoints == [.kW(30), nil])
        e = try write(e, 0, [7])
        #expect(e.lastBeatValue == 7 && e.lastBeatAt == at(5))
        // One request with the count and its periods replaces the schedule at once.
        e = try write(e, 14, [2, 0, 3, 480, 2])
        #expect(e.tou.periods == [.init(startMinute: 0, kind: .valley), .init(startMinute: 480, kind: .flat)])
        let img = EMSRegisterMap.holdingImage(e)
        #expect(Array(img[0...7]) == [7, 10, 0, 20_000, 0, 60, 0, 50_000])
        #expect(img[14] == 2)
    }

    /// V2G (docs/grid.md "V2G"): the signed registers set the same setpoints as the unsigned ones; negative
    /// asks for export, and the unsigned register reads 0 while it is.
    @Test func signedSetpointsAskForExport() throws {
        // -20 kW for the station, -15 kW for gun 1, 12 kW of export asked at peak.
        let m20k = UInt32(bitPattern: -20_000), m15k = UInt32(bitPattern: -15_000)
        var e = try write(ems, 40, [UInt16(m20k >> 16), UInt16(m20k & 0xFFFF), 0, 12_000])
        #expect(e.stationSetpoint == Watts(-20_000))
        #expect(e.tou.peakDischarge == .kW(12))
        e = try write(e, 62, [UInt16(m15k >> 16), UInt16(m15k & 0xFFFF)])
        #expect(e.gunSetpoints == [nil, Watts(-15_000)])
        let img = EMSRegisterMap.holdingImage(e)
        #expect(Array(img[6...7]) == [0, 0], "the unsigned station_setpoint reads 0 while it asks for export")
        #expect(Array(img[40...43]) == [UInt16(m20k >> 16), UInt16(m20k & 0xFFFF), 0, 12_000])
        #expect(Array(img[60...63]) == [0x7FFF, 0xFFFF, UInt16(m15k >> 16), UInt16(m15k & 0xFFFF)], "gun 0 none, gun 1 -15 kW")
        // A positive value through the signed register is a plain limit; none clears it.
        e = try write(e, 40, [0, 30_000])
        #expect(e.stationSetpoint == .kW(30))
        #expect(Array(EMSRegisterMap.holdingImage(e)[6...7]) == [0, 30_000])
        e = try write(e, 40, [0x7FFF, 0xFFFF])
        #expect(e.stationSetpoint == nil)
        // The input registers: signed power, the export registers and what a gun may export now.
        var o = StationObservation()
        var g0 = GunObservation(); g0.voltage = Volts(600); g0.current = Amps(-25); g0.exportEnergy = WattHours(1_234);
        g0.dischargeAvailable = .kW(15)
        var g1 = GunObservation(); g1.voltage = Volts(400); g1.current = Amps(10); g1.exportEnergy = WattHours(100)
        o.guns = [g0, g1]
        let input = EMSRegisterMap.inputImage(ems: e, touKind: nil, stationLimit: nil, stationSource: .none, observation: o)
        func i32(_ a: Int) -> Int32 { Int32(bitPattern: UInt32(input[a]) << 16 | UInt32(input[a + 1])) }
        #expect(i32(14) == -11_000, "station: -15 kW + 4 kW")
        #expect(i32(16) == 1_334)
        #expect(i32(EMSRegisterMap.gunInputBase + 13) == -15_000)
        #expect(i32(EMSRegisterMap.gunInputBase + EMSRegisterMap.gunInputStride + 13) == 4_000)
        #expect(i32(40) == 1_234 && i32(42) == 100)
        #expect(i32(64) == 15_000 && i32(66) == 0)
        #expect(Array(input[6...7]) == [0, 4_000], "the unsigned station_power counts what is delivered")
    }

    @Test func badWritesAreRefusedAndChangeNothing() {
        let e = ems
        let cases: [(Int, [UInt16], ModbusExceptionCode, String)] = [
            (6, [1], .illegalDataAddress, "ends in the middle of the 32-bit station_setpoint"),
            (7, [1], .illegalDataAddress, "starts in the middle of the 32-bit station_setpoint"),
            (6, [0x0002, 0], .illegalDataValue, "station_setpoint 131072 W above 120000 W"),
            (100, [0, 61_000], .illegalDataValue, "gun 0 setpoint 61000 W above 60000 W"),
            (2, [0xFFFF, 0xFFFF], .illegalDataValue, "failsafe_limit: 0xFFFFFFFF"),
            (1, [0], .illegalDataValue, "heartbeat_timeout 0 s"),
            (50, [1], .illegalDataAddress, "not in the map"),
            (40, [1], .illegalDataAddress, "ends in the middle of the 32-bit station_setpoint_signed"),
            // V2G's signed setpoints: within ± the grid connection (120 kW) and the gun's rating (60 kW).
            (40, [0xFFFE, 0x0000], .illegalDataValue, "station_setpoint_signed -131072 W outside ±120000 W"),
            (62, [0xFFFF, 0x1000], .illegalDataValue, "gun 1 setpoint_signed -61440 W outside ±60000 W"),
            (42, [0, 500], .illegalDataValue, "tou_peak_discharge 500 W below 1000 W"),
            (104, [0, 1], .illegalDataAddress, "outside the holding registers"),
            (14, [2, 480, 2, 0, 3], .illegalDataValue, "not after the period before it"),
            (14, [1, 0, 9], .illegalDataValue, "tou_0_kind 9"),
            (14, [13], .illegalDataValue, "tou_count 13"),
            // A valid setpoint in the same request as a bad one: neither applies.
            (0, [9, 10, 0, 1000, 0, 60, 0, 50_000, 0xFFFF, 0xFFF0], .illegalDataValue, "tou_peak_limit"),
        ]
        for (a, v, code, why) in cases {
            let r = refusal(e, a, v)
            #expect(r?.code == code, "write \(a) \(v): \(String(describing: r))")
            #expect(r?.why.contains(why) == true, "write \(a) \(v): \(String(describing: r))")
        }
    }

    @Test func theDataFileIsTheMap() throws {
        let file = try #require(BoardLoader.readFile("\(repoRoot)/HIL/ems-register-map.csv"))
        #expect(String(decoding: file, as: UTF8.self) == EMSRegisterMap.csv, "regenerate with: chargerd ems-map > HIL/ems-register-map.csv")
    }
}

func profile(_ id: Int, _ purpose: ProfilePurpose, _ kind: ProfileKind, level: Int = 0, unit: RateUnit = .W,
             periods: [(Int, Double)], start: String? = nil, duration: Int? = nil, recurrency: RecurrencyKind? = nil,
             validFrom: String? = nil, validTo: String? = nil) -> ChargingProfile {
    ChargingProfile(chargingProfileId: id, transactionId: nil, stackLevel: level, chargingProfilePurpose: purpose,
                    chargingProfileKind: kind, recurrencyKind: recurrency, validFrom: validFrom, validTo: validTo,
                    chargingSchedule: ChargingSchedule(duration: duration, startSchedule: start, chargingRateUnit: unit,
                                                       chargingSchedulePeriod: periods.map { SchedulePeriod(startPeriod: $0.0, limit: $0.1) }))
}

@Suite struct Profiles {
    let t0 = midnightCST

    @Test func stackLevelsKindsAndValidity() throws {
        var store = ProfileStore()
        // Daily recurring from local midnight: 30 kW until 07:00, then 50 kW.
        try store.install(profile(1, .TxDefaultProfile, .Recurring, level: 0, periods: [(0, 30_000), (7 * 3600, 50_000)],
                                  start: "2026-11-23T00:00:00+08:00", recurrency: .Daily), connectorId: 0, connectors: 2, activeTransaction: nil, at: t0)
        #expect(store.limit(purpose: .TxDefaultProfile, connectorId: 1, at: t0 + 3_600_000, txStart: nil)?.value == 30_000)
        #expect(store.limit(purpose: .TxDefaultProfile, connectorId: 2, at: t0 + 8 * 3_600_000, txStart: nil)?.value == 50_000)
        // A higher stack level for one hour only, on connector 1.
        try store.install(profile(2, .TxDefaultProfile, .Absolute, level: 3, periods: [(0, 10_000)], start: "2026-11-24T01:00:00+08:00", duration: 3600),
                          connectorId: 1, connectors: 2, activeTransaction: nil, at: t0)
        #expect(store.limit(purpose: .TxDefaultProfile, connectorId: 1, at: t0 + 90 * 60_000, txStart: nil)?.value == 10_000)
        #expect(store.limit(purpose: .TxDefaultProfile, connectorId: 2, at: t0 + 90 * 60_000, txStart: nil)?.value == 30_000)
        #expect(store.limit(purpose: .TxDefaultProfile, connectorId: 1, at: t0 + 2 * 3_600_000, txStart: nil)?.value == 30_000)
        // Relative: from the transaction's start; none without one.
        try store.install(profile(3, .TxProfile, .Relative, level: 0, unit: .A, periods: [(0, 100), (600, 50)]),
                          connectorId: 2, connectors: 2, activeTransaction: 42, at: t0)
        #expect(store.limit(purpose: .TxProfile, connectorId: 2, at: t0 + 700_000, txStart: t0)! == RateLimit(value: 50, unit: .A, phases: nil))
        #expect(store.profiles.last?.profile.transactionId == 42)
        // validTo ends a profile.
        try store.install(profile(4, .ChargePointMaxProfile, .Absolute, periods: [(0, 90_000)], start: "2026-11-24T00:00:00+08:00",
                                  validTo: "2026-11-24T02:00:00+08:00"), connectorId: 0, connectors: 2, activeTransaction: nil, at: t0)
        #expect(store.limit(purpose: .ChargePointMaxProfile, connectorId: 0, at: t0 + 3_600_000, txStart: nil)?.value == 90_000)
        #expect(store.limit(purpose: .ChargePointMaxProfile, connectorId: 0, at: t0 + 7_200_000, txStart: nil) == nil)
        // Same stack level and purpose on the same connector replaces; clearing by purpose.
        try store.install(
            profile(5, .TxDefaultProfile, .Absolute, level: 3, periods: [(0, 5_000)]), connectorId: 1, connectors: 2, activeTransaction: nil, at: t0)
        #expect(!store.profiles.contains { $0.profile.chargingProfileId == 2 })
        #expect(store.clear(id: nil, connectorId: nil, purpose: .TxDefaultProfile, stackLevel: nil) == 2)
        store.transactionEnded(connectorId: 2)
        #expect(store.profiles.map(\.profile.chargingProfileId) == [4])
    }

    @Test func refusals() {
        var store = ProfileStore()
        func why(_ p: ChargingProfile, _ c: Int, tx: Int? = nil) -> String {
            do { try store.install(p, connectorId: c, connectors: 2, activeTransaction: tx, at: 0); return "accepted" } catch { return error.why }
        }
        #expect(why(profile(1, .TxProfile, .Relative, periods: [(0, 1)]), 1).contains("no transaction"))
        #expect(why(profile(1, .ChargePointMaxProfile, .Absolute, periods: [(0, 1)]), 1).contains("connector 0 only"))
        #expect(why(profile(1, .TxDefaultProfile, .Absolute, periods: [(10, 1)]), 1).contains("must start at 0"))
        #expect(why(profile(1, .TxDefaultProfile, .Recurring, periods: [(0, 1)]), 1).contains("recurrencyKind and startSchedule"))
        #expect(why(profile(1, .TxDefaultProfile, .Absolute, periods: [(0, 1), (0, 2)]), 1).contains("does not increase"))
        #expect(why(profile(1, .TxDefaultProfile, .Absolute, periods: [(0, -1)]), 1).contains("negative"))
        #expect(why(profile(1, .TxDefaultProfile, .Absolute, periods: [(0, 1)], start: "yesterday"), 1).contains("RFC 3339"))
        #expect(why(profile(1, .TxDefaultProfile, .Absolute, periods: [(0, 1)]), 3).contains("does not exist"))
        var p = profile(1, .TxProfile, .Relative, periods: [(0, 1)]); p.transactionId = 9
        #expect(why(p, 1, tx: 8).contains("not the connector's transaction 8"))
        #expect(why(profile(1, .TxDefaultProfile, .Absolute, level: 100, periods: [(0, 1)]), 1).contains("stackLevel 100 outside 0...99"))
        #expect(why(profile(1, .TxDefaultProfile, .Absolute, periods: (0..<49).map { ($0 * 60, 1) }), 1).contains("49 periods (at most 48)"))
        // Seconds from outside never reach the arithmetic unchecked: the ocpp fuzz target's startPeriod of
        // 6.6e16 s (times 1000, past Int64) stopped the controller; beyond ten years is refused by name.
        #expect(why(profile(1, .TxDefaultProfile, .Absolute, periods: [(0, 1), (65_555_555_555_555_100, 2)]), 1)
            .contains("startPeriod 65555555555555100 s is beyond 316224000 s"))
        #expect(why(profile(1, .TxDefaultProfile, .Absolute, periods: [(0, 1)], duration: Int.max), 1).contains("is not within 1...316224000 s"))
        #expect(store.profiles.isEmpty)
        // The limits themselves are accepted.
        #expect(why(profile(1, .TxDefaultProfile, .Absolute, level: 99, periods: (0..<48).map { ($0 * 60, 1) }), 1) == "accepted")
    }

    /// A store restored from its file keeps the same rules: one that holds a schedule the rules refuse is
    /// not valid (the client sets the file aside), and its change instants never overflow meanwhile.
    @Test func aRestoredStoreIsHeldToTheRules() throws {
        var good = ProfileStore()
        try good.install(profile(1, .TxDefaultProfile, .Absolute, periods: [(0, 1), (ProfileStore.maxScheduleSeconds, 2)], start: "1013-11-24T00:00:00Z"),
                         connectorId: 1, connectors: 2, activeTransaction: nil, at: 0)
        #expect(good.isValid)
        #expect(good.changes(connectorId: 1, from: 0, to: 2 * 86_400_000, txStart: nil).isEmpty)
        let text = String(decoding: try JSONEncoder().encode(good), as: UTF8.self)
            .replacingOccurrences(of: "\(ProfileStore.maxScheduleSeconds)", with: "65555555555555100")
        let hostile = try JSONDecoder().decode(ProfileStore.self, from: Data(text.utf8))
        #expect(!hostile.isValid)
        #expect(hostile.changes(connectorId: 1, from: 0, to: 2 * 86_400_000, txStart: nil).isEmpty)
    }

    /// At most 64 installed: the 65th is refused, a replacement (same id) still goes, clearing makes room.
    @Test func theStoreIsBounded() throws {
        var store = ProfileStore()
        for i in 0..<ProfileStore.maxProfiles {
            try store.install(
                profile(i + 1, .TxDefaultProfile, .Absolute, level: i, periods: [(0, 1)]), connectorId: 1, connectors: 2, activeTransaction: nil,
                at: 0)
        }
        #expect(throws: ProfileError.self) {
            try store.install(
                profile(1000, .TxDefaultProfile, .Absolute, level: 0, periods: [(0, 1)]), connectorId: 2, connectors: 2, activeTransaction: nil, at: 0
            )
        }
        try store.install(
            profile(5, .TxDefaultProfile, .Absolute, level: 4, periods: [(0, 2)]), connectorId: 1, connectors: 2, activeTransaction: nil, at: 0)
        #expect(store.profiles.count == ProfileStore.maxProfiles)
        #expect(store.clear(id: 7, connectorId: nil, purpose: nil, stackLevel: nil) == 1)
        try store.install(
            profile(1000, .TxDefaultProfile, .Absolute, level: 0, periods: [(0, 1)]), connectorId: 2, connectors: 2, activeTransaction: nil, at: 0)
        #expect(store.profiles.count == ProfileStore.maxProfiles)
    }
}

@Suite struct Composite {
    func state() -> GridState {
        var e = EMSSettings(); e.heartbeatTimeout = .s(10); e.failsafeLimit = .kW(20); e.failsafeMinimum = .s(60)
        return GridState(clock: cst, ems: nil, tou: peakCap, gridConnection: .kW(120), ratings: [.kW(60), .kW(60)], freeVend: true)
    }

    @Test func lowestSourceBindsAndTheScheduleSaysSo() throws {
        var s = state()
        // 16:00 local: peak 40 kW binds the station; a ChargePointMax of 100 A per phase (69 kW) does not.
        let t = midnightCST + 16 * 3_600_000
        try s.profiles.install(profile(1, .ChargePointMaxProfile, .Absolute, unit: .A, periods: [(0, 100)], start: "2026-11-24T00:00:00+08:00"),
                               connectorId: 0, connectors: 2, activeTransaction: nil, at: t)
        var f = s.feed(at: cst.instant(epochMillis: t), volts: [Volts(400), Volts(400)])
        #expect(f.station == .kW(40) && f.stationSource == .touPeak)
        // A TxDefault in A reaches the gun as a current limit.
        try s.profiles.install(profile(2, .TxDefaultProfile, .Absolute, unit: .A, periods: [(0, 50)], start: "2026-11-24T00:00:00+08:00"),
                               connectorId: 1, connectors: 2, activeTransaction: nil, at: t)
        f = s.feed(at: cst.instant(epochMillis: t), volts: [Volts(400), Volts(400)])
        #expect(f.gunCurrents[0] == Amps(50) && f.gunSources[0] == .ocppTxDefault && f.gunCurrents[1] == nil)
        // Composite over 8 h from 14:00 for connector 2: gun rating 60 kW, 40 kW from 15:00, 60 kW from 22:00.
        let from = midnightCST + 14 * 3_600_000
        let w = s.compositeSchedule(connectorId: 2, from: from, duration: 8 * 3600, unit: .W, volts: Volts(400))
        #expect(w == [SchedulePeriod(startPeriod: 0, limit: 60_000), SchedulePeriod(startPeriod: 3600, limit: 40_000)])
        let w0 = s.compositeSchedule(connectorId: 0, from: from, duration: 9 * 3600, unit: .W, volts: Volts(400))
        #expect(
            w0 == [
                SchedulePeriod(startPeriod: 0, limit: 69_000), SchedulePeriod(startPeriod: 3600, limit: 40_000),
                SchedulePeriod(startPeriod: 8 * 3600, limit: 69_000),
            ])
        // Connector 1 in A at 400 V: 50 A all along (the TxDefault binds below 40 kW = 100 A).
        let a = s.compositeSchedule(connectorId: 1, from: from, duration: 8 * 3600, unit: .A, volts: Volts(400))
        #expect(a == [SchedulePeriod(startPeriod: 0, limit: 50)])
    }

    @Test func emsFailsafeShowsInTheSchedule() {
        var e = EMSSettings(); e.heartbeatTimeout = .s(10); e.failsafeLimit = .kW(20); e.failsafeMinimum = .s(600)
        var s = GridState(clock: cst, ems: e, tou: TimeOfUse(), gridConnection: .kW(120), ratings: [.kW(60)], freeVend: true)
        _ = s.ems!.advance(to: at(11))
        #expect(s.ems!.mode == .failsafe)
        let sched = s.compositeSchedule(connectorId: 0, from: cst.epochMillis(at(11)), duration: 3600, unit: .W, volts: Volts(400))
        #expect(sched == [SchedulePeriod(startPeriod: 0, limit: 20_000), SchedulePeriod(startPeriod: 599, limit: 120_000)])
    }
}

@Suite struct FeedInTheLoop {
    func sim() throws -> Simulation {
        let b = try BoardLoader.load(path: "\(repoRoot)/Boards/sim-60kw.toml")
        return Simulation(board: b, cars: [0: try CarProfile.parse("capacity=60kWh,soc=20,target=80,max-voltage=500V")])
    }

    /// A lower grid limit is ramped down to at the board's stop ramp, the invariants hold all along,
    /// and the limit in force follows the ramp.
    @Test func lowerGridLimitRampsAtTheBoardsRate() throws {
        let s = try sim()
        s.run(for: .s(60))
        #expect(s.phase(0) == .charging)
        let before = s.outputs.guns[0].currentSetpoint
        #expect(before > Amps(120))
        var f = GridFeed(); f.station = .kW(20); f.stationSource = .ems
        s.setGridFeed(f)
        s.run(for: .ms(100))
        let stopRamp = s.spec.guns[0].stopRamp
        let after100 = s.outputs.guns[0].currentSetpoint
        #expect(abs((before - after100).value - stopRamp.value * 0.1) < 1.5, "\(before) -> \(after100)")
        s.run(for: .s(3))
        #expect(abs(s.outputs.guns[0].powerLimit.value - 20_000) < 50)
        #expect(s.outputs.guns[0].binding == .gridSetpoint)
        #expect(s.violations.isEmpty, "\(s.violations.prefix(3))")
    }

    /// A gun made unavailable by the grid (OCPP ChangeAvailability) is out of service: a car gets no
    /// session; made available, it charges; unavailable again while charging, the session stops in order.
    @Test func unavailableIsOutOfService() throws {
        let s = try sim()
        var f = GridFeed(); f.unavailable[0] = true
        s.setGridFeed(f)
        s.run(for: .s(20))
        #expect(s.phase(0) == .unplugged)
        #expect(s.outputs.guns[0].lamp == .off)
        f.unavailable[0] = false
        s.setGridFeed(f)
        s.run(for: .s(40))
        #expect(s.phase(0) == .charging)
        f.unavailable[0] = true
        s.setGridFeed(f)
        s.run(for: .s(30))
        #expect(s.phase(0) == .finished || s.phase(0) == .unplugged)
        #expect(s.frame.state.sessions[0].stopReason == .operatorRequest)
        #expect(s.faults.isEmpty)
        #expect(s.violations.isEmpty)
    }

    /// Without authorization a plugged car waits unlocked; a remote stop (a bumped count) stops it.
    @Test func authorizationGatesTheLockAndStopCountStops() throws {
        let s = try sim()
        var f = GridFeed(); f.authorized[0] = false
        s.setGridFeed(f)
        s.run(for: .s(20))
        #expect(s.phase(0) == .connected)
        #expect(!s.outputs.guns[0].lock)
        f.authorized[0] = true
        s.setGridFeed(f)
        s.run(for: .s(40))
        #expect(s.phase(0) == .charging)
        f.stopCount[0] = 1
        s.setGridFeed(f)
        s.run(for: .s(2))
        #expect(s.phase(0) != .charging)
        #expect(s.frame.state.sessions[0].stopReason == .operatorRequest)
        #expect(s.violations.isEmpty)
    }
}

@Suite struct JournalFlooding {
    func at(_ s: Double) -> Instant { Instant(micros: Int64(s * 1e6)) }

    /// An EMS writing a new setpoint every second: ten go through, then one per 6 s carrying the count of
    /// what was held back; when it falls quiet the last value held back is still journalled.
    @Test func aChattyPeerIsLimitedAndTheLastValueKept() {
        var l = GridLogLimiter(burst: 10, interval: .s(6))
        var passed: [GridLogEntry] = []
        for i in 0..<60 {
            if let e = l.admit(GridLogEntry(at: at(Double(i)), kind: "ems-write", text: "station setpoint \(i) kW")) { passed.append(e) }
        }
        // The burst, then about one per 6 s: at most 10 + 60/6 in the minute.
        #expect(passed.count > 10 && passed.count <= 20, "\(passed.count)")
        #expect(passed.prefix(10).allSatisfy { !$0.text.contains("held back") })
        #expect(passed.dropFirst(10).contains { $0.text.contains("held back") })
        // Other kinds are never held back, even meanwhile.
        #expect(l.admit(GridLogEntry(at: at(59), kind: "ems", text: "fail-safe")) != nil)
        // Quiet: the flush tells what was held back, with the last value written.
        var flushed: [GridLogEntry] = []
        for t in 60..<80 { flushed += l.flush(at: at(Double(t))) }
        let lastJournalled = flushed.last?.text ?? passed.last!.text
        #expect(lastJournalled.hasSuffix("station setpoint 59 kW"), "\(lastJournalled)")
        #expect(flushed.count <= 1)
        // Every write is accounted for: passed, or counted in a note or a summary.
        func counted(_ e: GridLogEntry) -> Int {
            guard let r = e.text.range(of: #"\d+(?= (earlier )?ems-write event)"#, options: .regularExpression) else { return 0 }
            return Int(e.text[r])!
        }
        let total = passed.count + passed.map(counted).reduce(0, +) + flushed.map(counted).reduce(0, +)
        #expect(total == 60, "\(total)")
        // And once quiet for a minute, the burst is there again.
        var again = 0
        for i in 0..<10 where l.admit(GridLogEntry(at: at(200 + Double(i) * 0.1), kind: "ems-write", text: "x")) != nil { again += 1 }
        #expect(again == 10)
    }

    /// Through the hub: an EMS client connecting for each of 100 polls leaves a bounded trail.
    @Test func theHubHoldsBackAndFlushes() throws {
        let hub = GridHub(state: GridState(clock: cst, ems: nil, tou: TimeOfUse(), gridConnection: .kW(120), ratings: [.kW(60)], freeVend: true))
        var o = StationObservation()
        for i in 0..<100 {
            o.at = Instant(micros: Int64(i) * 100_000)
            _ = hub.tick(observation: o)
            hub.log("ems-client", "EMS client 127.0.0.1 connected")
        }
        let first = hub.takePending()
        #expect(first.count < 15, "\(first.count) records")
        o.at = Instant(micros: 60_000_000)
        _ = hub.tick(observation: o)
        let later = hub.takePending()
        #expect(later.count == 1)
        #expect(later.first?.text.contains("held back") == true)
    }
}

/// Issue 32 case 3: a million DataTransfers (each journalled before) through the hub in 100 s leave a
/// trail bounded by the rate, with the count of what was held back.
@Test func aMillionDataTransfersLeaveABoundedTrail() {
    let hub = GridHub(state: GridState(clock: cst, ems: nil, tou: TimeOfUse(), gridConnection: .kW(120), ratings: [.kW(60)], freeVend: true))
    var o = StationObservation()
    var journalled = 0
    for i in 0..<1_000_000 {
        if i % 10_000 == 0 {
            o.at = Instant(micros: Int64(i) * 100)
            _ = hub.tick(observation: o)
            journalled += hub.takePending().count
        }
        hub.log("ocpp-datatransfer", "DataTransfer from the central system: vendor 'x', message '\(i)'")
    }
    o.at = Instant(micros: 200_000_000)
    _ = hub.tick(observation: o)
    let last = hub.takePending()
    journalled += last.count
    // 10 at once, then one per 6 s over 100 s, and the closing note.
    #expect(journalled <= 10 + 100 / 6 + 2, "\(journalled) records")
    #expect(last.last?.text.contains("held back") == true)
}

/// OCPP-J 1.6 frames as types: what each hostile or careless text becomes, and the CALLERROR code a
/// payload that does not decode is answered with (OCPP-J 1.6 §4.2.3).
@Suite struct OCPPFrames {
    func decodeError(_ json: String, as type: (some Decodable).Type) -> (CallErrorCode, String)? {
        do { _ = try JSONValue(json: json).decode(type); return nil } catch { return CallErrorCode.of(error) }
    }

    @Test func framesParseOrSayWhyAndWhetherToAnswer() throws {
        #expect(OCPPFrame.parse(#"[2,"7","Heartbeat",{}]"#) == .success(.call(id: "7", action: "Heartbeat", payload: .object([:]))))
        #expect(OCPPFrame.parse(#"[3,"8",{"status":"Accepted","currentTime":"x","interval":30}]"#)
                == .success(.result(id: "8", payload: .object(["status": .string("Accepted"), "currentTime": .string("x"), "interval": .int(30)]))))
        #expect(OCPPFrame.parse(#"[4,"9","NotSupported","no",{}]"#) == .success(.error(id: "9", code: "NotSupported", text: "no")))
        // A CALL whose id can be read is answered (FormationViolation); anything else cannot be.
        for (text, answerable) in [(#"[2,"x6","Reset"]"#, true), (#"[2,"x7","Reset",[1]]"#, true), (#"[2,"x8",5,{}]"#, true),
                                   (#"[2,"x9","Reset",{},{}]"#, true), ("not json", false), (#"{"a":1}"#, false),
                                   (#"[2,7,"Reset",{}]"#, false), (#"[5,"x","Reset",{}]"#, false), (#"[3,"x"]"#, false)] {
            guard case .failure(let m) = OCPPFrame.parse(text) else { Issue.record("\(text) parsed"); continue }
            #expect((m.callId != nil) == answerable, "\(text): \(m.why)")
        }
    }

    @Test func decodeErrorsGetTheirCallErrorCode() {
        #expect(decodeError(#"{"connectorId":1}"#, as: ChangeAvailabilityReq.self)?.0 == .OccurenceConstraintViolation)
        #expect(decodeError(#"{"connectorId":1}"#, as: ChangeAvailabilityReq.self)?.1 == "type is required")
        #expect(decodeError(#"{"connectorId":"one","type":"Operative"}"#, as: ChangeAvailabilityReq.self)?.0 == .TypeConstraintViolation)
        #expect(decodeError(#"{"connectorId":"one","type":"Operative"}"#, as: ChangeAvailabilityReq.self)?.1 == "connectorId must be an integer")
        #expect(decodeError(#"{"connectorId":1,"type":"Sideways"}"#, as: ChangeAvailabilityReq.self)?.0 == .PropertyConstraintViolation)
        #expect(decodeError(#"{"connectorId":null,"type":"Operative"}"#, as: ChangeAvailabilityReq.self)?.0 == .OccurenceConstraintViolation)
        #expect(decodeError(#"{"connectorId":1.5,"type":"Operative"}"#, as: ChangeAvailabilityReq.self)?.0 == .TypeConstraintViolation)
        // A nested field is named by its path.
        let profile =
            #"{"connectorId":1,"csChargingProfiles":{"chargingProfileId":1,"stackLevel":0,"chargingProfilePurpose":"TxDefaultProfile","chargingProfileKind":"Absolute","chargingSchedule":{"chargingRateUnit":"W","chargingSchedulePeriod":[{"startPeriod":0}]}}}"#
        #expect(decodeError(profile, as: SetChargingProfileReq.self)?.1 == "csChargingProfiles.chargingSchedule.chargingSchedulePeriod[0].limit is required")
        #expect(decodeError(#"{"connectorId":0,"csChargingProfiles":{}}"#, as: SetChargingProfileReq.self)?.0 == .OccurenceConstraintViolation)
        #expect(decodeError(#"{"key":["HeartbeatInterval"]}"#, as: GetConfigurationReq.self) == nil)
        #expect(decodeError("{}", as: GetConfigurationReq.self) == nil)
    }

    @Test func everyOCPP16ActionIsKnownAndNothingElse() {
        #expect(OCPPAction.core16.count == 28)         // OCPP 1.6 edition 2, §6: 28 messages
        #expect(OCPPAction.core16.last == .TriggerMessage)
        #expect(OCPPAction.allCases.count == 28 + 11)  // and the security whitepaper's 11
        #expect(OCPPAction(rawValue: "SecurityEventNotification") == .SecurityEventNotification)
        #expect(OCPPAction(rawValue: "Reset") == .Reset)
        #expect(OCPPAction(rawValue: "reset") == nil)
        #expect(OCPPAction(rawValue: "FlyToTheMoon") == nil)
    }

    @Test func framesOutAreOCPPJWithOptionalFieldsLeftOut() throws {
        let boot = BootNotificationReq(chargePointVendor: "OpenDC", chargePointModel: "chargerd", chargePointSerialNumber: nil, firmwareVersion: "1.0")
        #expect(OCPPFrame.call(id: "1", action: .BootNotification, payload: boot)
                == #"[2,"1","BootNotification",{"chargePointModel":"chargerd","chargePointVendor":"OpenDC","firmwareVersion":"1.0"}]"#)
        #expect(OCPPFrame.call(id: "2", action: .Heartbeat, payload: HeartbeatReq()) == #"[2,"2","Heartbeat",{}]"#)
        #expect(OCPPFrame.result(id: "a\"b", payload: StatusConf(AvailabilityStatus.Scheduled)) == #"[3,"a\"b",{"status":"Scheduled"}]"#)
        #expect(OCPPFrame.error(id: "3", code: .NotSupported, text: "Reset is not supported") == #"[4,"3","NotSupported","Reset is not supported",{}]"#)
        // What goes out parses back to the same payload.
        let stop = StopTransactionReq(idTag: nil, meterStop: 1200, timestamp: "2026-11-24T00:00:00.000Z", transactionId: 1001, reason: .Remote)
        guard case .success(.call(_, "StopTransaction", let p)) = OCPPFrame.parse(OCPPFrame.call(id: "4", action: .StopTransaction, payload: stop)!) else {
            Issue.record("no round trip"); return
        }
        #expect(try p.decode(StopTransactionReq.self) == stop)
    }
}

/// Issue 21 §2: a connect that failed for lack of descriptors says so (it once read "no address").
@Test func aSocketThatCannotBeMadeSaysWhy() {
    #expect(WebSocketConnection.socketError(EMFILE) == "cannot make a socket: Too many open files (no file descriptor left)")
    #expect(WebSocketConnection.socketError(ENFILE).hasSuffix("(no file descriptor left)"))
    #expect(!WebSocketConnection.socketError(EACCES).contains("descriptor"))
}

/// V2G's discharge at peak (docs/grid.md "V2G"), with plain values: the clock starts at local midnight
/// 2026-11-24 (+08:00); peak 18:00-21:00, 12 kW of export asked per gun.
@Suite struct V2GPeakDischarge {
    var tou: TimeOfUse {
        var t = TimeOfUse(periods: [.init(startMinute: 0, kind: .valley), .init(startMinute: 420, kind: .flat),
                                    .init(startMinute: 1080, kind: .peak), .init(startMinute: 1260, kind: .flat),
                                    .init(startMinute: 1380, kind: .valley)], peak: .zero)
        t.peakDischarge = .kW(12)
        return t
    }
    func state(plan: DriverPlan?) -> GridState {
        var s = GridState(clock: cst, ems: nil, tou: tou, gridConnection: .kW(60), ratings: [.kW(60), .kW(60)], freeVend: true)
        s.plans[0] = plan
        return s
    }
    /// A car offering discharge down to 20 %, 80 kWh, at `soc`.
    func car(soc: Double, offers: Bool = true) -> GunObservation {
        var o = GunObservation()
        o.voltage = Volts(600); o.soc = soc; o.offersDischarge = offers; o.carMinSoc = 20; o.batteryEnergy = .kWh(80)
        return o
    }
    /// Epoch ms at local hour `h` of 2026-11-24 (hours past 24 are the next day).
    func hour(_ h: Double) -> Int64 { midnightCST + Int64(h * 3_600_000) }

    @Test func exportsAtPeakAboveThePlansMinimumWhileTheNightCanRefill() {
        let plan = DriverPlan(minSoc: 40, departure: hour(31), targetSoc: 80)   // 07:00 the next morning
        let s = state(plan: plan)
        #expect(s.peakDischargeSetpoint(0, at: hour(18.5), observation: car(soc: 70)) == Watts(-12_000))
        // At the plan's minimum (and half a point above it): hold at zero until the peak ends.
        #expect(s.peakDischargeSetpoint(0, at: hour(19), observation: car(soc: 40.4)) == .zero)
        // Outside the peak, without a plan, without the car's offer: the rule does not apply.
        #expect(s.peakDischargeSetpoint(0, at: hour(17.9), observation: car(soc: 70)) == nil)
        #expect(s.peakDischargeSetpoint(0, at: hour(21.1), observation: car(soc: 70)) == nil)
        #expect(state(plan: nil).peakDischargeSetpoint(0, at: hour(18.5), observation: car(soc: 70)) == nil)
        #expect(s.peakDischargeSetpoint(0, at: hour(18.5), observation: car(soc: 70, offers: false)) == nil)
        // The car's own minimum above the plan's binds too.
        var strict = car(soc: 45); strict.carMinSoc = 50
        #expect(s.peakDischargeSetpoint(0, at: hour(18.5), observation: strict) == .zero)
        // The feed carries it as the gun's setpoint, sourced from the time of use.
        let f = s.feed(at: cst.instant(epochMillis: hour(18.5)), guns: [car(soc: 70), GunObservation()])
        #expect(f.guns[0] == Watts(-12_000) && f.gunSources[0] == .touPeak)
        #expect(f.guns[1] == nil && f.station == .zero, "the peak's 0 kW holds the station's charging")
    }

    /// Departing at 22:00: one hour after the peak cannot put back 1.25 × (what the car lacks and the rest
    /// of the peak's export) at 80 % of its 30 kW share, so it does not export; at 07:00 it could.
    @Test func anEarlyDepartureKeepsTheCarsEnergy() {
        let early = state(plan: DriverPlan(minSoc: 40, departure: hour(22), targetSoc: 80))
        #expect(early.peakDischargeSetpoint(0, at: hour(18.5), observation: car(soc: 70)) == .zero)
        let late = state(plan: DriverPlan(minSoc: 40, departure: hour(31), targetSoc: 80))
        #expect(late.peakDischargeSetpoint(0, at: hour(18.5), observation: car(soc: 70)) == Watts(-12_000))
    }

    @Test func plansAreCheckedAndEndWithTheSession() throws {
        let hub = GridHub(state: state(plan: nil))
        var o = StationObservation(); o.at = cst.instant(epochMillis: hour(17.5)); o.guns = [GunObservation(), GunObservation()]
        _ = hub.tick(observation: o)
        guard case .failure(let r) = hub.setPlan(gun: 0, minSoc: 80, departureMinute: 420, targetSoc: 70) else { Issue.record("refused"); return }
        #expect(r.why.contains("must be above min-soc"))
        guard case .failure = hub.setPlan(gun: 5, minSoc: 40, departureMinute: 420, targetSoc: 80) else { Issue.record("no gun 5"); return }
        guard case .success(let text) = hub.setPlan(gun: 0, minSoc: 40, departureMinute: 420, targetSoc: 80) else { Issue.record("accepted"); return }
        #expect(text.contains("no lower than 40 %") && text.contains("80 % by 07:00"))
        // 07:00 is the next morning's (the first after 17:30).
        #expect(hub.state.plans[0]?.departure == hour(31))
        #expect(hub.sessionEnded(gun: 0, soc: 80.2, at: cst.instant(epochMillis: hour(23))) == true)
        #expect(hub.state.plans[0] == nil, "the plan ends with the session")
        #expect(hub.sessionEnded(gun: 0, soc: 80, at: cst.instant(epochMillis: hour(23))) == nil)
        _ = hub.setPlan(gun: 1, minSoc: 40, departureMinute: 420, targetSoc: 80)
        #expect(hub.sessionEnded(gun: 1, soc: 70, at: cst.instant(epochMillis: hour(23))) == false)
        _ = hub.setPlan(gun: 1, minSoc: 40, departureMinute: 420, targetSoc: 80)
        #expect(hub.sessionEnded(gun: 1, soc: 80, at: cst.instant(epochMillis: hour(31.5))) == false, "reached after the departure")
        #expect(hub.takePending().filter { $0.kind == "v2g" }.count == 6)
    }
}
