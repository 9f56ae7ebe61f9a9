// charger-hil: runs HIL scenario files against the simulated board in virtual time, and seeded fault
// campaigns. Thin: the work is in the HILRunner library, which the tests use too.
import ArgumentParser
import Foundation
import HILRunner
#if canImport(Glibc)
import Glibc
#endif

struct ChargerHIL: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "charger-hil",
        abstract: "HIL scenarios and seeded fault campaigns on the simulated board, in virtual time.",
        subcommands: [RunScenarios.self, Fuzz.self, Merge.self])
}

/// The repository's Boards/ next to the scenario files or the working directory.
func defaultBoards() -> String {
    var dir = FileManager.default.currentDirectoryPath
    for _ in 0..<6 {
        if FileManager.default.fileExists(atPath: dir + "/Boards/sim-60kw.toml") { return dir + "/Boards" }
        dir = (dir as NSString).deletingLastPathComponent
    }
    return "Boards"
}

func writeFile(_ path: String, _ text: String) throws {
    do { try text.write(toFile: path, atomically: true, encoding: .utf8) } catch {
        throw ValidationError("cannot write \(path): \(error.localizedDescription)")
    }
}

struct RunScenarios: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run scenario files; print pass/fail per expectation; write trace CSV, SVG plot and JUnit XML.",
        discussion: "Exit status: 0 every expectation and invariant held; 1 a scenario failed; 2 a file could not be read.")

    @Argument(help: "Scenario files (HIL/scenarios/*.toml).")
    var files: [String]

    @Option(name: .long, help: "Directory of board files (default: the repository's Boards/).")
    var boards: String?

    @Option(name: .long, help: "Where traces, plots and junit.xml go (created).")
    var out: String = ".build/hil"

    func run() throws {
        let boardsDir = boards ?? defaultBoards()
        try? FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        var results: [ScenarioResult] = []
        var unreadable = false
        for f in files {
            let s: Scenario
            do { s = try Scenario.load(path: f, boardsDirectory: boardsDir) } catch {
                FileHandle.standardError.write(Data("charger-hil: \(error)\n".utf8))
                unreadable = true
                continue
            }
            let r = ScenarioRunner.run(s)
            results.append(r)
            print(ScenarioOutputs.text(r), terminator: "")
            let base = out + "/" + s.name
            try writeFile(base + ".csv", ScenarioOutputs.csv(r))
            try writeFile(base + ".svg", ScenarioOutputs.svg(r))
            fflush(nil)
        }
        try writeFile(out + "/junit.xml", ScenarioOutputs.junit(results))
        let failed = results.filter { !$0.passed }
        print("charger-hil: \(results.count - failed.count) of \(results.count) scenario(s) passed\(unreadable ? ", some files unreadable" : ""); traces, plots and junit.xml in \(out)")
        for r in failed { print("  FAILED \(r.scenario) (\(r.file))") }
        if unreadable { throw ExitCode(2) }
        if !failed.isEmpty { throw ExitCode(1) }
    }
}

/// Writes straight to file descriptor 2 (the progress line: never buffered behind the report).
func toStandardError(_ text: String) {
    let bytes = Array(text.utf8)
    _ = bytes.withUnsafeBufferPointer { write(2, $0.baseAddress, $0.count) }
}

