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
        subcommands: [RunScenarios.self, Fuzz.self])
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

struct Fuzz: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fuzz",
        abstract: "Seeded fault campaign: random boards, cars and fault timelines; invariants every cycle; repair, reset, charge again.",
        discussion: "A failure prints its seed and the one command that replays it. Exit status 1 on any failing seed.")

    @Option(name: .long, help: "How many seeds to run.")
    var seeds: Int = 200

    @Option(name: .long, help: "First seed (the campaign runs seed, seed+1, ...).")
    var seed: UInt64 = 1

    @Option(name: .long, help: "Directory of board files (default: the repository's Boards/).")
    var boards: String?

    @Flag(name: .long, help: "Print every seed's draw and outcome, not only failures.")
    var verbose = false

    func run() throws {
        guard seeds > 0, seeds <= 1_000_000 else { throw ValidationError("--seeds must be 1...1000000") }
        let boardsDir = boards ?? defaultBoards()
        let t0 = Date()
        var failed: [SeedResult] = []
        var faultsSeen = 0
        var simulated = 0.0
        for i in 0..<seeds {
            let s = seed &+ UInt64(i)
            let r = Campaign.run(seed: s, boardsDirectory: boardsDir)
            faultsSeen += r.faults.count
            simulated += r.simulated
            if verbose || !r.passed {
                print("seed \(s): \(r.passed ? "ok" : "FAIL") board \(r.board), cars [\(r.cars.joined(separator: "; "))], events [\(r.events.joined(separator: ", "))], faults [\(r.faults.joined(separator: ", "))], trace \(String(r.traceHash, radix: 16))")
            }
            if !r.passed {
                for f in r.failures { print("  \(f)") }
                print("  replay: charger-hil fuzz --seeds 1 --seed \(s) --verbose")
                failed.append(r)
            }
            fflush(nil)
        }
        let wall = Date().timeIntervalSince(t0)
        print("charger-hil fuzz: \(seeds) seed(s) from \(seed), \(seeds - failed.count) passed, \(failed.count) failed; \(faultsSeen) faults raised; \(String(format: "%.0f", simulated / 60)) min simulated in \(String(format: "%.1f", wall)) s")
        if !failed.isEmpty { throw ExitCode(1) }
    }
}

ChargerHIL.main()
