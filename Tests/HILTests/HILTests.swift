// The HIL runner with its own scenario files: every shipped scenario passes, a wrong expectation fails,
// malformed files are refused with the key named, outputs are well formed, and fuzz seeds replay bit
// for bit.
import ChargerCore
import ChargerRuntime
import LoopContract
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import HILRunner
import BoardFile
import SimPlant
import TOMLKit
import Testing

let repoRoot: String = {
    var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(3)
    return parts.joined(separator: "/")
}()
let boardsDir = repoRoot + "/Boards"

func scenarioFiles() -> [String] {
    let dir = repoRoot + "/HIL/scenarios"
    return ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasSuffix(".toml") }.sorted().map { dir + "/" + $0 }
}

func write(_ text: String) -> String {
    let path = NSTemporaryDirectory() + "scenario-\(UUID().uuidString).toml"
    try? text.write(toFile: path, atomically: true, encoding: .utf8)
    return path
}

@Suite struct Scenarios {
    @Test func atLeast25ScenariosCoverEveryBoardAndReactionRow() throws {
        let files = scenarioFiles()
        #expect(files.count >= 25)
        let loaded = try files.map { try Scenario.load(path: $0, boardsDirectory: boardsDir) }
        let boards = Set(loaded.map(\.board.name))
        for b in ["sim-60kw", "sim-dual-360kw", "sim-hpc-480kw", "sim-mcs-1mw", "sim-v2g-60kw"] { #expect(boards.contains(b), "no scenario on \(b)") }
        // Every reaction row of standards.md's table is named by the first line of some scenario.
        let rows = ["switch S opens", "CC1 broken", "other fault preventing charge", "protective earth continuity lost",
                    "output above car's maximum voltage", "IEC Table 103", "output above negotiated maximum", "over-current",
                    "insulation / cable-check fault", "after charger sends CST", "after car sends BST",
                    "car communication timeout while charging", "AC mains lost", "emergency stop button"]
        let heads = files.compactMap { try? String(contentsOfFile: $0, encoding: .utf8).split(separator: "\n").first.map(String.init) }
        for r in rows { #expect(heads.contains { $0.contains(r) }, "no scenario for the row '\(r)'") }
    }

    // Every shipped scenario is run and must pass in test-hil (Tests/cli/charger-hil-contract.sh: `charger-hil
    // run HIL/scenarios/*.toml`, the same ScenarioRunner, with its trace, plot and JUnit checked). It was
    // also run here, 82 of this bundle's 216 s of CPU (`--no-parallel`), the same verdicts twice.

    /// The same scenario with each kind of expectation made wrong: every one fails, with its values.
    @Test func wrongExpectationsFail() throws {
        let base = """
        [scenario]
        name = "wrong"
        board = "sim-60kw"
        duration = "300 s"
        [[car]]
        profile = "capacity=30kWh,soc=20,target=80"
        [[event]]
        at = "100 s"
        do = "door"

        """
        let wrong = [
            "kind = \"state\"\nat = \"90 s\"\nstate = \"finished\"",
            "kind = \"fault\"\ncode = \"E05\"\nafter = \"100 s\"\nwithin = \"1 s\"",
            "kind = \"fault\"\ncode = \"E02\"\nafter = \"99 s\"\nwithin = \"500 ms\"\ngun = 0",
            "kind = \"no-fault\"",
            "kind = \"energy\"\nat_least = \"5 kWh\"",
            "kind = \"power-never-above\"\nmax = \"30 kW\"",
            "kind = \"binding\"\nat = \"60 s\"\nsource = \"vehicle\"",
            "kind = \"end-state\"\nstate = \"completed\"",
            "kind = \"current-below\"\nmax = \"5 A\"\nafter = \"50 s\"\nwithin = \"1 s\"",
        ]
        for w in wrong {
            let s = try Scenario.load(path: write(base + "[[expect]]\n" + w + "\n"), boardsDirectory: boardsDir)
            let r = ScenarioRunner.run(s)
            let passed = r.passed
            let detail = r.verdicts.first?.detail ?? ""
            #expect(!passed, "expected to fail: \(w.replacingOccurrences(of: "\n", with: " ")): \(detail)")
            #expect(!detail.isEmpty)
        }
        // And the right ones pass on the same run.
        let right = base + "[[expect]]\nkind = \"fault\"\ncode = \"E02\"\nafter = \"100 s\"\nwithin = \"5 ms\"\n[[expect]]\nkind = \"end-state\"\nstate = \"faulted\"\n"
        let ok = ScenarioRunner.run(try Scenario.load(path: write(right), boardsDirectory: boardsDir)).passed
        #expect(ok)
    }

    @Test(arguments: [
        ("[scenario]\nname = \"x\"\nboard = \"sim-60kw\"\n", "expect", "at least one [[expect]]"),
        ("[scenario]\nname = \"x\"\nboard = \"nope\"\n[[expect]]\nkind = \"no-fault\"\n", "scenario.board", "nope.toml"),
        ("[scenario]\nname = \"x\"\nboard = \"sim-60kw\"\n[[event]]\nat = \"1 s\"\ndo = \"frobnicate\"\n[[expect]]\nkind = \"no-fault\"\n", "event[0].do", "unknown injection"),
        ("[scenario]\nname = \"x\"\nboard = \"sim-60kw\"\n[[expect]]\nkind = \"fault\"\ncode = \"E99\"\nwithin = \"1 s\"\n", "expect[0].code", "unknown fault code"),
        ("[scenario]\nname = \"x\"\nboard = \"sim-60kw\"\n[[expect]]\nkind = \"state\"\nat = \"soon\"\nstate = \"charging\"\n", "expect[0].at", "'soon' does not start with a number"),
        ("[scenario]\nname = \"x\"\nboard = \"sim-60kw\"\n[[expect]]\nkind = \"state\"\nat = 120\nstate = \"charging\"\n", "expect[0].at", "expected a string with a unit"),
        ("[scenario]\nname = \"x\"\nboard = \"sim-60kw\"\n[[expect]]\nkind = \"state\"\nat = \"120\"\nstate = \"charging\"\n", "expect[0].at", "'120' has no unit; a time needs one of"),
        ("[scenario]\nname = \"x\"\nboard = \"sim-60kw\"\n[[car]]\ngun = 3\nprofile = \"soc=20\"\n[[expect]]\nkind = \"no-fault\"\n", "car[0].gun", "gun must be 0...0"),
        ("[scenario]\nname = \"x\"\nboard = \"sim-60kw\"\n[[expect]]\nkind = \"no-fault\"\ncolour = 1\n", "expect[0].colour", "not a key"),
        ("[scenario\nname = ", "", "TOML syntax error"),
        ("[scenario]\nname = \"x\"\nboard = \"sim-60kw\"\n[authorization]\nlocal_list = [\"LFV3A23C5K301234O\"]\n[[expect]]\nkind = \"no-fault\"\n", "authorization.local_list[0]", "must be a VIN"),
        ("[scenario]\nname = \"x\"\nboard = \"sim-60kw\"\n[authorization]\nblocked = \"LFV3A23C5K3012345\"\n[[expect]]\nkind = \"no-fault\"\n", "authorization.blocked", "a list of VINs"),
        ("[scenario]\nname = \"x\"\nboard = \"sim-60kw\"\n[authorization]\ncentral_system = \"online\"\n[[expect]]\nkind = \"no-fault\"\n", "authorization.central_system", "\"offline\" or \"silent\""),
        ("[scenario]\nname = \"x\"\nboard = \"sim-60kw\"\n[authorization]\nvins = []\n[[expect]]\nkind = \"no-fault\"\n", "authorization.vins", "unknown key"),
        ("[scenario]\nname = \"x\"\nboard = \"sim-60kw\"\n[authorization]\nlocal_list = [\"LFV3A23C5K3012345\"]\nblocked = [\"LFV3A23C5K3012345\"]\n[[expect]]\nkind = \"no-fault\"\n", "authorization", "the local list was refused"),
    ])
    func malformedFilesAreRefusedWithTheKeyNamed(_ text: String, _ key: String, _ why: String) {
        let path = write(text)
        do {
            _ = try Scenario.load(path: path, boardsDirectory: boardsDir)
            Issue.record("accepted: \(text)")
        } catch {
            #expect(error.key == key, "\(error)")
            #expect(error.description.contains(why), "\(error)")
            #expect(error.description.hasPrefix(path))
        }
    }

    @Test func outputsAreWellFormed() throws {
        let s = try Scenario.load(path: repoRoot + "/HIL/scenarios/door-open-while-charging.toml", boardsDirectory: boardsDir)
        let r = ScenarioRunner.run(s)
        let csv = ScenarioOutputs.csv(r).split(separator: "\n")
        #expect(csv.first == "t_s,gun,state,vehicle_v,charger_v,current_a,power_kw,limit_kw,limit_source,soc_pct,gun_temp_c,faults")
        #expect(csv.count > 1000)
        #expect(csv.allSatisfy { $0.split(separator: ",", omittingEmptySubsequences: false).count == 12 })
        #expect(csv.contains { $0.hasSuffix("E02-door-open") })
        let svg = ScenarioOutputs.svg(r)
        #expect(svg.hasPrefix("<svg") && svg.contains("E02-door-open") && svg.contains("active limit"))
        #expect((try? XMLDocument(xmlString: svg)) != nil)
        let junit = ScenarioOutputs.junit([r])
        #expect((try? XMLDocument(xmlString: junit)) != nil)
        #expect(junit.contains("failures=\"0\""))
    }

    /// A two-gun page shows both guns, the station against its limit, each gun's state lane, and labels
    /// that do not overlap.
    @Test func twoGunPlotShowsEveryGunAndTheStation() throws {
        let s = try Scenario.load(path: repoRoot + "/HIL/scenarios/dual-360kw-two-cars-under-grid-cap.toml", boardsDirectory: boardsDir)
        let r = ScenarioRunner.run(s)
        let svg = ScenarioOutputs.svg(r)
        #expect((try? XMLDocument(xmlString: svg)) != nil)
        for text in ["gun 0 state", "gun 1 state", "station power (kW)", "station limit", "time (min)"] {
            #expect(svg.contains(text), "missing \(text)")
        }
        #expect(r.station.count > 100 && r.station.allSatisfy { $0.limitKW <= 300 })
        // Every text of the fault row and every phase name written inside its band: no two overlap.
        let doc = try XMLDocument(xmlString: svg)
        let texts = try doc.nodes(forXPath: "//*[local-name()='text'][@font-size='9']").compactMap { $0 as? XMLElement }
        var boxes: [(Double, Double, Double, String)] = []     // x0, x1, y, text
        for t in texts {
            guard let xs = t.attribute(forName: "x")?.stringValue, let x = Double(xs),
                  let ys = t.attribute(forName: "y")?.stringValue, let y = Double(ys), let v = t.stringValue else { continue }
            let w = ScenarioOutputs.textWidth(v, 9)
            let end = t.attribute(forName: "text-anchor")?.stringValue == "end"
            boxes.append(end ? (x - w, x, y, v) : (x, x + w, y, v))
        }
        for i in boxes.indices { for j in boxes.indices where j > i && boxes[i].2 == boxes[j].2 {
            #expect(boxes[i].1 <= boxes[j].0 || boxes[j].1 <= boxes[i].0, "'\(boxes[i].3)' overlaps '\(boxes[j].3)'")
        } }
    }
}

@Suite struct CampaignReports {
    /// The terminal's progress line: seeds done, failures, rate and the time left at that rate.
    @Test func progressSaysDoneFailedRateAndTimeLeft() {
        #expect(CampaignReport.progress(done: 2500, of: 10000, failed: 1, elapsed: 100)
                == "seeds 2500/10000 (25.0 %), 1 failed, 25.0 seeds/s, 5 min 0 s left")
        #expect(CampaignReport.progress(done: 10, of: 100_000, failed: 0, elapsed: 1) == "seeds 10/100000 (0.0 %), 0 failed, 10.0 seeds/s, 2 h 46 min left")
        #expect(CampaignReport.progress(done: 0, of: 200, failed: 0, elapsed: 0) == "seeds 0/200 (0.0 %), 0 failed, 0.0 seeds/s, ? left")
        #expect(CampaignReport.progress(done: 200, of: 200, failed: 3, elapsed: 8).hasSuffix("3 failed, 25.0 seeds/s, 0 s left"))
    }

    /// The HTML report lists every failure with its draw and the command that replays it; the results
    /// file reads back equal, and a merge refuses files that are not one campaign.
    @Test func reportAndResultsFile() throws {
        var bad = SeedResult(seed: 7, board: "sim-60kw", cars: ["0:capacity=10kWh"], events: ["door@5s"],
                             failures: ["invariant: <made up>"], faults: ["E02-door-open@5.000s"], simulated: 60, traceHash: 0xdead_beef_0000_0001)
        let good = SeedResult(seed: 8, board: "sim-60kw", cars: [], events: [], failures: [], faults: [], simulated: 60, traceHash: 42)
        let html = CampaignReport.html(CampaignSlice(start: 7, count: 2), [bad, good])
        #expect(html.contains("1 passed, 1 failed") && html.contains("charger-hil fuzz --seeds 1 --seed 7 --verbose"))
        #expect(html.contains("invariant: &lt;made up&gt;") && html.contains("door@5s"))
        let slice = CampaignSlice(start: 7, count: 2)
        let path = write(CampaignFile.encode(slice, [bad, good]))
        let (s, back) = try CampaignFile.read(path: path)
        #expect(s == slice && back == [bad, good])
        bad.seed = 9
        let wrong = write(CampaignFile.encode(slice, [bad, good]))
        #expect(throws: CampaignFileError.self) { try CampaignFile.read(path: wrong) }
        #expect(CampaignSlice(start: 1, count: 10, shard: 3, shards: 4).seeds == [6, 7])
        let all = (1...4).flatMap { CampaignSlice(start: 1, count: 10, shard: $0, shards: 4).seeds }
        #expect(all == Array(1...10))
    }
}

@Suite struct FaultCampaign {
    /// Replays are bit for bit: the same seed, the same draw, the same trace hash.
    @Test func seedsReplayBitForBit() {
        for seed: UInt64 in [3, 17] {
            let a = Campaign.run(seed: seed, boardsDirectory: boardsDir)
            let b = Campaign.run(seed: seed, boardsDirectory: boardsDir)
            let (ha, hb) = (a.traceHash, b.traceHash)
            #expect(ha == hb)
            #expect(a.events == b.events && a.board == b.board && a.faults == b.faults)
        }
        #expect(Campaign.run(seed: 3, boardsDirectory: boardsDir).traceHash != Campaign.run(seed: 4, boardsDirectory: boardsDir).traceHash)
    }