struct Fuzz: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fuzz",
        abstract: "Seeded fault campaign: random boards, cars and fault timelines; invariants every cycle; repair, reset, charge again.",
        discussion: """
        A failure prints its seed and the one command that replays it. Exit status 1 on any failing seed. \
        --jobs spreads the seeds over processes on this machine; --shard runs one slice of them for many \
        machines (join the --results files with `charger-hil merge`). Neither changes any seed's result or \
        the order of the report.
        """)

    @Option(name: .long, help: "How many seeds to run.")
    var seeds: Int = 200

    @Option(name: .long, help: "First seed (the campaign runs seed, seed+1, ...).")
    var seed: UInt64 = 1

    @Option(name: .long, help: "Directory of board files (default: the repository's Boards/).")
    var boards: String?

    @Option(name: .long, help: "Processes to spread the seeds over (default: the machine's cores).")
    var jobs: Int?

    @Option(name: .long, help: "Run only the I-th of N contiguous slices of the seeds (1-based, e.g. 2/8).")
    var shard: String?

    @OptionGroup var output: CampaignOutputs

    /// Internal: run every N-th seed of the slice from K (K/N) and print each result as a JSON line.
    @Option(name: .long, help: .hidden)
    var worker: String?

    func run() throws {
        guard seeds > 0, seeds <= 1_000_000 else { throw ValidationError("--seeds must be 1...1000000") }
        let boardsDir = boards ?? defaultBoards()
        var slice = CampaignSlice(start: seed, count: seeds)
        if let shard {
            do { (slice.shard, slice.shards) = try CampaignSlice.parseShard(shard, count: seeds) } catch { throw ValidationError(error.description) }
        }
        let list = slice.seeds
        if let worker {
            let p = worker.split(separator: "/").compactMap { Int($0) }
            guard p.count == 2, p[1] >= 1, p[0] >= 0, p[0] < p[1] else { throw ValidationError("--worker K/N") }
            for i in stride(from: p[0], to: list.count, by: p[1]) {
                print(CampaignFile.line(Campaign.run(seed: list[i], boardsDirectory: boardsDir)))
                fflush(nil)
            }
            return
        }
        if let jobs, jobs < 1 || jobs > 256 { throw ValidationError("--jobs must be 1...256") }
        let n = max(1, min(jobs ?? ProcessInfo.processInfo.activeProcessorCount, list.count))
        let t0 = Date()
        var out: [SeedResult] = []
        var failed = 0
        // Progress on a terminal only (standard error a tty, not CI): one line rewritten at most twice a
        // second, cleared before anything else is printed, so logs and pipes get the report alone.
        let showProgress = isatty(2) == 1 && ProcessInfo.processInfo.environment["CI"] == nil
        var lastProgress = Date.distantPast
        let emit: (SeedResult) -> Void = { r in
            out.append(r)
            if !r.passed { failed += 1 }
            let lines = CampaignReport.seedLines(r, verbose: output.verbose)
            if showProgress && !lines.isEmpty { toStandardError("\r\u{1B}[K") }
            print(lines, terminator: "")
            fflush(nil)
            let now = Date()
            if showProgress && (now.timeIntervalSince(lastProgress) >= 0.5 || out.count == list.count) {
                lastProgress = now
                toStandardError("\r\u{1B}[K" + CampaignReport.progress(done: out.count, of: list.count, failed: failed, elapsed: now.timeIntervalSince(t0)))
                if out.count == list.count { toStandardError("\r\u{1B}[K") }
            }
        }
        if n == 1 {
            for s in list { emit(Campaign.run(seed: s, boardsDirectory: boardsDir)) }
        } else {
            try runWorkers(n, count: list.count, boardsDir: boardsDir, emit: emit)
        }
        let wall = Date().timeIntervalSince(t0)
        print(CampaignReport.summary(slice, out, wall: wall, jobs: n))
        try output.write(slice, out)
    }

    /// Spreads the slice over `n` child processes of this same binary (worker k runs every n-th seed from
    /// k) and hands their results to `emit` in seed order, as they complete.
    func runWorkers(_ n: Int, count: Int, boardsDir: String, emit: (SeedResult) -> Void) throws {
        let c = Collector()
        let lock = c.lock
        var procs: [Process] = []
        for k in 0..<n {
            let p = Process()
            // This same binary, by its real path (so that ps names it).
            p.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
            var args = ["fuzz", "--seeds", "\(seeds)", "--seed", "\(seed)", "--boards", boardsDir, "--worker", "\(k)/\(n)"]
            if let shard { args += ["--shard", shard] }
            p.arguments = args
            let pipe = Pipe()
            p.standardOutput = pipe
            do { try p.run() } catch { throw ValidationError("cannot start worker \(k): \(error.localizedDescription)") }
            procs.append(p)
            let handle = pipe.fileHandleForReading
            Thread.detachNewThread {
                var buffer = Data()
                var index = k
                func take(_ line: Data) {
                    let text = String(decoding: line, as: UTF8.self)
                    let r = try? CampaignFile.decodeLine(Substring(text), file: "worker \(k)", number: index / n + 1)
                    lock.lock()
                    if let r { c.arrived[index] = r } else { c.problems.append("worker \(k): unreadable result: \(text.prefix(200))") }
                    index += n
                    lock.signal(); lock.unlock()
                }
                while true {
                    let chunk = handle.availableData
                    if chunk.isEmpty { break }
                    buffer.append(chunk)
                    while let nl = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                        take(buffer[buffer.startIndex..<nl])
                        buffer.removeSubrange(buffer.startIndex...nl)
                    }
                }
                lock.lock(); c.finished += 1; lock.signal(); lock.unlock()
            }
        }
        var next = 0
        lock.lock()
        while next < count {
            if let r = c.arrived.removeValue(forKey: next) {
                lock.unlock(); emit(r); lock.lock()
                next += 1
            } else if c.finished == n || !c.problems.isEmpty {
                break
            } else { lock.wait() }
        }
        lock.unlock()
        for p in procs { p.waitUntilExit() }
        if !c.problems.isEmpty || next < count {
            let codes = procs.map { "\($0.terminationStatus)" }.joined(separator: ",")
            throw ValidationError("workers gave \(next) of \(count) results (exit statuses \(codes)) \(c.problems.joined(separator: "; "))")
        }
    }
}

