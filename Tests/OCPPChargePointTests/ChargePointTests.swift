// The OCPP charge point as a state machine, with plain values (issue 34): frames, loop events and the time
// go in; the frames it sends, its journal lines, the state files it stores and the grid state it changes
// come out. No socket, no thread, no clock: this target links neither GridInterfaces nor anything with
// I/O; test_ocpp.py proves the same against the `ocpp` package's central system over a real WebSocket.
import ChargerCore
import Grid
import LoopContract
import OCPPChargePoint
import SiteFile
import Testing

/// 2026-11-24T00:00:00+08:00 (local midnight in China).
let cst = StationClock(epochMillisAtZero: Timestamp.parse("2026-11-24T00:00:00+08:00")!, utcOffsetSeconds: 8 * 3600)
func at(_ s: Double) -> Instant { Instant(micros: Int64(s * 1e6)) }

/// A charge point on `guns` guns and the frames it sent, driven step by step in time.
struct CentralSystemDesk {
    var cp: ChargePoint
    /// Every effect so far, in order.
    var effects: [ChargePointEffect] = []
    var t = 0.0

    init(guns: Int = 1, _ configure: (inout OCPPConfig) -> Void = { _ in }) {
        var config = OCPPConfig(url: "ws://127.0.0.1:9000/ocpp", chargePointId: "CP-1")
        configure(&config)
        let grid = GridState(clock: cst, ems: nil, tou: TimeOfUse(), gridConnection: .kW(120), ratings: Array(repeating: .kW(60), count: guns),
                             freeVend: config.freeVend)
        cp = ChargePoint(config: config, firmware: "test", gunCount: guns, grid: grid)
        cp.canReset = true
        var o = StationObservation()
        o.guns = Array(repeating: GunObservation(), count: guns)
        cp.observation = o
    }

    /// One step at `t` seconds; its effects.
    @discardableResult
    mutating func step(at t: Double? = nil, connected: Bool = true, _ body: (inout ChargePoint) -> Void) -> [ChargePointEffect] {
        if let t { self.t = t }
        cp.now = self.t
        cp.connected = connected
        body(&cp)
        let e = cp.takeEffects()
        effects += e
        return e
    }

    /// The frames among `e`.
    static func frames(_ e: [ChargePointEffect]) -> [OCPPFrame] {
        e.compactMap { if case .send(let text) = $0, case .success(let f) = OCPPFrame.parse(text) { return f }; return nil }
    }

    /// The one CALL among `e`: its id, action and payload.
    static func call(_ e: [ChargePointEffect]) -> (id: String, action: String, payload: JSONValue)? {
        for f in frames(e) { if case .call(let id, let action, let payload) = f { return (id, action, payload) } }
        return nil
    }

    /// Sends what is due and answers the call that went out with `payload` (JSON); the call.
    @discardableResult
    mutating func exchange(_ payload: String) -> (id: String, action: String, payload: JSONValue)? {
        guard let c = Self.call(step { $0.sendDue() }) else { return nil }
        step { $0.receive("[3,\"\(c.id)\",\(payload)]") }
        return c
    }

