// A campaign's results as files and reports: one JSON line per seed (so that shards run on many machines
// can be joined), the text report `charger-hil fuzz` prints, and JUnit XML. The same results give the
// same report however they were produced: one process, many (`--jobs`), or many machines (`--shard`, merge).
import Foundation

/// Which seeds a campaign runs: `count` seeds from `start`, or the I-th of N contiguous slices of them.
public struct CampaignSlice: Codable, Equatable, Sendable {
    public var start: UInt64
    public var count: Int
    /// 1-based shard index and the number of shards (1/1: the whole campaign).
    public var shard: Int = 1
    public var shards: Int = 1

    public init(start: UInt64, count: Int, shard: Int = 1, shards: Int = 1) {
        self.start = start; self.count = count; self.shard = shard; self.shards = shards
    }

    /// Parses "I/N" (1 ≤ I ≤ N ≤ count).
    public static func parseShard(_ text: String, count: Int) throws(CampaignFileError) -> (Int, Int) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let i = Int(parts[0]), let n = Int(parts[1]) else {
            throw CampaignFileError("--shard '\(text)': expected I/N, e.g. 2/8 (the 2nd of 8 slices, 1-based)")
        }
        guard n >= 1, n <= count else { throw CampaignFileError("--shard '\(text)': N must be 1...\(count) (the number of seeds)") }
        guard i >= 1, i <= n else { throw CampaignFileError("--shard '\(text)': I must be 1...\(n)") }
        return (i, n)
    }

    /// The seeds of this slice, in order. Slices are contiguous and differ in size by at most one seed.
    public var seeds: [UInt64] {
        let lo = count * (shard - 1) / shards, hi = count * shard / shards
        return (lo..<hi).map { start &+ UInt64($0) }
    }
}

public struct CampaignFileError: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}

/// The results file: a header line naming the slice, then one line per seed, in seed order.
public enum CampaignFile {
    struct Header: Codable { var campaign: CampaignSlice }

    public static func encode(_ slice: CampaignSlice, _ results: [SeedResult]) -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var text = String(decoding: (try? e.encode(Header(campaign: slice))) ?? Data(), as: UTF8.self) + "\n"
        for r in results { text += line(r, e) + "\n" }
        return text
    }

    public static func line(_ r: SeedResult, _ e: JSONEncoder = JSONEncoder()) -> String {
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? e.encode(r)) ?? Data(), as: UTF8.self)
    }

    public static func decodeLine(_ line: Substring, file: String, number: Int) throws(CampaignFileError) -> SeedResult {
        do { return try JSONDecoder().decode(SeedResult.self, from: Data(line.utf8)) } catch {
            throw CampaignFileError("\(file): line \(number): not a seed result (\(error))")
        }
    }

    public static func read(path: String) throws(CampaignFileError) -> (CampaignSlice, [SeedResult]) {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw CampaignFileError("\(path): cannot read") }
        let lines = text.split(separator: "\n")
        guard let first = lines.first, let h = try? JSONDecoder().decode(Header.self, from: Data(first.utf8)) else {
            throw CampaignFileError("\(path): line 1: not a campaign header (expected {\"campaign\":{...}})")
        }
        var results: [SeedResult] = []
        for (i, l) in lines.dropFirst().enumerated() { results.append(try decodeLine(l, file: path, number: i + 2)) }
        let expected = h.campaign.seeds
        guard results.map(\.seed) == expected else {
            throw CampaignFileError("\(path): holds \(results.count) of the \(expected.count) seeds of shard \(h.campaign.shard)/\(h.campaign.shards) (an unfinished shard?)")
        }
        return (h.campaign, results)
    }

    /// Joins shard files into the whole campaign: the same start and size everywhere, every shard once.
    public static func merge(_ parts: [(CampaignSlice, [SeedResult])]) throws(CampaignFileError) -> (CampaignSlice, [SeedResult]) {
        guard let first = parts.first?.0 else { throw CampaignFileError("merge: no results files") }
        for (s, _) in parts where s.start != first.start || s.count != first.count || s.shards != first.shards {
            throw CampaignFileError("merge: shard \(s.shard)/\(s.shards) of \(s.count) seeds from \(s.start) is not of the campaign of \(first.count) seeds from \(first.start) in \(first.shards) shards")
        }
        let have = parts.map(\.0.shard).sorted()
        guard have == Array(1...first.shards) else {
            let missing = Set(1...first.shards).subtracting(have).sorted()
            let twice = Dictionary(grouping: have, by: { $0 }).filter { $0.value.count > 1 }.keys.sorted()
            throw CampaignFileError("merge: shards of \(first.shards): missing \(missing), given twice \(twice)")
        }
        let all = parts.sorted { $0.0.shard < $1.0.shard }.flatMap(\.1)
        return (CampaignSlice(start: first.start, count: first.count), all)
    }
}

public enum CampaignReport {
    /// What `charger-hil fuzz` prints for a seed (every seed with --verbose, else the failures only).
    public static func seedLines(_ r: SeedResult, verbose: Bool) -> String {
        guard verbose || !r.passed else { return "" }
        var t = "seed \(r.seed): \(r.passed ? "ok" : "FAIL") board \(r.board), cars [\(r.cars.joined(separator: "; "))], events [\(r.events.joined(separator: ", "))], faults [\(r.faults.joined(separator: ", "))], trace \(String(r.traceHash, radix: 16))\n"
        if !r.passed {
            for f in r.failures { t += "  \(f)\n" }
            t += "  replay: \(replay(r))\n"
        }
        return t
    }