/// What a campaign leaves behind, for fuzz and merge alike; `write` ends with exit 1 when a seed failed.
struct CampaignOutputs: ParsableArguments {
    @Flag(name: .long, help: "Print every seed's draw and outcome, not only failures.")
    var verbose = false

    @Option(name: .long, help: "Write every seed's result to FILE (JSON lines), for `charger-hil merge`.")
    var results: String?

    @Option(name: .long, help: "Write a JUnit XML report (a test case per seed) to FILE.")
    var junit: String?

    @Option(name: .long, help: "Write an HTML report (figures, seeds per board, each failure with its draw and replay command) to FILE.")
    var report: String?

    func write(_ slice: CampaignSlice, _ all: [SeedResult]) throws {
        if let results { try writeFile(results, CampaignFile.encode(slice, all)) }
        if let junit { try writeFile(junit, CampaignReport.junit(all)) }
        if let report { try writeFile(report, CampaignReport.html(slice, all)) }
        if all.contains(where: { !$0.passed }) { throw ExitCode(1) }
    }
}

/// The workers' results on their way to the parent, guarded by `lock` (each reader thread adds, the
/// parent takes them in seed order).
final class Collector: @unchecked Sendable {
    let lock = NSCondition()
    var arrived: [Int: SeedResult] = [:]
    var problems: [String] = []
    var finished = 0
}

struct Merge: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Join the --results files of a sharded campaign into one report and one JUnit file.",
        discussion: "Prints what one unsharded `charger-hil fuzz` of the same seeds prints. Exit status: 0 every seed passed; 1 a seed failed; 2 the files are not one whole campaign.")

    @Argument(help: "Shard results files (charger-hil fuzz --shard I/N --results FILE).")
    var files: [String]

    @OptionGroup var output: CampaignOutputs

    func run() throws {
        let slice: CampaignSlice, all: [SeedResult]
        do {
            var parts: [(CampaignSlice, [SeedResult])] = []
            for f in files { parts.append(try CampaignFile.read(path: f)) }
            (slice, all) = try CampaignFile.merge(parts)
        } catch {
            FileHandle.standardError.write(Data("charger-hil merge: \(error)\n".utf8))
            throw ExitCode(2)
        }
        for r in all { print(CampaignReport.seedLines(r, verbose: output.verbose), terminator: "") }
        print(CampaignReport.summary(slice, all, wall: nil, jobs: nil))
        try output.write(slice, all)
    }
}

ChargerHIL.main()