    @Test func aShortCampaignPasses() {
        for seed: UInt64 in 1...20 {
            let r = Campaign.run(seed: seed, boardsDirectory: boardsDir)
            let passed = r.passed
            #expect(passed, "seed \(seed): \(r.failures) events \(r.events)")
        }
    }
}

/// The defect class a 1000-seed campaign found (issue 16): a device that stops answering must not make a
/// shutdown miss its row of standards.md "Fault reactions". Every error-shutdown fault, on every simulated
/// board, right after a device on the gun went silent: the simulation's invariants (K1/K2 open within the
/// row's time whatever the modules do, no opening above 5 A outside an emergency, no energy on an
/// insulation fault) hold every cycle, and the gun ends faulted.
@Suite struct SilentDeviceShutdowns {
    static let boards = ["sim-60kw", "sim-dual-360kw", "sim-hpc-480kw", "sim-mcs-1mw", "sim-v2g-60kw"]
    /// Silent devices: the gun's first two modules (which keep delivering their last command), the meter, the IMD.
    static let silences = [["module-silent=0", "module-silent=1"], ["meter-silent:0"], ["imd-silent:0"]]
    /// One fault per error-shutdown row the plant can play: insulation, door (other fault preventing
    /// charge), connector over-temperature, CC1 broken, output above the car's maximum.
    static let faults = ["insulation:0=20kOhm", "door", "overheat:0=+80C", "cc1:0=0V", "overvoltage:0=560V"]