    /// The progress line a terminal sees while a campaign runs (never written when standard error is
    /// not a terminal, or under CI): seeds done of all, failures, the rate and the time left at it.
    public static func progress(done: Int, of total: Int, failed: Int, elapsed: Double) -> String {
        let rate = elapsed > 0 ? Double(done) / elapsed : 0
        var left = "?"
        if rate > 0, done < total {
            let s = Int((Double(total - done) / rate).rounded(.up))
            left = s >= 3600 ? "\(s / 3600) h \(s % 3600 / 60) min" : s >= 60 ? "\(s / 60) min \(s % 60) s" : "\(s) s"
        } else if done >= total { left = "0 s" }
        let pct = total > 0 ? Double(done) * 100 / Double(total) : 0
        return "seeds \(done)/\(total) (\(String(format: "%.1f", pct)) %), \(failed) failed, \(String(format: "%.1f", rate)) seeds/s, \(left) left"
    }

    public static func replay(_ r: SeedResult) -> String { "charger-hil fuzz --seeds 1 --seed \(r.seed) --verbose" }

    /// The closing line (wall time and process count vary; everything before it does not).
    public static func summary(_ slice: CampaignSlice, _ results: [SeedResult], wall: Double?, jobs: Int?) -> String {
        let failed = results.filter { !$0.passed }.count
        let faults = results.reduce(0) { $0 + $1.faults.count }
        let simulated = results.reduce(0.0) { $0 + $1.simulated }
        let shard = slice.shards > 1 ? " (shard \(slice.shard)/\(slice.shards) of \(slice.count) seeds)" : ""
        let first = results.first?.seed ?? slice.start
        var t = "charger-hil fuzz: \(results.count) seed(s) from \(first)\(shard), \(results.count - failed) passed, \(failed) failed; \(faults) faults raised; \(String(format: "%.0f", simulated / 60)) min simulated"
        if let wall { t += " in \(String(format: "%.1f", wall)) s" + (jobs.map { " on \($0) process(es)" } ?? "") }
        return t
    }

    /// An HTML page a bench engineer reads: the campaign's figures, the seeds per board, and every failure
    /// with its draw (board, cars, events), the faults it raised, what failed and the command that replays it.
    public static func html(_ slice: CampaignSlice, _ results: [SeedResult]) -> String {
        func esc(_ s: String) -> String {
            s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
        }
        let failed = results.filter { !$0.passed }
        let simulated = results.reduce(0.0) { $0 + $1.simulated }
        var h = """
        <!DOCTYPE html>
        <html><head><meta charset="utf-8"><title>Fault campaign: \(results.count) seeds from \(results.first?.seed ?? slice.start)</title>
        <style>body{font-family:sans-serif;margin:24px;color:#222}table{border-collapse:collapse;margin:8px 0 20px}
        td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top;font-size:13px}th{background:#f4f4f4}
        .fail{color:#c00;font-weight:bold}.ok{color:#080;font-weight:bold}code{background:#f6f6f6;padding:1px 4px;white-space:nowrap}</style></head><body>

        """
        h += "<h1>Fault campaign: \(results.count) seeds from \(results.first?.seed ?? slice.start)</h1>\n"
        h += "<p class=\"\(failed.isEmpty ? "ok" : "fail")\">\(results.count - failed.count) passed, \(failed.count) failed</p>\n"
        h += "<p>\(results.reduce(0) { $0 + $1.faults.count }) faults raised; \(String(format: "%.1f", simulated / 3600)) hours simulated.</p>\n"
        h += "<h2>Seeds per board</h2><table><tr><th>board</th><th>seeds</th><th>failed</th><th>faults raised</th></tr>\n"
        for board in Set(results.map(\.board)).sorted() {
            let rs = results.filter { $0.board == board }
            h += "<tr><td>\(esc(board))</td><td>\(rs.count)</td><td>\(rs.filter { !$0.passed }.count)</td><td>\(rs.reduce(0) { $0 + $1.faults.count })</td></tr>\n"
        }
        h += "</table>\n<h2>Failures</h2>\n"
        if failed.isEmpty { h += "<p>None.</p>\n" } else {
            h += "<table><tr><th>seed</th><th>board</th><th>cars</th><th>events</th><th>faults</th><th>what failed</th><th>replay</th></tr>\n"
            for r in failed {
                h += "<tr><td>\(r.seed)</td><td>\(esc(r.board))</td><td>\(r.cars.map(esc).joined(separator: "<br>"))</td>"
                h += "<td>\(r.events.map(esc).joined(separator: "<br>"))</td><td>\(r.faults.map(esc).joined(separator: "<br>"))</td>"
                h += "<td>\(r.failures.map(esc).joined(separator: "<br>"))</td><td><code>\(esc(replay(r)))</code></td></tr>\n"
            }
            h += "</table>\n"
        }
        return h + "</body></html>\n"
    }

    /// JUnit XML: one test case per seed, a failure carrying what failed and the replay command.
    public static func junit(_ results: [SeedResult], name: String = "fault-campaign") -> String {
        func esc(_ s: String) -> String {
            s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
                .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
        }
        let failed = results.filter { !$0.passed }.count
        var x = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n"
        x += "<testsuite name=\"\(esc(name))\" tests=\"\(results.count)\" failures=\"\(failed)\">\n"
        for r in results {
            x += "<testcase classname=\"\(esc(name)).\(esc(r.board))\" name=\"seed \(r.seed)\" time=\"0\">"
            if !r.passed {
                x += "<failure message=\"\(esc(r.failures.first ?? ""))\">\(esc((r.failures + ["replay: " + replay(r), "events: " + r.events.joined(separator: ", ")]).joined(separator: "\n")))</failure>"
            }
            x += "</testcase>\n"
        }
        return x + "</testsuite>\n</testsuites>\n"
    }
}
