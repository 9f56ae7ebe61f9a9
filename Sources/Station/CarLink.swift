// chargerd's car links: the guns a board file puts on CAN ([[can]]) talk GB/T 27930 through SocketCAN;
// every other gun keeps the board's own link (the bench channel's simulated car, or none on a real board).
import BoardFile
import CANLink
import ChargerCore
import ChargerHAL
import Journal
import RealTime
#if canImport(Glibc)
import Glibc
#endif

/// Routes each gun to its link. On a bench board the charger's broadcast also goes to the channel
/// (`mirrorToFallback`): the plant's car model follows it for what a bench's battery emulator does
/// (its contactors), while its messages are read from the wire.
package final class RoutedVehicleLink: VehicleLink {
    package let can: SocketCANLink
    package let fallback: any VehicleLink
    package let onCAN: [Bool]
    package let mirrorToFallback: Bool
    package init(can: SocketCANLink, fallback: any VehicleLink, guns: Int, mirrorToFallback: Bool) {
        self.can = can; self.fallback = fallback; self.mirrorToFallback = mirrorToFallback
        var on = [Bool](repeating: false, count: guns)
        for l in can.links where l.gun < guns { on[l.gun] = true }
        onCAN = on
    }
    package func receive(gun: Int, into messages: inout VehicleMessages) {
        if onCAN[gun] { can.receive(gun: gun, into: &messages) } else { fallback.receive(gun: gun, into: &messages) }
    }
    package func transmit(gun: Int, _ messages: ChargerMessages) {
        if onCAN[gun] {
            can.transmit(gun: gun, messages)
            if mirrorToFallback { fallback.transmit(gun: gun, messages) }
        } else { fallback.transmit(gun: gun, messages) }
    }
}

/// Opens the board's CAN links (nil: the board has none), their events into the journal, and starts
/// the link's thread. A link that cannot open stops the start with the reason (exit 2), like a GPIO line
/// or a serial port would, after `cleanup` (outputs safe, the hardware watchdog disarmed).
package func openCANLinks(board: Board, clock: LoopClock, logPath: String?, desk: OperatorDesk, cleanup: () -> Void = {}) -> SocketCANLink? {
    guard !board.can.isEmpty else {
        if logPath != nil { cleanup(); fail("--can-log: board '\(board.name)' has no car link on CAN ([[can]])") }
        return nil
    }
    let link: SocketCANLink
    do {
        link = try SocketCANLink(links: board.can, guns: board.spec.gunCount, clock: clock, logPath: logPath)
        try link.start()
    } catch {
        cleanup()
        fail("board '\(board.name)' (\(board.path)): \(error)")
    }
    let journal = desk.journal
    let started = monotonicNanos()
    link.onEvent = { gun, text in
        journal.append(JournalEntry(.carLink(gun: gun, text: text), t: Double(monotonicNanos() - started) / 1e9))
        print("can: gun \(gun) \(text)")
        fflush(nil)
    }
    for l in board.can {
        print("chargerd: gun \(l.gun) car link on \(l.interface) (GB/T 27930, \(l.bitrate / 1000) kbit/s as wired; charger 0x\(hex2(l.chargerAddress)), BMS 0x\(hex2(l.bmsAddress)))"
              + (logPath.map { ", candump log \($0)" } ?? ""))
    }
    for i in link.interfacesDown {
        writeStderr("chargerd: warning: \(i) is down: no car is heard on it until it is up (ip link set \(i) up type can bitrate 250000)\n")
    }
    fflush(nil)
    return link
}

package func hex2(_ v: UInt8) -> String { let t = String(v, radix: 16, uppercase: true); return t.count < 2 ? "0" + t : t }

/// The console's `can`: per link, the counters, the controller state, each car message's age and the
/// last frames.
package func canReport(_ link: SocketCANLink) -> String {
    let now = realtimeMicros()
    var out: [String] = []
    let names = ["BHM", "BRM", "BCP", "BRO", "BCL", "BCS", "BSM", "BST", "BSD"]
    for c in link.counters() {
        var s = "gun \(c.gun) on \(c.interface): controller \(c.controllerState)\n"
        s += "  frames    rx \(c.rxFrames)  tx \(c.txFrames)  messages \(c.messages)  malformed \(c.malformed)  unknown PGN \(c.unknownPGN)  not J1939 \(c.notJ1939)\n"
        s += "  errors    error frames \(c.errorFrames)  bus-off \(c.busOff)  restarts \(c.restarts)  send failures \(c.txFailures)  rx overflow \(c.rxOverflow)\n"
        s += "  transport completed \(c.tpCompleted)  aborted \(c.tpAborts)  timed out \(c.tpTimeouts)  repeated packets \(c.tpDuplicates)\n"
        s += "  car       " + names.enumerated().map { i, n in
            c.lastArrival[i] == 0 ? "\(n) -" : "\(n) \(fmtAge(now - c.lastArrival[i]))"
        }.joined(separator: "  ") + "\n"
        s += "  delay     kernel to loop buffer, largest \(c.maxDelayMicros) µs"
        if c.bem > 0 { s += "\n  BEM       \(c.bem) from the car, last \(c.lastBEM)" }
        if !c.lastMalformed.isEmpty { s += "\n  last malformed: \(c.lastMalformed)" }
        if !c.lastTxError.isEmpty { s += "\n  last send error: \(c.lastTxError)" }
        if !c.recent.isEmpty {
            s += "\n  last frames (candump):"
            for f in c.recent.suffix(8) { s += "\n    \(f.sent ? "tx" : "rx") \(fmtAge(now - f.realtimeMicros)) ago  \(f.candump)" }
        }
        out.append(s)
    }
    return out.joined(separator: "\n")
}

package func fmtAge(_ us: Int64) -> String {
    if us < 0 { return "0 ms" }
    if us < 10_000_000 { return "\(us / 1000) ms" }
    return "\(us / 1_000_000) s"
}

package func realtimeMicros() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1_000_000 + Int64(ts.tv_nsec) / 1000
}
