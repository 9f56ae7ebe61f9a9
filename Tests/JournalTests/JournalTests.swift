// The journal on storage: framing and checksums, the torn tail cut at every possible byte, rotation
// and retention, the sequence across restarts, and the operator figures.
import Foundation
import Journal
import Testing

func tempDir() -> String {
    let d = NSTemporaryDirectory() + "journal-test-\(getpid())-\(UUID().uuidString)"
    try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
    return d
}

func faultEntry(_ t: Double, gun: Int? = 0) -> JournalEntry {
    JournalEntry(.fault(FaultNote(gun: gun, code: "E05-insulation", reaction: "error-shutdown")), t: t)
}
func bootEntry() -> JournalEntry { JournalEntry(.boot(text: "test"), t: 0) }

@Suite struct JournalOnStorage {
    @Test func crc32KnownVector() {
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
        #expect(CRC32.checksum([UInt8]()) == 0)
    }

    @Test func appendsAreReadBackInOrderAcrossRestarts() throws {
        let dir = tempDir()
        do {
            let j = try Journal(directory: dir)
            for i in 0..<10 { j.append(faultEntry(Double(i))) }
        }
        let j2 = try Journal(directory: dir)
        #expect(j2.openReport.contains("10 records"))
        let e = j2.append(bootEntry())
        #expect(e.seq == 11)
        #expect(e.boot == 2)
        let all = Journal.readAll(directory: dir)
        #expect(all.problems.isEmpty)
        #expect(all.entries.map(\.seq) == Array(1...11))
    }

    /// A power cut can stop a write at any byte: cut the file at every offset of the last record, and
    /// at each one the records before it are kept, the tail is dropped and the cut is recorded.
    @Test func tornTailIsDroppedAtEveryCut() throws {
        let dir = tempDir()
        do {
            let j = try Journal(directory: dir)
            for i in 0..<3 { j.append(JournalEntry(.sessionEnd(SessionNote(gun: 0, energyKWh: Double(i), soc: nil, stopReason: "vehicle-bst")), t: Double(i))) }
        }
        let path = dir + "/journal-000001.log"
        let whole = try Data(contentsOf: URL(fileURLWithPath: path))
        let lastStart = JournalScan(bytes: Array(whole)).entries.count == 3 ? {
            // offset of the third record: scan the first two
            var at = 0
            let b = Array(whole)
            for _ in 0..<2 { at += 12 + Int(UInt32(b[at + 4]) | UInt32(b[at + 5]) << 8 | UInt32(b[at + 6]) << 16 | UInt32(b[at + 7]) << 24) }
            return at
        }() : 0
        #expect(lastStart > 0)
        for cut in lastStart..<(whole.count) {
            try whole.prefix(cut).write(to: URL(fileURLWithPath: path))
            let j = try Journal(directory: dir)
            if cut > lastStart { #expect(j.openReport.contains("torn tail of \(cut - lastStart) bytes dropped"), "cut \(cut): \(j.openReport)") }
            let all = Journal.readAll(directory: dir)
            #expect(all.problems.isEmpty, "cut \(cut): \(all.problems)")
            #expect(Array(all.entries.prefix(2).map(\.seq)) == [1, 2])
            #expect(!all.entries.contains { $0.seq == 3 && $0.kind == "session-end" })
            if cut > lastStart { #expect(all.entries.last?.kind == "torn-tail") }
        }
    }

    /// A flipped bit in the tail is damage like a cut: the checksum catches it.
    @Test func corruptedRecordIsCaughtByItsChecksum() throws {
        let dir = tempDir()
        do { let j = try Journal(directory: dir); j.append(faultEntry(1)); j.append(faultEntry(2)) }
        let path = dir + "/journal-000001.log"
        var b = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        b[b.count - 3] ^= 0x20
        try Data(b).write(to: URL(fileURLWithPath: path))
        let scan = JournalScan(bytes: b)
        #expect(scan.entries.count == 1)
        #expect(scan.problem?.contains("checksum mismatch") == true)
        let j = try Journal(directory: dir)
        #expect(j.openReport.contains("torn tail"))
    }

    @Test func rotatesAndKeepsTheNewestFiles() throws {
        let dir = tempDir()
        let j = try Journal(directory: dir, maxBytes: 4096, files: 3)
        for i in 0..<400 { j.append(JournalEntry(.command(user: "tech", command: String(repeating: "x", count: 40), result: "ok", gun: nil), t: Double(i))) }
        let names = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".log") }.sorted()
        #expect(names.count == 3)
        for n in names {
            let size = (try FileManager.default.attributesOfItem(atPath: dir + "/" + n)[.size] as? Int) ?? 0
            #expect(size <= 4096)
        }
        let all = Journal.readAll(directory: dir)
        // Every file begins with its checkpoint (SafetyStateSurvivesFloods), which takes a number too:
        // numbers contiguous from the oldest kept record, the records the newest 400 appended.
        let seqs = all.entries.map(\.seq)
        #expect(seqs == Array(seqs.first!...seqs.last!))
        #expect(all.entries.first?.kind == "checkpoint")
        let records = all.entries.filter { $0.kind != "checkpoint" }
        #expect(records.last.map { $0.t } == 399)
        #expect(j.recent(5).map(\.t) == [395, 396, 397, 398, 399])
    }

    @Test func unwritableDirectoryIsAClearError() {
        #expect(throws: JournalError.self) { try Journal(directory: "/proc/no-such-dir/journal") }
        do { _ = try Journal(directory: "/proc/no-such-dir/journal") } catch {
            #expect("\(error)".contains("/proc/no-such-dir/journal"))
        }
    }
}

func codes(_ e: JournalEntry) -> String { if case .fault(let f) = e.event { f.code } else { "not a fault: \(e.kind)" } }

