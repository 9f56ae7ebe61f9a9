// charger-plant coil-supply: the contactor coils' charge-pumped supply of a real board, on the other side
// of the kernel (docs/boards.md "The contactor supply"). It reads the lines chargerd drives from gpio-sim's
// `value` files: the pump holds the supply `hold` after its last edge, and a coil is energised while the
// supply holds and its line is active. Optionally it ends chargerd with a signal (SIGKILL, SIGTRAP as a
// Swift trap does, SIGSTOP as a hung loop) and reports, on the guest's monotonic clock, when the supply
// fell: the time a dead controller's contactors could stay closed, before their opening time.
import ArgumentParser
import BoardFile
import ChargerCore
import RealTime
#if canImport(Glibc)
import Glibc
#endif

struct CoilSupply: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coil-supply",
        abstract: "Watch a real board's contactor supply on gpio-sim's lines; optionally end chargerd and time the supply's fall.")

    @Option(name: .long, help: "The real board's file (its coil-pump and k1k2 lines, [contactor_supply] hold).")
    var board: String

    @Option(name: .long, help: "gpio-sim's directory of the chip's lines (the one holding sim_gpioN/value).")
    var sim: String

    @Option(name: .long, help: "chargerd's process to signal.")
    var pid: Int32?

    @Option(name: .long, help: "The signal: KILL, TRAP or STOP.")
    var signal: String = "KILL"

    @Option(name: .long, help: "Seconds of watching before the signal (the pump judged healthy meanwhile).")
    var after: Double = 3

    @Option(name: .long, help: "Seconds to watch in all, at most.")
    var limit: Double = 15

    mutating func run() throws {
        let b: Board
        do { b = try BoardLoader.load(path: board) } catch { fail("board file: \(error)") }
        guard let supply = b.contactorSupply, let pump = b.gpio.first(where: { $0.signal == .coilPump }) else {
            fail("board '\(b.name)' has no charge-pumped contactor supply ([contactor_supply] and a coil-pump line)")
        }
        let coils = b.gpio.filter { $0.signal == .k1k2 }
        let signals: [String: Int32] = ["KILL": SIGKILL, "TRAP": SIGTRAP, "STOP": SIGSTOP]
        guard let sig = signals[signal] else { fail("signal '\(signal)' is not one of KILL, TRAP, STOP") }
        guard after > 0, after < limit, limit <= 600 else { fail("--after must be above 0 and below --limit (at most 600 s)") }
        func open(_ line: Int) -> Int32 {
            let fd = Glibc.open("\(sim)/sim_gpio\(line)/value", O_RDONLY)
            if fd < 0 { fail("cannot read \(sim)/sim_gpio\(line)/value: \(String(cString: strerror(errno)))") }
            return fd
        }
        let pumpFd = open(pump.line)
        let coilFds = coils.map { open($0.line) }
        func level(_ fd: Int32) -> Bool? {
            var buf: (UInt8, UInt8) = (0, 0)
            let n = withUnsafeMutableBytes(of: &buf) { pread(fd, $0.baseAddress, 2, 0) }
            return n >= 1 ? buf.0 == UInt8(ascii: "1") : nil
        }
        let hold = supply.hold.micros * 1000
        let t0 = monotonicNanos()
        var last = level(pumpFd), lastEdge: Int64 = 0, edges = 0, longest: Int64 = 0, drops = 0
        var signalled: Int64 = 0, signalledRealtime: Int64 = 0, energisedAtSignal = false, coilActiveAfter = false
        var next = t0, holding = false
        while true {
            next += 1_000_000
            var ts = timespec(tv_sec: Int(next / 1_000_000_000), tv_nsec: Int(next % 1_000_000_000))
            _ = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nil)
            let now = monotonicNanos()
            let v = level(pumpFd)
            if v != last {
                if lastEdge > 0 { longest = max(longest, now - lastEdge) }
                if lastEdge > 0 && signalled == 0 && now - lastEdge > hold { drops += 1 }
                lastEdge = now; edges += 1; last = v
            }
            holding = lastEdge > 0 && now - lastEdge <= hold
            let active = zip(coils, coilFds).contains { c, fd in level(fd).map { $0 == (c.active == .high) } ?? false }
            if signalled == 0, now - t0 >= Int64(after * 1e9), let pid {
                energisedAtSignal = holding && active
                guard kill(pid, sig) == 0 else { fail("cannot signal \(pid): \(String(cString: strerror(errno)))") }
                signalled = monotonicNanos()
                var rt = timespec()
                clock_gettime(CLOCK_REALTIME, &rt)
                signalledRealtime = Int64(rt.tv_sec) * 1_000_000_000 + Int64(rt.tv_nsec)
            }
            if signalled > 0 { coilActiveAfter = coilActiveAfter || active }
            // Done: the supply has been down 200 ms past the signal's effect, or the limit.
            if signalled > 0 && !holding && now - max(lastEdge, signalled) > 200_000_000 { break }
            if now - t0 > Int64(limit * 1e9) { break }
        }
        let ms = { (ns: Int64) in String(format: "%.1f", Double(ns) / 1e6) }
        let before = "pump: \(edges) edges, the longest gap \(ms(longest)) ms, \(drops) drop(s) of the supply while chargerd ran (hold \(ms(hold)) ms)"
        guard signalled > 0 else { print("coil-supply: \(before); no signal sent"); return }
        guard !holding else { print("coil-supply: SIG\(signal) sent; the pump still toggled \(ms(monotonicNanos() - signalled)) ms later: the supply never fell; \(before)"); return }
        let lastAfter = max(0, lastEdge - signalled)
        let fell = lastEdge + hold - signalled
        print("coil-supply: SIG\(signal) at \(ms(signalled - t0)) ms; the pump's last edge \(ms(lastAfter)) ms after it (the signal's "
              + "delivery, the guest's scheduling); the supply fell \(ms(fell)) ms after the signal, the hold \(ms(hold)) ms after the "
              + "last edge; coils energised at the signal: \(energisedAtSignal ? "yes" : "no"); a K1/K2 line active after it: "
              + "\(coilActiveAfter ? "yes" : "no"); \(before)")
        print("supply-fell-ms \(ms(fell))")
        print("last-edge-after-signal-ms \(ms(lastAfter))")
        print("signalled-realtime-ns \(signalledRealtime)")
    }
}