    @Test(arguments: boards)
    func everyShutdownRowHoldsWithASilentDevice(_ board: String) throws {
        var failures: [String] = []
        for silence in Self.silences {
            for fault in Self.faults {
                let events = (silence.map { ($0, "40 s") } + [(fault, "40.5 s")])
                    .map { "[[event]]\nat = \"\($0.1)\"\ndo = \"\($0.0)\"\n" }.joined(separator: "\n")
                let text = """
                [scenario]
                name = "silent-\(board)"
                board = "\(board)"
                duration = "60 s"

                [[car]]
                gun = 0
                profile = "capacity=40kWh,soc=20,target=90,max-voltage=500V,plug-at=2s"

                \(events)
                [[expect]]
                kind = "state"
                gun = 0
                at = "39 s"
                state = "charging"

                [[expect]]
                kind = "end-state"
                state = "faulted"
                """
                let r = ScenarioRunner.run(try Scenario.load(path: write(text), boardsDirectory: boardsDir))
                if !r.passed { failures.append("\(silence) then \(fault):\n\(ScenarioOutputs.text(r))") }
            }
        }
        #expect(failures.isEmpty, "\(failures.count) of \(Self.silences.count * Self.faults.count) failed:\n\(failures.joined(separator: "\n"))")
    }
}

/// Every citation of the form standards.md «Title» (the title in double quotes) in the code, the tests, the scenarios and the boards names a
/// section, a table row or a named bullet of the repository's own docs/standards.md, and nothing points
/// at a file outside the repository.
@Suite struct CitationsResolve {
    @Test func everyCitationNamesSomethingInDocsStandards() throws {
        let doc = try String(contentsOfFile: repoRoot + "/docs/standards.md", encoding: .utf8)
        let fm = FileManager.default
        var cited = 0
        var broken: [String] = []
        for dir in ["Sources", "Tests", "HIL", "Boards"] {
            guard let walk = fm.enumerator(atPath: repoRoot + "/" + dir) else { continue }
            for case let rel as String in walk where [".swift", ".toml", ".py", ".sh", ".md"].contains(where: { rel.hasSuffix($0) }) {
                guard let text = try? String(contentsOfFile: repoRoot + "/\(dir)/\(rel)", encoding: .utf8) else { continue }
                if text.contains("shared/" + "standards") { broken.append("\(dir)/\(rel): cites a file outside the repository") }
                var rest = Substring(text)
                while let r = rest.range(of: "standards" + ".md") {
                    rest = rest[r.upperBound...]
                    // The title in double quotes right after the name, or after a comma or a colon.
                    let after = rest.drop { $0 == "," || $0 == ":" || $0 == " " }
                    guard after.first == "\"", let close = after.dropFirst().firstIndex(of: "\"") else { continue }
                    let title = String(after[after.index(after: after.startIndex)..<close])
                    guard title.count >= 4, !title.contains("\n") else { continue }
                    cited += 1
                    if !doc.contains(title) { broken.append("\(dir)/\(rel): \"\(title)\"") }
                }
            }
        }
        #expect(cited >= 50, "found \(cited) citations")
        #expect(broken.isEmpty, "citations docs/standards.md does not have:\n\(broken.joined(separator: "\n"))")
    }
}

/// One parser of "number unit" (QuantityText) behind all four inputs a person writes: a board file, a
/// scenario, `--inject` and `--car` accept the same texts with the same value and refuse the same texts.
@Suite struct OneQuantityParser {
    static let cases: [(String, Double?)] = [
        ("900V", 900), ("900 V", 900), ("0.9 kV", 900), ("9e2 V", 900),
        ("900", nil), ("900 v", nil), ("900 KV", nil), ("V", nil), ("", nil), ("nine hundred V", nil),
    ]