/// Records are typed events on the way in and out, and the same flat JSON objects on storage: journals
/// written before the events were typed read as the same events, and a record this version cannot read
/// as an event is kept and written back byte for byte.
@Suite struct RecordsOnStorage {
    /// Records as the version before typed events wrote them (payloads of JournalScan.frame, keys sorted).
    static let written = [
        #"{"boot":3,"kind":"boot","seq":1,"t":0,"text":"chargerd 0.9, board sim-60kw (Boards\/sim-60kw.toml, checksum 1a2b)","wall":"2026-11-26T08:00:00.000Z"}"#,
        #"{"boot":3,"code":"E05-insulation","faultSeq":1,"gun":0,"kind":"fault","reaction":"error-shutdown","seq":2,"t":12.5,"value":91000,"wall":"2026-11-26T08:00:12.500Z"}"#,
        #"{"boot":3,"code":"E05-insulation","faultSeq":1,"gun":0,"kind":"fault-cleared","reaction":"error-shutdown","seq":3,"t":40,"value":91000,"wall":"2026-11-26T08:00:40.000Z"}"#,
        #"{"boot":3,"energyKWh":12.25,"gun":1,"kind":"session-end","seq":4,"soc":80.5,"stopReason":"vehicle-bst","t":100,"wall":"2026-11-26T08:01:40.000Z"}"#,
        #"{"boot":3,"command":"fault reset","kind":"command","result":"fault E05 cleared","seq":5,"t":101,"user":"tech","wall":"2026-11-26T08:01:41.000Z"}"#,
        #"{"boot":3,"command":"ocpp","kind":"grid","seq":6,"t":102,"text":"BootNotification accepted","wall":"2026-11-26T08:01:42.000Z"}"#,
        #"{"boot":3,"kind":"logout","seq":7,"t":103,"text":"by command","user":"tech","wall":"2026-11-26T08:01:43.000Z"}"#,
        // A kind from a newer version, and a fault missing its code: kept as read.
        #"{"boot":3,"kind":"v2g-export","seq":8,"t":104,"text":"12 kWh","value":12,"wall":"2026-11-26T08:01:44.000Z"}"#,
        #"{"boot":3,"faultSeq":2,"kind":"fault","seq":9,"t":105,"wall":"2026-11-26T08:01:45.000Z"}"#,
        // The car link's event (kind "can", issue 18).
        #"{"boot":3,"gun":0,"kind":"can","seq":10,"t":106,"text":"can0: controller bus-off (error frame class 0x40)","wall":"2026-11-26T08:01:46.000Z"}"#,
    ]

    @Test func oldRecordsReadAsEventsAndWriteBackTheSame() throws {
        var bytes: [UInt8] = []
        for w in Self.written {
            let payload = Array(w.utf8)
            for v in [JournalScan.magic, UInt32(payload.count), CRC32.checksum(payload)] { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
            bytes += payload
        }
        let scan = JournalScan(bytes: bytes)
        #expect(scan.problem == nil && scan.entries.count == Self.written.count)
        let e = scan.entries
        #expect(e[0].event == .boot(text: "chargerd 0.9, board sim-60kw (Boards/sim-60kw.toml, checksum 1a2b)"))
        #expect(e[1].event == .fault(FaultNote(gun: 0, code: "E05-insulation", reaction: "error-shutdown", value: 91000, faultSeq: 1)))
        #expect(e[1].seq == 2 && e[1].boot == 3 && e[1].t == 12.5 && e[1].wall == "2026-11-26T08:00:12.500Z")
        #expect(e[2].event == .faultCleared(FaultNote(gun: 0, code: "E05-insulation", reaction: "error-shutdown", value: 91000, faultSeq: 1)))
        #expect(e[3].event == .sessionEnd(SessionNote(gun: 1, energyKWh: 12.25, soc: 80.5, stopReason: "vehicle-bst")))
        #expect(e[4].event == .command(user: "tech", command: "fault reset", result: "fault E05 cleared", gun: nil))
        #expect(e[5].event == .grid(source: "ocpp", text: "BootNotification accepted"))
        #expect(e[6].event == .logout(user: "tech", why: "by command"))
        guard case .unreadable(let newer) = e[7].event, case .unreadable(let broken) = e[8].event else {
            Issue.record("\(e[7].event), \(e[8].event)"); return
        }
        #expect(newer.kind == "v2g-export" && newer.value == 12 && broken.faultSeq == 2)
        #expect(e[7].kind == "v2g-export" && e[8].line.hasSuffix("s fault fault#2"))
        #expect(e[9].event == .carLink(gun: 0, text: "can0: controller bus-off (error frame class 0x40)") && e[9].kind == "can")
        // Written back: the same bytes, each record.
        for (entry, w) in zip(e, Self.written) {
            #expect(String(decoding: JournalScan.frame(entry).dropFirst(12), as: UTF8.self) == w)
        }
        // A fault record without its code latches nothing after a restart (it cannot be named).
        #expect(Journal.outstandingFaults(e).isEmpty)
    }
}

/// A restart is not a reset: the faults that stood when the controller stopped are found on open.
@Suite struct LatchedAcrossRestarts {
    func fault(_ kind: String, _ code: String, gun: Int?, seq: UInt64, reaction: String = "error-shutdown") -> JournalEntry {
        let note = FaultNote(gun: gun, code: code, reaction: reaction, faultSeq: seq)
        return JournalEntry(kind == "fault" ? .fault(note) : .faultCleared(note), t: 1)
    }

