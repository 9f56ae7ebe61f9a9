// `chargerd gpio-cost --board FILE`: what the GPIO front end costs the loop on this board, measured the
// way the loop uses it: per cycle, the station's and every gun's inputs sampled (one bulk read per chip
// and one ppoll of the trip lines' edge events), every gun's outputs applied and written (one bulk write
// per chip). The outputs written are the safe ones (every line inactive): it is safe on a commissioned
// board with nothing plugged in, and it is what a technician runs at commissioning. Beside it, the cost
// of the cheapest system call (getppid) and of reading the clock, on the same machine, so that a
// figure from one machine can be weighed on another.
import ArgumentParser
import BoardFile
import Station
import ChargerCore
import GPIOD
import RealTime
#if canImport(Glibc)
import Glibc
#endif

struct GPIOCost: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gpio-cost",
        abstract: "Measure the GPIO front end's cost per control cycle on a real board (outputs held safe).")

    @Option(name: .long, help: "Board file (kind real).")
    var board: String

    @Option(name: .long, help: "Cycles to time.")
    var cycles = 20_000

    func run() throws {
        let loaded: Board
        do { loaded = try BoardLoader.load(path: board) } catch { fail("board file: \(error)") }
        guard loaded.kind == .real else { fail("board '\(loaded.name)' is a \(loaded.kind) board: gpio-cost measures a real board's GPIO lines") }
        guard cycles >= 100 && cycles <= 10_000_000 else { fail("--cycles must be 100 to 10000000") }
        let front: GPIOFrontEnd
        do {
            front = try GPIOFrontEnd(map: loaded.gpio, guns: loaded.spec.gunCount, modules: loaded.spec.moduleCount, period: loaded.spec.period)
        } catch {
            fail("board '\(loaded.name)' (\(loaded.path)): \(error)")
        }
        defer { front.makeSafe() }
        let guns = loaded.spec.gunCount
        var station = StationInputs()
        let safe = GunOutputs()
        var cycle = [Int64](repeating: 0, count: cycles)
        for _ in 0..<100 { oneCycle(front, guns, &station, safe) }          // warm: caches, pages
        for k in 0..<cycles {
            let t0 = now()
            oneCycle(front, guns, &station, safe)
            cycle[k] = now() - t0
        }
        var syscall = [Int64](repeating: 0, count: cycles), clock = [Int64](repeating: 0, count: cycles)
        for k in 0..<cycles {
            let t0 = now(); _ = getppid(); syscall[k] = now() - t0
            let t1 = now(); clock[k] = now() - t1
        }
        let c = Summary(cycle), s = Summary(syscall), k = Summary(clock)
        print("gpio-cost: board \(loaded.name), \(front.report.split(separator: ";").first ?? ""), \(guns) gun(s), \(cycles) cycles")
        print("gpio-cost: per cycle (read inputs, poll edges, write outputs): median \(c.median) ns, p99 \(c.p99) ns, max \(c.max) ns")
        print("gpio-cost: getppid: median \(s.median) ns; clock_gettime: median \(k.median) ns; a cycle is \(s.median > 0 ? String(format: "%.1f", Double(c.median) / Double(s.median)) : "?") null system calls")
        print("gpio-cost: I/O errors \(front.ioErrors)")
    }

    private func oneCycle(_ front: GPIOFrontEnd, _ guns: Int, _ station: inout StationInputs, _ safe: GunOutputs) {
        front.sample(into: &station)
        for g in 0..<guns { front.sample(gun: g, into: &station.guns[g]) }
        for g in 0..<guns { front.apply(gun: g, safe) }
        front.flush()
    }

    private func now() -> Int64 { monotonicNanos() }

    struct Summary {
        var median: Int64, p99: Int64, max: Int64
        init(_ v: [Int64]) {
            let s = v.sorted()
            median = s[s.count / 2]; p99 = s[min(s.count - 1, s.count * 99 / 100)]; max = s.last ?? 0
        }
    }
}