    @Test(arguments: cases)
    func aVoltageReadsAlikeInEveryInput(_ text: String, _ volts: Double?) throws {
        let spec = try BoardLoader.load(path: boardsDir + "/sim-60kw.toml").spec
        // The parser itself.
        let direct = try? QuantityText.parse(text, .voltage).get()
        #expect(direct == volts, "QuantityText '\(text)'")
        // A board file's key (the Reader every board and site key goes through).
        let table = try TOMLTable(string: "v = \"\(text)\"")
        let board = try? Reader(file: "x.toml").quantity(Section(table: table, path: ""), "v", .voltage)
        #expect(board == volts, "board file '\(text)'")
        // --inject overvoltage=TEXT@1s
        let inject = try? InjectionParser.parse("overvoltage=\(text)@1s", spec: spec)
        if let volts {
            #expect(inject?.action == .plant(.overVoltage(gun: 0, Volts(volts))), "--inject '\(text)'")
        } else { #expect(inject == nil, "--inject accepted '\(text)'") }
        // --car max-voltage=TEXT
        let car = try? CarProfile.parse("soc=20,target=80,max-voltage=\(text)")
        #expect(car.map { $0.maxVoltage.value } == volts, "--car '\(text)'")
        // A scenario's expectation.
        let scenario = "[scenario]\nname = \"x\"\nboard = \"sim-60kw\"\n[[expect]]\nkind = \"voltage-below\"\nmax = \"\(text)\"\nafter = \"1 s\"\nwithin = \"1 s\"\n"
        let loaded = try? Scenario.load(path: write(scenario), boardsDirectory: boardsDir)
        #expect((loaded != nil) == (volts != nil), "scenario '\(text)'")
    }

    /// Times too: a bare number is refused in every input ("@120" was once 120 s on the command line).
    @Test func aTimeNeedsItsUnitEverywhere() throws {
        let spec = try BoardLoader.load(path: boardsDir + "/sim-60kw.toml").spec
        #expect(try QuantityText.parse("1500 ms", .time).get() == 1.5)
        #expect(try QuantityText.parse("2 h", .time).get() == 7200)
        #expect(throws: InjectionError.self) { try InjectionParser.parse("estop@120", spec: spec) }
        do { _ = try InjectionParser.parse("estop@120", spec: spec) } catch { #expect(error.why.contains("'120' has no unit; a time needs one of")) }
        #expect(try InjectionParser.parse("estop@2min", spec: spec).time == .at(Instant.zero + .s(120)))
        #expect(throws: CarProfile.ParseError.self) { try CarProfile.parse("soc=20,target=80,plug-at=5") }
        #expect(try CarProfile.parse("soc=20%,target=80,plug-at=5 s").plugAt == .s(5))
        #expect(throws: CarProfile.ParseError.self) { try CarProfile.parse("capacity=60,soc=20,target=80") }
        #expect(try CarProfile.parse("capacity=60kWh,soc=20,target=80").capacity == .kWh(60))
        // The battery from 1 kWh (the guest's bench) to 2 MWh; its resistance the model's or given.
        #expect(try CarProfile.parse("capacity=1kWh,soc=20,target=80").capacity == .kWh(1))
        #expect(throws: CarProfile.ParseError.self) { try CarProfile.parse("capacity=0.9kWh,soc=20,target=80") }
        #expect(throws: CarProfile.ParseError.self) { try CarProfile.parse("capacity=2001kWh,soc=20,target=80") }
        let modelled = try CarProfile.parse("capacity=2kWh,soc=20,target=80,max-voltage=750V")
        #expect(modelled.resistance == nil && abs(modelled.internalResistance.value - 169 * 0.0004 * 30) < 1e-9)
        #expect(try CarProfile.parse("capacity=2kWh,soc=20,target=80,resistance=0.2Ohm").internalResistance == Ohms(0.2))
        #expect(throws: CarProfile.ParseError.self) { try CarProfile.parse("capacity=2kWh,resistance=0.2") }
        #expect(throws: CarProfile.ParseError.self) { try CarProfile.parse("capacity=2kWh,resistance=20Ω") }
    }
}