    @Test func outstandingFaultsAcrossBoots() throws {
        let dir = tempDir()
        do {   // boot 1: E02 (station) and E05 on gun 1 latched, E05 cleared, E13 latched; a derate fault
            let j = try Journal(directory: dir)
            j.append(bootEntry())
            j.append(fault("fault", "E02-door-open", gun: nil, seq: 1))
            j.append(fault("fault", "E05-insulation", gun: 1, seq: 2))
            j.append(fault("fault-cleared", "E05-insulation", gun: 1, seq: 2))
            j.append(fault("fault", "E13-gun-over-temperature", gun: 0, seq: 3))
            j.append(fault("fault", "E23-module-comm-lost", gun: 0, seq: 4, reaction: "derate"))
        }
        let j2 = try Journal(directory: dir)
        #expect(j2.latchedAtStart.map(codes) == ["E02-door-open", "E13-gun-over-temperature"])
        // Boot 2 latches them again (its own fault numbers from 1) and clears only E13; it is killed
        // before anything else. Boot 3 must still see E02, whose record of boot 1 was never cleared.
        j2.append(bootEntry())
        j2.append(fault("fault", "E02-door-open", gun: nil, seq: 1))
        j2.append(fault("fault", "E13-gun-over-temperature", gun: 0, seq: 2))
        j2.append(fault("fault-cleared", "E13-gun-over-temperature", gun: 0, seq: 2))
        let j3 = try Journal(directory: dir)
        #expect(j3.latchedAtStart.map(codes) == ["E02-door-open"])
        // A boot killed before it latched anything again changes nothing.
        j3.append(bootEntry())
        #expect(try Journal(directory: dir).latchedAtStart.map(codes) == ["E02-door-open"])
        // A clearing in another boot with the same fault number does not clear it.
        #expect(Journal.outstandingFaults([fault("fault", "E02-door-open", gun: nil, seq: 1)]
                                          + [{ var e = fault("fault-cleared", "E02-door-open", gun: nil, seq: 1); e.boot = 9; return e }()]).count == 1)
    }
}

@Suite struct OperatorFigures {
    @Test func availabilityAndSuccessRate() {
        func e(
            _ kind: String, _ t: Double, gun: Int?, seq: UInt64? = nil, energy: Double? = nil, stop: String? = nil, reaction: String? = nil,
            boot: UInt64 = 1
        ) -> JournalEntry {
            let fault = FaultNote(gun: gun, code: "E05-insulation", reaction: reaction ?? "error-shutdown", faultSeq: seq)
            let session = SessionNote(gun: gun ?? 0, energyKWh: energy, soc: nil, stopReason: stop)
            let event: JournalEvent = switch kind {
            case "fault": .fault(fault)
            case "fault-cleared": .faultCleared(fault)
            case "session-start": .sessionStart(session)
            case "session-end": .sessionEnd(session)
            case "boot": .boot(text: "test")
            default: .shutdown(text: "run ended")
            }
            var x = JournalEntry(event, t: t)
            x.boot = boot
            return x
        }
        let entries = [
            e("boot", 0, gun: nil),
            e("session-start", 10, gun: 0, energy: 100),
            e("session-end", 100, gun: 0, energy: 110, stop: "vehicle-bst"),          // success
            e("session-start", 200, gun: 0, energy: 110),
            e("fault", 250, gun: 0, seq: 1, reaction: "error-shutdown"),
            e("session-end", 251, gun: 0, energy: 111, stop: "fault"),                 // failed
            e("fault-cleared", 350, gun: 0, seq: 1),                                   // 100 s faulted
            e("fault", 500, gun: nil, seq: 2, reaction: "emergency-shutdown"),       // station-wide, never cleared
            e("boot", 0, gun: nil, boot: 2),                                           // boot 1 ended at 500 + 0
            e("session-start", 10, gun: 1, energy: 0, boot: 2),
            e("session-end", 20, gun: 1, energy: 0, stop: "vehicle-bst", boot: 2),    // no energy: not a success
            e("shutdown", 1000, gun: nil, boot: 2),
        ]
        let s = OperatorStats(entries: entries, guns: 2)
        #expect(s.coveredSeconds == 1500)
        #expect(s.faultedSeconds[0] == 100)
        #expect(s.faultedSeconds[1] == 0)
        #expect(s.availability(gun: 0) == 1 - 100.0 / 1500)
        #expect(s.sessionsStarted == 3)
        #expect(s.sessionsSucceeded == 1)
        #expect(abs(s.energyKWh - 11) < 1e-9)
        #expect(s.text.contains("1 of 3 sessions"))
        #expect(s.exportedKWh == 0 && s.departureShare == nil && !s.text.contains("V2G"))
    }

    /// V2G's figures: energy exported over the sessions (the export register's rise from start to end),
    /// and the share of sessions with a driver's plan that met its departure target; both in the text and
    /// the JSON, and through the stored form (a record read back says the same).
    @Test func exportedEnergyAndDepartureShare() throws {
        func session(_ start: Bool, _ t: Double, gun: Int, energy: Double, export: Double, met: Bool? = nil) -> JournalEntry {
            let n = SessionNote(gun: gun, energyKWh: energy, soc: 80, stopReason: start ? nil : "vehicle-bst", exportKWh: export, departureMet: met)
            return JournalEntry(start ? .sessionStart(n) : .sessionEnd(n), t: t)
        }
        let written = [
            session(true, 10, gun: 0, energy: 100, export: 5),
            session(true, 20, gun: 1, energy: 50, export: 0),
            session(false, 900, gun: 0, energy: 130, export: 26.5, met: true),     // 21.5 kWh exported
            session(false, 950, gun: 1, energy: 70, export: 16, met: false),       // 16 kWh, target missed
            session(true, 1000, gun: 0, energy: 130, export: 26.5),
            session(false, 1100, gun: 0, energy: 140, export: 26.5),               // no plan, nothing exported
        ]
        let stored = try written.map { try JSONDecoder().decode(JournalEntry.self, from: JSONEncoder().encode($0)) }
        #expect(stored.map(\.event) == written.map(\.event))
        let s = OperatorStats(entries: stored, guns: 2)
        #expect(abs(s.exportedKWh - 37.5) < 1e-9)
        #expect(s.sessionsWithPlan == 2 && s.departuresMet == 1 && s.departureShare == 0.5)
        #expect(s.text.contains("37.500 kWh exported") && s.text.contains("50.0 % (1 of 2 sessions with a driver's plan)"))
        #expect(s.json.contains("\"exportedKWh\":37.5") && s.json.contains("\"departureShare\":0.5"))
    }
}

