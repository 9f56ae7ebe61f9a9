// The whole OCPP charge point under hostile frames: not the frame parser alone (the `ocpp` target) but
// every action's handler, the answers to its own calls and the state they leave, through the same
// ChargePoint chargerd's transport drives (OCPPChargePoint).
import ChargerCore
import Grid
import LoopContract
import OCPPChargePoint
import SiteFile

extension FuzzTargets {
    /// The longest journal line a frame may cause: the frame's own text is cut before it goes there.
    static let maxLogLine = 4096
    /// The most effects one frame and the send after it may cause (no amplification).
    static let maxEffectsPerFrame = 64

    /// Two guns, booted and connected, a transaction running on the first; then each line of the bytes
    /// (at most 16) is a frame from the central system, a second apart, and what is due goes out after
    /// it. The first byte picks the site: free vend, VIN, a firmware directory, Reset possible. Holds:
    /// every CALL is answered once (or handed to the transport, or an UnlockConnector waits for the lock),
    /// every frame sent reads back, one call of ours at a time, the journal lines stay short, the state's
    /// per-gun arrays keep their length and the queue names real guns.
    static func chargePoint(_ data: [UInt8]) {
        let (sel, rest) = split(data)
        var config = OCPPConfig(url: "ws://127.0.0.1:9000/ocpp", chargePointId: "CP-FUZZ")
        config.freeVend = sel & 1 != 0
        if sel & 2 != 0 { config.authorize = [.vin, .idtag, .remote] }
        if sel & 4 != 0 { config.firmwareDirectory = "/nonexistent/firmware" }
        let clock = StationClock(epochMillisAtZero: 1_795_000_000_000, utcOffsetSeconds: 8 * 3600)
        let grid = GridState(clock: clock, ems: nil, tou: TimeOfUse(), gridConnection: .kW(240), ratings: [.kW(120), .kW(120)],
                             freeVend: config.freeVend)
        var cp = ChargePoint(config: config, firmware: "fuzz", gunCount: 2, grid: grid)
        cp.canReset = sel & 8 != 0
        cp.connected = true
        var o = StationObservation()
        o.guns = [GunObservation(), GunObservation()]
        cp.observation = o
        // Booted, then a session on gun 0.
        cp.sendDue()
        if let p = cp.pending { cp.receive("[3,\"\(p.id)\",{\"status\":\"Accepted\",\"currentTime\":\"2026-11-24T00:00:00Z\",\"interval\":300}]") }
        require(cp.booted, "the charge point boots on an accepted BootNotification")
        let edge = SessionEdge(gun: 0, started: true, at: .zero, meterEnergy: .kWh(1), soc: 40, stopReason: .none)
        cp.loopSaid([.phase(gun: 0, .connected, at: .zero), .session(edge)], observation: nil)
        _ = cp.takeEffects()

        var t = 0.0
        // A line's first 8 KiB (the WebSocket's own bound is the transport's; the handlers are what is
        // explored here, and a megabyte line only costs time).
        for line in rest.split(separator: UInt8(ascii: "\n"), maxSplits: 16, omittingEmptySubsequences: true).prefix(16) {
            t += 1
            cp.now = t
            let text = String(decoding: line.prefix(8192), as: UTF8.self)
            cp.receive(text)
            let waiting = cp.pending != nil
            var effects = cp.takeEffects()
            cp.sendDue()
            let sent = cp.takeEffects()
            require(!waiting || !sent.contains { if case .send(let f) = $0 { return f.hasPrefix("[2,") }; return false },
                    "a call sent while another waits for its answer")
            effects += sent
            require(effects.count <= maxEffectsPerFrame, "\(effects.count) effects from one frame")
            var sentCalls = 0
            var answers: [String: Int] = [:]
            var delegated: Set<String> = []
            for e in effects {
                switch e {
                case .send(let frame):
                    guard case .success(let f) = OCPPFrame.parse(frame) else { return require(false, "a frame sent does not read back: \(frame.prefix(200))") }
                    switch f {
                    case .call: sentCalls += 1
                    case .result(let id, _), .error(let id, _, _): answers[id, default: 0] += 1
                    }
                case .log(_, let line), .authorization(_, let line):
                    require(line.utf8.count <= maxLogLine, "a journal line of \(line.utf8.count) bytes")
                case .delegated(let id, _, _): delegated.insert(id)
                default: break
                }
            }
            require(sentCalls <= 1, "\(sentCalls) calls sent at once")
            if case .success(.call(let id, let action, _)) = OCPPFrame.parse(text) {
                let n = (answers[id] ?? 0) + (delegated.contains(id) ? 1 : 0)
                require(n == 1 || (n == 0 && action == "UnlockConnector"), "CALL \(action) \(id.prefix(40)) answered \(n) times")
            }
            require(cp.txRef.count == 2 && cp.idTag.count == 2 && cp.phase.count == 2, "the per-gun state keeps its length")
            require(cp.grid.authorized.count == 2 && cp.grid.unavailable.count == 2 && cp.grid.stopCount.count == 2,
                    "the grid state keeps its length")
            require(cp.queue.messages.allSatisfy { (0..<2).contains($0.gun) }, "the queue names real guns")
            require(cp.securityEvents.count <= 50, "at most 50 security events wait")
        }
    }
}