    /// Booted: BootNotification accepted, then every connector's first StatusNotification answered.
    mutating func boot() {
        let c = exchange(#"{"status":"Accepted","currentTime":"2026-11-24T00:00:00Z","interval":300}"#)
        #expect(c?.action == "BootNotification")
        #expect(cp.booted)
        for k in 0...cp.gunCount {
            let s = exchange("{}")
            #expect(s?.action == "StatusNotification")
            #expect(s.flatMap { try? $0.payload.decode(StatusNotificationReq.self) }?.connectorId == k)
        }
    }

    /// The CALLRESULT or CALLERROR answering the central system's call `id` among `e`.
    static func answer(_ e: [ChargePointEffect], _ id: String) -> OCPPFrame? {
        frames(e).first {
            switch $0 {
            case .result(let i, _), .error(let i, _, _): i == id
            default: false
            }
        }
    }

    static func status<T: Decodable>(_ e: [ChargePointEffect], _ id: String, _ type: T.Type) -> T? {
        guard case .result(_, let p)? = answer(e, id) else { return nil }
        return try? p.decode(T.self)
    }

    mutating func phase(_ g: Int, _ p: SessionPhase) {
        let e = LoopEvent.phase(gun: Int8(g), p, at: at(t))
        step { $0.loopSaid([e], observation: nil) }
    }

    mutating func session(_ g: Int, started: Bool, kWh: Double, reason: StopReason = .none) {
        let edge = SessionEdge(gun: Int8(g), started: started, at: at(t), meterEnergy: .kWh(kWh), soc: 50, stopReason: reason)
        step { $0.loopSaid([.session(edge)], observation: nil) }
    }
}

struct StatusConfText: Decodable { var status: String }

@Suite struct ChargePointMachine {
    @Test func bootsThenSaysEveryConnectorsStatusOneCallAtATime() {
        var d = CentralSystemDesk(guns: 2)
        // Offline nothing goes out.
        #expect(CentralSystemDesk.frames(d.step(connected: false) { $0.sendDue() }).isEmpty)
        let boot = d.step { $0.sendDue() }
        #expect(CentralSystemDesk.call(boot)?.action == "BootNotification")
        // One call at a time: nothing more while BootNotification waits for its answer.
        #expect(CentralSystemDesk.frames(d.step { $0.sendDue() }).isEmpty)
        d.step { $0.receive("[3,\"\(CentralSystemDesk.call(boot)!.id)\",{\"status\":\"Pending\",\"currentTime\":\"2026-11-24T00:00:00Z\",\"interval\":10}]") }
        #expect(!d.cp.booted)
        // Pending: asked again after the interval, not before.
        #expect(CentralSystemDesk.frames(d.step(at: 5) { $0.sendDue() }).isEmpty)
        d.t = 10
        d.boot()
        // Then the heartbeat once its interval has passed with nothing sent.
        #expect(CentralSystemDesk.frames(d.step(at: 100) { $0.sendDue() }).isEmpty)
        #expect(CentralSystemDesk.call(d.step(at: 400) { $0.sendDue() })?.action == "Heartbeat")
    }