/// Issue 36, ask 4: time out of service is planned, kept apart and not counted against availability;
/// the service report counts faults by code (a fault latched again at a restart once), lists the
/// sessions (cut short by a restart, in progress) and adds up to `journal stats`.
@Suite struct ServiceFigures {
    static func at(_ event: JournalEvent, _ t: Double, boot: UInt64 = 1, seq: UInt64 = 0) -> JournalEntry {
        var e = JournalEntry(event, t: t)
        e.boot = boot
        e.seq = seq
        e.wall = Journal.wallText(1_800_000_000 + Double(boot) * 100_000 + t)
        return e
    }
    static func fault(_ gun: Int?, _ seq: UInt64, code: String = "E05-insulation", text: String? = nil) -> JournalEvent {
        .fault(FaultNote(gun: gun, code: code, reaction: "error-shutdown", value: 40_000, faultSeq: seq, text: text))
    }
    static func cleared(_ gun: Int?, _ seq: UInt64) -> JournalEvent { .faultCleared(FaultNote(gun: gun, code: "E05-insulation", reaction: "error-shutdown", faultSeq: seq)) }
    static func start(_ gun: Int, _ kwh: Double) -> JournalEvent { .sessionStart(SessionNote(gun: gun, energyKWh: kwh, soc: nil)) }
    static func end(_ gun: Int, _ kwh: Double, _ why: String) -> JournalEvent {
        .sessionEnd(SessionNote(gun: gun, energyKWh: kwh, soc: 80, stopReason: why))
    }

    @Test func outOfServiceTimeIsNotCountedAgainstAvailability() {
        let entries = [
            Self.at(.boot(text: "chargerd t, board b, 2 guns"), 0),
            Self.at(.service(gun: 1, out: true), 100),
            Self.at(Self.fault(1, 1), 200),                 // faulted while out of service: not counted
            Self.at(.service(gun: 1, out: false), 1100),    // 1000 s out of service
            Self.at(Self.cleared(1, 1), 1300),              // 200 s of it faulted in service
            Self.at(.service(gun: 0, out: true), 1500),     // never back: out of service to the boot's end
            Self.at(.service(gun: 7, out: true), 1600),     // a gun the station does not have: ignored
            Self.at(.shutdown(text: "signal"), 2000),
        ]
        let s = OperatorStats(entries: entries, guns: 2)
        #expect(s.coveredSeconds == 2000)
        #expect(s.outOfServiceSeconds[1] == 1000 && s.outOfServiceSeconds[0] == 500)
        #expect(s.faultedSeconds[1] == 200 && s.faultedSeconds[0] == 0)
        #expect(s.availability(gun: 1) == 1 - 200.0 / 1000)
        #expect(s.availability(gun: 0) == 1)
        #expect(s.text.contains("gun1: availability 80.00 % (faulted 200 s; out of service 1000 s, not counted)"), "\(s.text)")
        #expect(s.json.contains("\"outOfServiceSeconds\":{\"gun0\":500,\"gun1\":1000}"), "\(s.json)")
        // A gun out of service for all the time covered is not unavailable.
        let all = OperatorStats(entries: [Self.at(.service(gun: 0, out: true), 0), Self.at(.shutdown(text: "x"), 50)], guns: 1)
        #expect(all.availability(gun: 0) == 1)
        // The service record reads back as it was written; a text it does not know is not a service edge.
        let stored = entries.map { (try? JSONDecoder().decode(JournalEntry.self, from: JSONEncoder().encode($0)))?.event }
        #expect(stored == entries.map(\.event))
        var odd = JournalEntry(.service(gun: 0, out: true), t: 0).fields
        odd.text = "sideways"
        #expect(JournalEntry(odd).kind == "service")
        if case .service = JournalEntry(odd).event { Issue.record("an unknown service text read as an edge") }
    }

    /// Issue 37: the metering figures: sessions checked, mean and worst deviation, E34 and E35 counted
    /// (a record latched again at a restart is not a new one); through the stored form.
    @Test func meteringFigures() throws {
        func end(_ d: Double?) -> JournalEvent {
            var n = SessionNote(gun: 0, energyKWh: 10, soc: 80, stopReason: "vehicle-bst")
            n.chargerKWh = 9.9; n.deviationPercent = d
            return .sessionEnd(n)
        }
        let entries = [
            Self.at(Self.start(0, 0), 1), Self.at(end(0.1), 100),
            Self.at(Self.start(0, 10), 200), Self.at(end(-2.3), 300),
            Self.at(Self.fault(0, 1, code: "E34-metering-deviation"), 290),
            Self.at(Self.start(0, 20), 400), Self.at(end(nil), 500),          // not judged (a register anomaly)
            Self.at(Self.fault(0, 2, code: "E35-meter-register"), 450),
            Self.at(Self.fault(0, 1, code: "E34-metering-deviation", text: "latched again at start: it stood when the controller stopped"), 0, boot: 2),
        ]
        let stored = try entries.map { try JSONDecoder().decode(JournalEntry.self, from: JSONEncoder().encode($0)) }
        #expect(stored.map(\.event) == entries.map(\.event))
        let s = OperatorStats(entries: stored, guns: 1)
        #expect(s.meteringChecked == 2 && s.meteringFaults == 1 && s.registerAnomalies == 1)
        #expect(abs((s.meanDeviationPercent ?? 0) - -1.1) < 1e-9 && s.worstDeviationPercent == -2.3)
        #expect(s.text.contains("metering: 2 session(s) checked against the charger, deviation mean -1.10 %, worst -2.30 %"), "\(s.text)")
        #expect(s.json.contains("\"meteringFaults\":1") && s.json.contains("\"worstDeviationPercent\":-2.3"), "\(s.json)")
        #expect(stored[3].line.contains("charger 9.900 kWh deviation -2.30 %"), "\(stored[3].line)")
    }

    /// Issue 37: the plug-and-charge figures from the authorization records (VIN accepted, refused,
    /// refused with a fallback; an idTag's record is not one), through the stored form; the session records
    /// keep who authorized them.
    @Test func plugAndChargeFigures() throws {
        func auth(_ method: String, _ verdict: String) -> JournalEvent {
            .authorization(AuthorizationNote(gun: 0, method: method, identity: "VINLFV**********2345", verdict: verdict, text: "why"))
        }
        var start = SessionNote(gun: 0, energyKWh: 0, soc: 20)
        start.method = "vin"; start.identity = "VINLFV**********2345"
        let entries = [
            Self.at(auth("vin", "accepted"), 1), Self.at(.sessionStart(start), 2),
            Self.at(auth("vin", "refused"), 100), Self.at(auth("vin", "refused-fallback"), 200),
            Self.at(auth("vin", "accepted"), 300), Self.at(auth("idtag", "accepted"), 400),
        ]
        let stored = try entries.map { try JSONDecoder().decode(JournalEntry.self, from: JSONEncoder().encode($0)) }
        #expect(stored.map(\.event) == entries.map(\.event))
        let s = OperatorStats(entries: stored, guns: 1)
        #expect((s.vinAccepted, s.vinRefused, s.vinFellBack) == (2, 1, 1))
        #expect(s.text.contains("plug and charge: 2 car(s) authorized by VIN, 1 refused, 1 fell back"), "\(s.text)")
        #expect(s.json.contains("\"vinAccepted\":2") && s.json.contains("\"vinFellBack\":1"), "\(s.json)")
        #expect(stored[0].line.hasSuffix("authorization gun0 by vin VINLFV**********2345 accepted why"), "\(stored[0].line)")
        #expect(stored[1].line.contains("by vin VINLFV**********2345"), "\(stored[1].line)")
        // A record missing its verdict is kept as unreadable, not taken for a decision.
        var f = stored[0].fields
        f.verdict = nil
        if case .authorization = JournalEntry(f).event { Issue.record("an authorization record with no verdict read as one") }
    }

    @Test func theReportCountsFaultsAndListsSessions() {
        let entries = [
            Self.at(.boot(text: "chargerd t, board b, 2 guns"), 0, seq: 1),
            Self.at(Self.start(0, 100), 10, seq: 2),
            Self.at(Self.end(0, 120, "vehicle-bst"), 610, seq: 3),          // 10 min, 20 kWh
            Self.at(Self.start(1, 50), 700, seq: 4),
            Self.at(Self.fault(1, 1), 800, seq: 5),
            Self.at(Self.end(1, 51.5, "fault"), 801, seq: 6),
            Self.at(Self.fault(nil, 2, code: "E01-emergency-stop"), 900, seq: 7),
            Self.at(Self.start(0, 120), 950, seq: 8),                        // kill -9: cut short
            Self.at(.boot(text: "chargerd t, board b, 2 guns"), 0, boot: 2, seq: 9),
            Self.at(Self.fault(1, 1, text: "latched again at start: it stood when the controller stopped"), 0, boot: 2, seq: 10),
            Self.at(Self.start(0, 121), 30, boot: 2, seq: 11),               // still charging
        ]
        let r = ServiceReport(entries: entries, guns: 2)
        #expect(r.firstSeq == 1 && r.lastSeq == 11)
        #expect(r.faults.map(\.code) == ["E01-emergency-stop", "E05-insulation"] && r.faults.map(\.count) == [1, 1])
        #expect(r.faults.map(\.guns) == ["station", "gun1"])
        #expect(r.relatched == 1)
        #expect(r.sessions.map(\.ended) == ["vehicle-bst", "fault", "cut short", "in progress"])
        #expect(r.sessions[0].minutes == 10 && r.sessions[0].energyKWh == 20)
        #expect(r.sessions[1].energyKWh == 1.5)
        // The headline is stats' own; the list adds up to it.
        #expect(r.stats.sessionsStarted + r.stats.sessionsInProgress == r.sessions.count)
        #expect(abs(r.sessions.compactMap(\.energyKWh).reduce(0, +) - r.stats.energyKWh) < 1e-9)
        let text = r.text()
        #expect(text.contains("Sessions: 4, 1 delivered energy and ended normally, 1 in progress\n  21.500 kWh delivered"), "\(text)")
        #expect(text.split(separator: "\n").allSatisfy { $0.count <= 80 }, "\(text)")
        // The console's screen keeps the newest sessions and says how many it left out.
        let short = r.text(sessionLimit: 2)
        #expect(short.contains("(2 older session(s): chargerd journal report)") && !short.contains("vehicle-bst"))
        #expect(ServiceReport(entries: [], guns: 1).text() == "service report: the journal is empty")
    }
}