    @Test func aRemoteStartedTransactionGoesOutWithTheCentralSystemsId() throws {
        var d = CentralSystemDesk()
        d.boot()
        let start = d.step { $0.receive(#"[2,"cs-1","RemoteStartTransaction",{"idTag":"TAG-1","connectorId":1}]"#) }
        #expect(CentralSystemDesk.status(start, "cs-1", StatusConfText.self)?.status == "Accepted")
        #expect(d.cp.grid.authorized[0])
        d.phase(0, .connected)
        d.session(0, started: true, kWh: 10)
        #expect(d.effects.contains(.save(.queue)))
        let s1 = d.exchange("{}")   // the status change (Preparing)
        #expect(s1?.action == "StatusNotification")
        let answered = d.exchange(#"{"idTagInfo":{"status":"Accepted"},"transactionId":42}"#)
        let st = try #require(answered)
        #expect(st.action == "StartTransaction")
        let req = try st.payload.decode(StartTransactionReq.self)
        #expect(req.idTag == "TAG-1" && req.connectorId == 1 && req.meterStart == 10_000)
        #expect(d.cp.txRef[0] == 42)
        #expect(d.cp.grid.transactions[0]?.id == 42)
        // RemoteStop names the central system's id.
        let stop = d.step { $0.receive(#"[2,"cs-2","RemoteStopTransaction",{"transactionId":42}]"#) }
        #expect(CentralSystemDesk.status(stop, "cs-2", StatusConfText.self)?.status == "Accepted")
        #expect(d.cp.grid.stopCount[0] == 1)
        d.session(0, started: false, kWh: 25.5, reason: .operatorRequest)
        var sent: StopTransactionReq? = nil
        for _ in 0..<4 {
            guard let c = d.exchange(#"{"idTagInfo":{"status":"Accepted"}}"#) else { break }
            if c.action == "StopTransaction" { sent = try c.payload.decode(StopTransactionReq.self) }
        }
        let stopReq = try #require(sent)
        #expect(stopReq.transactionId == 42 && stopReq.meterStop == 25_500 && stopReq.reason == .Remote)
        #expect(d.cp.queue.messages.isEmpty)
        #expect(d.cp.grid.transactions[0] == nil)
    }

    @Test func offlineTransactionsWaitInOrderAndTheLocalReferenceIsResolved() throws {
        var d = CentralSystemDesk { $0.freeVend = true }
        d.boot()
        // The connection is lost: the session runs, its messages wait on storage.
        d.step(connected: false) { $0.connectionLost() }
        d.phase(0, .connected)
        d.session(0, started: true, kWh: 1)
        d.session(0, started: false, kWh: 2, reason: .vehicleRequest)
        #expect(CentralSystemDesk.frames(d.step(connected: false) { $0.sendDue() }).isEmpty)
        #expect(d.cp.queue.messages.map(\.action) == ["StartTransaction", "StopTransaction"])
        #expect(d.cp.queue.messages.allSatisfy { $0.txRef < 0 })
        // Back online: statuses first, then the queue in order; the stop carries the id the start got.
        d.step { $0.connectionMade() }
        var actions: [String] = []
        var stop: StopTransactionReq? = nil
        for _ in 0..<8 {
            guard let c = d.exchange(#"{"idTagInfo":{"status":"Accepted"},"transactionId":7}"#) else { break }
            actions.append(c.action)
            if c.action == "StopTransaction" { stop = try c.payload.decode(StopTransactionReq.self) }
        }
        #expect(actions.filter { $0 != "StatusNotification" && $0 != "Heartbeat" } == ["StartTransaction", "StopTransaction"])
        #expect(stop?.transactionId == 7 && stop?.idTag == "FREEVEND" && stop?.reason == .EVDisconnected)
        #expect(d.cp.queue.messages.isEmpty)
    }

    @Test func hostileAndCarelessFramesGetTheCallErrorThatSaysWhy() {
        var d = CentralSystemDesk()
        d.boot()
        func code(_ frame: String, _ id: String) -> String? {
            guard case .error(_, let c, _)? = CentralSystemDesk.answer(d.step { $0.receive(frame) }, id) else { return nil }
            return c
        }
        #expect(code(#"[2,"a","NoSuchAction",{}]"#, "a") == "NotImplemented")
        #expect(code(#"[2,"b","RemoteStopTransaction",{"transactionId":"x"}]"#, "b") == "TypeConstraintViolation")
        #expect(code(#"[2,"c","RemoteStopTransaction",{}]"#, "c") == "OccurenceConstraintViolation")
        #expect(code(#"[2,"d","DataTransfer",{"vendorId":"\#(String(repeating: "v", count: 300))"}]"#, "d") == "PropertyConstraintViolation")
        #expect(code(#"[2,"e","GetCompositeSchedule",{"connectorId":1,"duration":-5}]"#, "e") == "PropertyConstraintViolation")
        #expect(code(#"[2,"f","RemoteStopTransaction",[1,2]]"#, "f") == "FormationViolation")
        // Not a frame at all: nothing to answer, a journal line only; the charge point goes on.
        let junk = d.step { $0.receive("\u{0}\u{1}garbage") }
        #expect(CentralSystemDesk.frames(junk).isEmpty)
        #expect(junk.contains { if case .log("ocpp-refused", _) = $0 { return true }; return false })
        // An answer to no call of ours changes nothing.
        d.step { $0.receive(#"[3,"999",{"status":"Accepted"}]"#) }
        #expect(d.cp.booted && d.cp.pending == nil)
    }

    @Test func resetStopsTheTransactionFirstAndRestartsOnceItIsOut() {
        var d = CentralSystemDesk { $0.freeVend = true }
        d.cp.canReset = false
        d.boot()
        let refused = d.step { $0.receive(#"[2,"r0","Reset",{"type":"Soft"}]"#) }
        #expect(CentralSystemDesk.status(refused, "r0", StatusConfText.self)?.status == "Rejected")
        d.cp.canReset = true
        d.phase(0, .connected)
        d.session(0, started: true, kWh: 1)
        let accepted = d.step { $0.receive(#"[2,"r1","Reset",{"type":"Soft"}]"#) }
        #expect(CentralSystemDesk.status(accepted, "r1", StatusConfText.self)?.status == "Accepted")
        #expect(d.cp.grid.stopCount[0] == 1)
        // Soft: no restart while the transaction runs or its messages wait.
        d.session(0, started: false, kWh: 3, reason: .operatorRequest)
        var restarted = false, reason: StopTransactionReason? = nil
        for _ in 0..<10 {
            let e = d.step { $0.sendDue() }
            if e.contains(.reset(.Soft)) { restarted = true; #expect(d.cp.queue.messages.isEmpty); break }
            guard let c = CentralSystemDesk.call(e) else { continue }
            if c.action == "StopTransaction" { reason = (try? c.payload.decode(StopTransactionReq.self))?.reason }
            d.step { $0.receive("[3,\"\(c.id)\",{\"idTagInfo\":{\"status\":\"Accepted\"},\"transactionId\":5}]") }
        }
        #expect(reason == .SoftReset)
        #expect(restarted)
        // Asked once only.
        #expect(!d.step { $0.sendDue() }.contains(.reset(.Soft)))
    }

    @Test func availabilityChangedDuringATransactionWaitsForItsEnd() {
        var d = CentralSystemDesk { $0.freeVend = true }
        d.boot()
        d.phase(0, .connected)
        d.session(0, started: true, kWh: 1)
        let e = d.step { $0.receive(#"[2,"a1","ChangeAvailability",{"connectorId":1,"type":"Inoperative"}]"#) }
        #expect(CentralSystemDesk.status(e, "a1", StatusConfText.self)?.status == "Scheduled")
        #expect(!d.cp.grid.unavailable[0])
        d.session(0, started: false, kWh: 2)
        #expect(d.cp.grid.unavailable[0])
        #expect(d.effects.contains(.save(.availability)))
        let bad = d.step { $0.receive(#"[2,"a2","ChangeAvailability",{"connectorId":7,"type":"Operative"}]"#) }
        #expect(CentralSystemDesk.status(bad, "a2", StatusConfText.self)?.status == "Rejected")
    }

    @Test func filesCertificatesAndTransfersAreTheTransportsWork() {
        var d = CentralSystemDesk { $0.firmwareDirectory = "/var/lib/chargerd/firmware" }
        d.boot()
        for (id, frame) in [("u", #"[2,"u","UpdateFirmware",{"location":"http://x/fw","retrieveDate":"2026-11-24T00:00:00Z"}]"#),
                            ("k", #"[2,"k","ChangeConfiguration",{"key":"AuthorizationKey","value":"00112233445566778899aabbccddeeff"}]"#),
                            ("g", #"[2,"g","GetLog",{"logType":"SecurityLog","requestId":1,"log":{"remoteLocation":"ftp://x/"}}]"#)] {
            let e = d.step { $0.receive(frame) }
            // Handed over whole, not answered here.
            #expect(CentralSystemDesk.answer(e, id) == nil)
            #expect(e.contains { if case .delegated(id, _, _) = $0 { return true }; return false })
        }
        // The key never shows in the journal.
        #expect(!d.effects.contains { if case .log(_, let t) = $0 { return t.contains("00112233") }; return false })
    }

    @Test func aCallUnansweredPastItsTimeoutEndsTheConnection() {
        var d = CentralSystemDesk()
        let boot = d.step(at: 0) { $0.sendDue() }
        #expect(CentralSystemDesk.call(boot) != nil)
        #expect(!d.step(at: 29) { $0.sendDue() }.contains { if case .disconnect = $0 { return true }; return false })
        let late = d.step(at: 31) { $0.sendDue() }
        #expect(late.contains { if case .disconnect(let why, now: false) = $0 { return why.contains("BootNotification") }; return false })
        d.step { $0.connectionLost() }
        #expect(d.cp.pending == nil)
    }

    @Test func theSameInputsGiveTheSameEffects() {
        func run() -> [ChargePointEffect] {
            var d = CentralSystemDesk(guns: 2)
            d.boot()
            d.step { $0.receive(#"[2,"1","RemoteStartTransaction",{"idTag":"T"}]"#) }
            d.phase(0, .connected)
            d.session(0, started: true, kWh: 3)
            d.step { $0.receive(#"[2,"2","TriggerMessage",{"requestedMessage":"MeterValues","connectorId":1}]"#) }
            for s in 0..<6 { d.exchange(#"{"idTagInfo":{"status":"Accepted"},"transactionId":9}"#); d.t += Double(s) }
            return d.effects
        }
        let a = run()
        #expect(a.count > 10)
        #expect(a == run())
    }
}