/// The console's window: a fixed ring, bounded by records and by bytes, whatever the records are.
/// Issue 36, wrong answer 8: `journal stats --guns` defaulted to 1 (a two-gun journal lost gun 1) and
/// took any count (`--guns 3` on a one-gun journal reported guns 1 and 2 at 100 %).
@Suite struct StatsGunCount {
    static func boot(_ text: String) -> JournalEntry { JournalEntry(.boot(text: text), t: 0) }
    static func session(gun: Int) -> JournalEntry { JournalEntry(.sessionStart(SessionNote(gun: gun, energyKWh: 1, soc: nil)), t: 10) }
    static let twoGuns = "chargerd 1.0, board sim-dual-360kw (Boards/sim-dual-360kw.toml, checksum 1a2b), 2 guns"
    static let oneGun = "chargerd 1.0, board sim-60kw (Boards/sim-60kw.toml, checksum 1a2b), 1 gun"

    @Test func theBootRecordsGiveTheCount() throws {
        let r = try OperatorStats.gunsFor(entries: [Self.boot(Self.twoGuns), Self.session(gun: 1)], asked: nil).get()
        #expect(r.count == 2 && r.note == nil)
        #expect(OperatorStats.statedGunCount([Self.boot(Self.oneGun)]) == 1)
        // A board file whose name ends in digits is not a gun count.
        #expect(OperatorStats.statedGunCount([Self.boot("chargerd 1.0, board x (y, checksum 12)")]) == nil)
    }

    @Test func aCountThatDisagreesIsRefused() {
        let one = [Self.boot(Self.oneGun), Self.session(gun: 0)]
        #expect(throws: OperatorStats.GunCountError.self) { try OperatorStats.gunsFor(entries: one, asked: 3).get() }
        let two = [Self.boot(Self.twoGuns), Self.session(gun: 1)]
        #expect(throws: OperatorStats.GunCountError.self) { try OperatorStats.gunsFor(entries: two, asked: 1).get() }
        #expect(throws: OperatorStats.GunCountError.self) { try OperatorStats.gunsFor(entries: two, asked: 0).get() }
        #expect(throws: OperatorStats.GunCountError.self) { try OperatorStats.gunsFor(entries: two, asked: 13).get() }
        #expect((try? OperatorStats.gunsFor(entries: two, asked: 2).get())?.count == 2)
        // A record on a gun the boot records do not have: the journal does not add up.
        #expect(throws: OperatorStats.GunCountError.self) {
            try OperatorStats.gunsFor(entries: [Self.boot(Self.oneGun), Self.session(gun: 1)], asked: nil).get()
        }
    }

    @Test func anOlderJournalCountsTheGunsItNames() throws {
        let old = [Self.boot("chargerd 0.9, board sim-dual-360kw (b.toml, checksum 1a2b)"), Self.session(gun: 0), Self.session(gun: 1)]
        let r = try OperatorStats.gunsFor(entries: old, asked: nil).get()
        #expect(r.count == 2)
        #expect(r.note?.contains("no boot record states the gun count") == true)
        // A gun number beyond the core's capacity is an error naming it, not a count.
        let hostile = [Self.boot("x"), Self.session(gun: 1_000_000)]
        #expect(throws: OperatorStats.GunCountError(message: "a record names gun 1000000, beyond the core's 12 guns")) {
            try OperatorStats.gunsFor(entries: hostile, asked: nil).get()
        }
        #expect(throws: OperatorStats.GunCountError(message: "the journal's boot records say 99 guns, beyond the core's 12")) {
            try OperatorStats.gunsFor(entries: [Self.boot("chargerd 1.0, board x (y, checksum 1), 99 guns")], asked: nil).get()
        }
    }
}

/// Issue 36, wrong answer 7: `stats` counted the session still charging as a failure ("0.0 % (0 of 1)"
/// during the first charge).
@Suite struct SessionsInProgress {
    static func start(_ t: Double, boot: UInt64 = 1) -> JournalEntry {
        var e = JournalEntry(.sessionStart(SessionNote(gun: 0, energyKWh: 0, soc: 20)), t: t); e.boot = boot; return e
    }
    static func other(_ event: JournalEvent, _ t: Double, boot: UInt64 = 1) -> JournalEntry {
        var e = JournalEntry(event, t: t); e.boot = boot; return e
    }

    @Test func aSessionStillChargingIsNotAFailure() {
        let s = OperatorStats(entries: [Self.other(.boot(text: "b, 1 gun"), 0), Self.start(10)], guns: 1)
        #expect(s.sessionsStarted == 0 && s.sessionsInProgress == 1)
        #expect(s.successRate == nil)
        #expect(s.text.contains("no session ended yet; 1 in progress, not counted"), "\(s.text)")
        #expect(s.json.contains("\"sessionsInProgress\":1"))
    }

    @Test func oneCutShortByAShutdownOrARestartIs() {
        // Stopped by a signal mid-session: the shutdown record ends it.
        let stopped = OperatorStats(entries: [Self.other(.boot(text: "b"), 0), Self.start(10), Self.other(.shutdown(text: "SIGTERM"), 20)], guns: 1)
        #expect(stopped.sessionsStarted == 1 && stopped.sessionsInProgress == 0 && stopped.successRate == 0)
        // Killed mid-session, then restarted: the later boot ends it.
        let killed = OperatorStats(entries: [Self.other(.boot(text: "b"), 0), Self.start(10), Self.other(.boot(text: "b"), 0, boot: 2)], guns: 1)
        #expect(killed.sessionsStarted == 1 && killed.sessionsInProgress == 0)
    }
}

@Suite struct RecentWindow {
    func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }
    func texts(_ r: RecentRing, _ n: Int) -> [String] { r.last(n).map { String(decoding: $0, as: UTF8.self) } }

    @Test func boundedByCountThenByBytesAcrossTheWrap() {
        var r = RecentRing(limit: 3, byteCapacity: 10)
        for s in ["aa", "bb", "cc", "dd"] { r.append(bytes(s)) }
        #expect(texts(r, 5) == ["bb", "cc", "dd"])                 // the oldest beyond 3 records went
        r.append(bytes("eeeee"))                                  // 5 bytes: wraps at the end (byte 8 → 3)
        #expect(texts(r, 5) == ["cc", "dd", "eeeee"])
        r.append(bytes("ffffff"))                                 // 6 bytes: every older record must go
        #expect(texts(r, 5) == ["ffffff"])
        #expect(texts(r, 1) == ["ffffff"])
        r.append(bytes("0123456789A"))                            // larger than the ring: not kept
        #expect(texts(r, 5) == ["ffffff"])
        r.append(bytes("gggg"))
        #expect(texts(r, 5) == ["ffffff", "gggg"])
        #expect(texts(r, 0) == [])
    }

    @Test func theWindowHoldsTheLastRecordsAndItsMemoryIsFixed() throws {
        let j = try Journal(directory: nil)
        for i in 0..<2000 { j.append(JournalEntry(.command(user: nil, command: "status \(i)", result: "ok", gun: nil), t: Double(i))) }
        let r = j.recent()
        #expect(r.count == Journal.recentLimit)
        #expect(r.first?.seq == 1501 && r.last?.seq == 2000)
        #expect(j.recent(3).map(\.seq) == [1998, 1999, 2000])
    }
}

/// idTags and technicians' names are in the journal: not for every local user to read.
@Test func journalFilesAreNotWorldReadable() throws {
    let dir = tempDir() + "/journal"
    let j = try Journal(directory: dir)
    j.append(JournalEntry(.command(user: "tech", command: "status", result: "ok", gun: nil), t: 0))
    var st = stat()
    #expect(stat(dir, &st) == 0 && st.st_mode & 0o007 == 0, "directory mode \(String(st.st_mode & 0o777, radix: 8))")
    #expect(stat(dir + "/journal-000001.log", &st) == 0 && st.st_mode & 0o007 == 0, "file mode \(String(st.st_mode & 0o777, radix: 8))")
}

/// Issue 32 case 3: a flood of records (60,000 DataTransfers on the CM4's journal size) rotated a latched
/// E02 and a console lockout out of the journal, and the next start forgot both. Every new file now
/// begins with a checkpoint of the safety state.
@Suite struct SafetyStateSurvivesFloods {
    func codes(_ e: JournalEntry) -> String { if case .fault(let f) = e.event { return f.code }; return e.kind }

    @Test func latchedFaultsAndLockoutsOutliveAnyNumberOfRecordsAfterThem() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let kinds: [(Int) -> JournalEvent] = [
            { .grid(source: "ocpp-datatransfer", text: "DataTransfer \($0) from the central system: vendor 'x'") },
            { .grid(source: "ems-write", text: "EMS 10.0.0.9: station setpoint \($0) kW") },
            { .command(user: "tech", command: "cap 0 \($0 % 60)", result: "ok", gun: 0) },
            { .sessionStart(SessionNote(gun: $0 % 2, energyKWh: Double($0), soc: 20)) },
            { .loopOverrun(count: Double($0)) },
        ]
        do {
            // A 4 kB file size and two files: a rotation about every 20 records, the oldest file deleted each time.
            let j = try Journal(directory: dir, maxBytes: 4096, files: 2)
            j.append(bootEntry())
            j.append(JournalEntry(.fault(FaultNote(gun: nil, code: "E02-door-open", reaction: "emergency-shutdown", faultSeq: 1)), t: 1))
            j.append(JournalEntry(.fault(FaultNote(gun: 1, code: "E05-insulation", reaction: "error-shutdown", value: 40_000, faultSeq: 2)), t: 2))
            j.append(JournalEntry(.loginFailed(user: "tech", text: "wrong password"), t: 3))
            j.append(JournalEntry(.lockout(user: "tech", text: "5 failures: locked for 300 s"), t: 4))
            for (k, make) in kinds.enumerated() {
                for i in 0..<2_000 { j.append(JournalEntry(make(i), t: 5 + Double(k * 2_000 + i) / 1000)) }
            }
            #expect(j.counters.errors == 0)
        }
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix("journal-") }
        #expect(files.count == 2, "\(files)")
        let first = JournalScan(bytes: Array(FileManager.default.contents(atPath: dir + "/" + files.sorted()[0])!))
        #expect(first.entries.first?.kind == "checkpoint", "a rotated file begins with its checkpoint")
        #expect(!first.entries.contains { $0.kind == "lockout" || $0.kind == "fault" }, "the records themselves are long gone")
        let again = try Journal(directory: dir, maxBytes: 4096, files: 2)
        #expect(again.latchedAtStart.map(codes) == ["E02-door-open", "E05-insulation"])
        #expect(again.latchedAtStart.last.flatMap { if case .fault(let f) = $0.event { return f.value }; return nil } == 40_000,
                "the reading that tripped is kept")
        #expect(again.loginRecordsAtStart.map(\.kind) == ["login-failed", "lockout"], "the lockout is replayed once, not doubled")
    }

    @Test func aClearedFaultIsNotCarriedAndCheckpointsDoNotCountTwice() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        do {
            let j = try Journal(directory: dir, maxBytes: 4096, files: 3)
            j.append(bootEntry())
            j.append(JournalEntry(.fault(FaultNote(gun: 0, code: "E13-gun-over-temperature", reaction: "error-shutdown", faultSeq: 1)), t: 1))
            for i in 0..<200 { j.append(JournalEntry(.loopOverrun(count: Double(i)), t: 2)) }
            j.append(JournalEntry(.faultCleared(FaultNote(gun: 0, code: "E13-gun-over-temperature", reaction: "error-shutdown", faultSeq: 1)), t: 3))
            for i in 0..<200 { j.append(JournalEntry(.loginFailed(user: "u\(i)", text: "wrong"), t: 4)) }
        }
        let again = try Journal(directory: dir, maxBytes: 4096, files: 3)
        #expect(again.latchedAtStart.isEmpty)
        #expect(again.loginRecordsAtStart.count == SafetyLedger.loginLimit)
        #expect(again.loginRecordsAtStart.last?.event == .loginFailed(user: "u199", text: "wrong"))
        #expect(Set(again.loginRecordsAtStart.map(\.seq)).count == SafetyLedger.loginLimit, "no record twice")
        // Read whole (journal export/stats), the same.
        let (entries, problems) = Journal.readAll(directory: dir)
        #expect(problems.isEmpty)
        #expect(Journal.outstandingFaults(entries).isEmpty)
    }
}

/// Issue 32 case 7: a --journal that was a symlink to a 0777 directory holding a journal-NNNNNN.log symlink
/// to a file outside: chargerd, as root, truncated that file and wrote records into it.
@Suite struct JournalPathSafety {
    @Test func aDirectoryOthersCanWriteOrReachThroughALinkIsRefused() throws {
        let top = tempDir()
        defer { try? FileManager.default.removeItem(atPath: top) }
        let open = top + "/open"
        mkdir(open, 0o777); chmod(open, 0o777)
        symlink(open, top + "/journal")
        #expect { try Journal(directory: top + "/journal") } throws: { "\($0)".contains("writable by every user") }
        let group = top + "/group"
        mkdir(group, 0o770); chmod(group, 0o770)
        #expect { try Journal(directory: group) } throws: { "\($0)".contains("writable by its group") }
    }

    @Test func aJournalFileThatIsALinkIsNeitherReadNorWritten() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        chmod(dir, 0o750)
        let outside = dir + ".outside"
        FileManager.default.createFile(atPath: outside, contents: Data("precious\n".utf8))
        defer { unlink(outside) }
        symlink(outside, dir + "/journal-000001.log")
        #expect { try Journal(directory: dir) } throws: { "\($0)".contains("cannot open for appending") && "\($0)".contains("symbolic links") }
        #expect(String(decoding: FileManager.default.contents(atPath: outside)!, as: UTF8.self) == "precious\n", "neither cut nor written")
        // A link among older files is not read either (nor is a torn tail cut through it).
        unlink(dir + "/journal-000001.log")
        do { let j = try Journal(directory: dir); j.append(bootEntry()) }
        symlink(outside, dir + "/journal-000000.log")
        let j = try Journal(directory: dir)
        #expect(j.openReport.contains("1 records"), "\(j.openReport)")
        #expect(String(decoding: FileManager.default.contents(atPath: outside)!, as: UTF8.self) == "precious\n")
    }
}

/// Issue 37, part 3: what `journal verify` makes of signatures, with the key's check given (a stand-in
/// that accepts a signature spelling the payload's CRC; OpenSSL's own is tested in Tests/cli/journal-verify.py).
@Suite struct SignedSessionRecords {
    func entry(_ seq: UInt64, _ e: JournalEvent) -> JournalEntry { var x = JournalEntry(e, t: Double(seq)); x.seq = seq; return x }
    func end(_ seq: UInt64, kWh: Double) -> JournalEntry { entry(seq, .sessionEnd(SessionNote(gun: 0, energyKWh: kWh, soc: 80, stopReason: "vehicle-bst"))) }
    func sign(_ e: JournalEntry, _ seq: UInt64, key: String = "k1") -> JournalEntry {
        entry(seq, .signature(of: e.seq, key: key, signature: String(CRC32.checksum(JournalScan.payload(e)))))
    }
    func check(_ payload: [UInt8], _ sig: String) -> Bool { sig == String(CRC32.checksum(payload)) }

    @Test func untouchedRecordsVerifyAndOlderOnesCountAsUnsigned() {
        let old = end(1, kWh: 3), signed = end(2, kWh: 5)
        let r = SignedRecords(entries: [old, signed, sign(signed, 3)], keyId: "k1", check: check)
        #expect(r.verified == [2] && r.unsigned == [1] && r.problems.isEmpty && r.otherKeys.isEmpty, "\(r.text)")
    }

    @Test func anEditedARemovedAndAMisplacedSignatureAreEachNamed() {
        let first = end(1, kWh: 3)
        var edited = end(3, kWh: 5)
        let sig = sign(edited, 4)
        edited.event = .sessionEnd(SessionNote(gun: 0, energyKWh: 6, soc: 80, stopReason: "vehicle-bst"))
        let unsignedLater = end(5, kWh: 7)
        let orphan = entry(6, .signature(of: 40, key: "k1", signature: "x"))
        let r = SignedRecords(entries: [first, sign(first, 2), edited, sig, unsignedLater, orphan], keyId: "k1", check: check)
        #expect(r.verified == [1])
        #expect(r.problems.map(\.seq) == [3, 5, 6], "\(r.text)")
        #expect(r.problems[0].text.contains("changed after it was signed"))
        #expect(r.problems[1].text.contains("no signature, after the journal began signing at #1"))
        #expect(r.problems[2].text.contains("record #40, which is not in the journal"))
    }

    @Test func gapsAndOtherKeysAreReported() {
        let a = end(10, kWh: 1), b = end(13, kWh: 2)
        let r = SignedRecords(entries: [a, sign(a, 11, key: "k2"), b, sign(b, 14)], keyId: "k1", check: check)
        #expect(r.verified == [13] && r.otherKeys == [10: "k2"])
        #expect(r.problems.map(\.description) == ["record #13: record #12 is missing between #11 and #13 (removed?)"], "\(r.text)")
    }
}
