// What a scenario run leaves behind: the trace as CSV, JUnit XML for CI, and an SVG page per scenario
// (every gun, the station against its grid limit, states and faults) that a bench engineer reads.
import ChargerCore
import ChargerRuntime
import StationLoop
import LoopContract
import Foundation

public enum ScenarioOutputs {
    public static func csv(_ r: ScenarioResult) -> String {
        var s = "t_s,gun,state,vehicle_v,charger_v,current_a,power_kw,limit_kw,limit_source,soc_pct,gun_temp_c,faults\n"
        for x in r.trace {
            s += "\(fmt(x.t, 3)),\(x.gun),\(x.phase.name),\(fmt(x.vehicleVoltage, 2)),\(fmt(x.chargerVoltage, 2)),\(fmt(x.current, 2)),"
            s += "\(fmt(x.powerKW, 3)),\(fmt(x.limitKW, 3)),\(x.binding.name),\(x.soc.isNaN ? "" : fmt(x.soc, 2)),\(fmt(x.gunTemperature, 1)),\(x.faults)\n"
        }
        return s
    }

    static func xml(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    /// One testsuite per scenario; one testcase per expectation, plus the invariants.
    public static func junit(_ results: [ScenarioResult]) -> String {
        var s = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n"
        for r in results {
            let failures = r.verdicts.filter { !$0.passed }.count + (r.violations.isEmpty ? 0 : 1)
            s += "  <testsuite name=\"\(xml(r.scenario))\" tests=\"\(r.verdicts.count + 1)\" failures=\"\(failures)\" time=\"\(fmt(r.wallSeconds, 3))\" file=\"\(xml(r.file))\">\n"
            for v in r.verdicts {
                s += "    <testcase classname=\"\(xml(r.scenario))\" name=\"\(xml(v.expectation))\">"
                if !v.passed { s += "<failure message=\"\(xml(v.detail))\"/>" }
                s += "<system-out>\(xml(v.detail))</system-out></testcase>\n"
            }
            s += "    <testcase classname=\"\(xml(r.scenario))\" name=\"invariants every cycle\">"
            if !r.violations.isEmpty { s += "<failure message=\"\(xml(r.violations.prefix(5).joined(separator: "; ")))\"/>" }
            s += "</testcase>\n  </testsuite>\n"
        }
        return s + "</testsuites>\n"
    }

    // Long: one SVG document written top to bottom (axes, traces, markers, legend), sharing its scales
    /// One page per scenario, every gun on it. Panels sharing the time axis: the station's power against
    /// the limit it is held to (grid connection or setpoint); each gun's power with its active limit
    /// dashed; voltage; current; SOC. Under them one state lane per gun (a coloured band per session
    /// phase, named where it fits, with a legend), and every fault as a red line across the panels with
    /// its label stacked so that no two overlap. Axes carry ticks at round values and gridlines.
    public static func svg(_ r: ScenarioResult) -> String {
        let guns = Array(Set(r.trace.map(\.gun))).sorted()
        let width = 1100.0, left = 78.0, right = 24.0, panelH = 120.0, gap = 26.0
        let plotW = width - left - right
        let tMin = r.trace.first?.t ?? 0, tEnd = max(r.trace.last?.t ?? 1, r.endTime, tMin + 1)
        let (tTicks, tUnit, tScale) = timeTicks(tMin, tEnd)
        let t0 = tTicks.first ?? tMin, t1 = max(tTicks.last ?? tEnd, tEnd)
        func x(_ t: Double) -> Double { left + (t - t0) / (t1 - t0) * plotW }
        func gunColor(_ g: Int) -> String { palette[g % palette.count] }

        // Fault labels first: they decide how tall the lane above the panels is.
        let faults = r.faultMarks.sorted { $0.t < $1.t }
        var rows: [[(Double, Double)]] = []        // the labels' extents in each row
        var placed: [(x: Double, row: Int, text: String, leftOfLine: Bool, code: String)] = []
        for f in faults {
            let text = "\(f.code.split(separator: "-").first.map(String.init) ?? f.code)\(f.gun >= 0 ? " g\(f.gun)" : "") \(fmt(f.t, 3)) s"
            let fx = x(f.t), w = textWidth(text, 9) + 4
            // Right of its line, or left of it where it would run off the page.
            let leftOfLine = fx + w > width - 2
            let span = leftOfLine ? (fx - w, fx) : (fx, fx + w)
            let row = rows.firstIndex { $0.allSatisfy { $0.1 < span.0 || $0.0 > span.1 } } ?? rows.count
            if row == rows.count { rows.append([span]) } else { rows[row].append(span) }
            placed.append((fx, row, text, leftOfLine, f.code))
        }
        let rowsEnd = rows
        let legendY = 38.0, faultTop = 52.0
        let top = faultTop + Double(rowsEnd.count) * 12 + 8
        var panels: [(title: String, unit: String, fixedMax: Double?, series: [(String, Bool, [(Double, Double)])])] = []
        if !r.station.isEmpty {
            panels.append(("station power", "kW", nil, [("#444", false, r.station.map { ($0.t, $0.powerKW) }),
                                                        ("#d62728", true, r.station.map { ($0.t, $0.limitKW) })]))
        }
        func perGun(_ f: (TraceRow) -> Double?) -> [(String, Bool, [(Double, Double)])] {
            guns.map { g in (gunColor(g), false, r.trace.filter { $0.gun == g }.compactMap { row in f(row).map { (row.t, $0) } }) }
        }
        panels.append(
            (
                "power", "kW", nil,
                perGun { $0.powerKW } + guns.map { g in (gunColor(g), true, r.trace.filter { $0.gun == g }.map { ($0.t, $0.limitKW) }) }
            ))
        panels.append(("voltage", "V", nil, perGun { $0.vehicleVoltage }))
        panels.append(("current", "A", nil, perGun { $0.current }))
        panels.append(("SOC", "%", 100, perGun { $0.soc.isNaN ? nil : $0.soc }))
        let lanesTop = top + Double(panels.count) * (panelH + gap)
        let laneH = 16.0
        let phasesSeen = SessionPhase.allCases.filter { p in r.phaseMarks.contains { $0.phase == p.name } }
        let phaseLegendY = lanesTop + Double(guns.count) * (laneH + 4) + 48
        let phaseLegendRows = Int((Double(phasesSeen.count) / 6).rounded(.up))
        let height = phaseLegendY + Double(max(phaseLegendRows, 1)) * 14 + 10

        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" font-family=\"sans-serif\" font-size=\"10\">\n"
        s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        s += "<text x=\"\(left)\" y=\"18\" font-size=\"14\" font-weight=\"bold\">\(xml(r.scenario))</text>"
        s += "<text x=\"\(width - right)\" y=\"18\" font-size=\"12\" text-anchor=\"end\" fill=\"\(r.passed ? "#2ca02c" : "#d62728")\">\(r.board.isEmpty ? "" : xml(r.board) + " · ")\(r.passed ? "PASS" : "FAIL")</text>\n"
        // Legend: one colour per gun; dashed = limit.
        var lx = left
        for g in guns {
            s += "<line x1=\"\(lx)\" y1=\"\(legendY - 3)\" x2=\"\(lx + 18)\" y2=\"\(legendY - 3)\" stroke=\"\(gunColor(g))\" stroke-width=\"2\"/><text x=\"\(lx + 22)\" y=\"\(legendY)\">gun \(g)</text>"
            lx += 70
        }
        s += "<line x1=\"\(lx)\" y1=\"\(legendY - 3)\" x2=\"\(lx + 18)\" y2=\"\(legendY - 3)\" stroke=\"#555\" stroke-width=\"1.3\" stroke-dasharray=\"4 3\"/><text x=\"\(lx + 22)\" y=\"\(legendY)\">active limit (same colour)</text>"
        lx += 170
        if !r.station.isEmpty {
            s += "<line x1=\"\(lx)\" y1=\"\(legendY - 3)\" x2=\"\(lx + 18)\" y2=\"\(legendY - 3)\" stroke=\"#d62728\" stroke-width=\"1.3\" stroke-dasharray=\"4 3\"/><text x=\"\(lx + 22)\" y=\"\(legendY)\">station limit (grid connection or setpoint)</text>"
            lx += 250
        }
        s += "<line x1=\"\(lx)\" y1=\"\(legendY - 7)\" x2=\"\(lx)\" y2=\"\(legendY + 1)\" stroke=\"#d62728\" stroke-width=\"1.5\"/><text x=\"\(lx + 5)\" y=\"\(legendY)\">fault latched</text>\n"

        // Time gridlines through every panel and lane, ticks and their values at the bottom.
        let bottom = lanesTop + Double(guns.count) * (laneH + 4)
        for t in tTicks {
            s += "<line x1=\"\(fmt(x(t), 1))\" y1=\"\(top)\" x2=\"\(fmt(x(t), 1))\" y2=\"\(fmt(bottom, 1))\" stroke=\"#eee\"/>"
            s += "<text x=\"\(fmt(x(t), 1))\" y=\"\(fmt(bottom + 14, 1))\" text-anchor=\"middle\">\(fmt(t / tScale, tScale == 1 && (tTicks.count > 1 && tTicks[1] - tTicks[0] < 1) ? 1 : 0))</text>\n"
        }
        s += "<text x=\"\(left + plotW / 2)\" y=\"\(fmt(bottom + 28, 1))\" text-anchor=\"middle\">time (\(tUnit))</text>\n"

        for (i, p) in panels.enumerated() {
            let y0 = top + Double(i) * (panelH + gap)
            let hiData = p.series.flatMap { $0.2.map(\.1) }.max() ?? 1
            // Below zero too where a series goes there (V2G: power exported is negative).
            let loData = min(0, p.series.flatMap { $0.2.map(\.1) }.min() ?? 0)
            var (yTicks, yMax) = niceTicks(p.fixedMax ?? max(hiData, 1e-9))
            var yMin = 0.0
            if loData < 0 && p.fixedMax == nil {
                let (span, _) = niceTicks(max(hiData, 0) - loData)
                let step = span.count > 1 ? span[1] : 1
                yMin = (loData / step).rounded(.down) * step
                yMax = max(step, (max(hiData, 0) / step).rounded(.up) * step)
                yTicks = stride(from: yMin, through: yMax + step / 2, by: step).map { $0 }
            }
            func y(_ v: Double) -> Double { y0 + panelH - (max(yMin, min(v, yMax)) - yMin) / (yMax - yMin) * panelH }
            for v in yTicks {
                s += "<line x1=\"\(left)\" y1=\"\(fmt(y(v), 1))\" x2=\"\(left + plotW)\" y2=\"\(fmt(y(v), 1))\" stroke=\"#eee\"/>"
                s += "<line x1=\"\(left - 4)\" y1=\"\(fmt(y(v), 1))\" x2=\"\(left)\" y2=\"\(fmt(y(v), 1))\" stroke=\"#888\"/>"
                s += "<text x=\"\(left - 6)\" y=\"\(fmt(y(v) + 3, 1))\" text-anchor=\"end\">\(tickLabel(v, yTicks))</text>\n"
            }
            s += "<rect x=\"\(left)\" y=\"\(y0)\" width=\"\(plotW)\" height=\"\(panelH)\" fill=\"none\" stroke=\"#999\"/>\n"
            s += "<text x=\"14\" y=\"\(fmt(y0 + panelH / 2, 1))\" text-anchor=\"middle\" transform=\"rotate(-90 14 \(fmt(y0 + panelH / 2, 1)))\">\(p.title) (\(p.unit))</text>\n"
            for (color, dashed, points) in p.series where !points.isEmpty {
                var d = ""
                for (t, v) in points { d += (d.isEmpty ? "M" : "L") + "\(fmt(x(t), 1)),\(fmt(y(v), 1)) " }
                s += "<path d=\"\(d)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"\(dashed ? 1.1 : 1.5)\"\(dashed ? " stroke-dasharray=\"5 3\" opacity=\"0.8\"" : "")/>\n"
            }
        }

        // State lanes: one band per phase interval, named where the name fits.
        let phaseOf = Dictionary(uniqueKeysWithValues: SessionPhase.allCases.map { ($0.name, $0) })
        for (k, g) in guns.enumerated() {
            let yl = lanesTop + Double(k) * (laneH + 4)
            s += "<text x=\"\(left - 6)\" y=\"\(fmt(yl + 12, 1))\" text-anchor=\"end\" fill=\"\(gunColor(g))\">gun \(g) state</text>"
            let marks = r.phaseMarks.filter { $0.gun == g }.sorted { $0.t < $1.t }
            for (j, m) in marks.enumerated() {
                let a = x(m.t), b = x(j + 1 < marks.count ? marks[j + 1].t : tEnd)
                let phase = phaseOf[m.phase]
                s += "<rect x=\"\(fmt(a, 1))\" y=\"\(fmt(yl, 1))\" width=\"\(fmt(max(b - a, 0.6), 1))\" height=\"\(laneH)\" fill=\"\(phase.map(phaseColor) ?? "#ccc")\"><title>gun \(g) \(xml(m.phase)) from \(fmt(m.t, 3)) s</title></rect>"
                if textWidth(m.phase, 9) + 6 < b - a {
                    s += "<text x=\"\(fmt(a + 3, 1))\" y=\"\(fmt(yl + 12, 1))\" font-size=\"9\" fill=\"\(phase.map(phaseTextColor) ?? "#000")\">\(xml(m.phase))</text>"
                }
            }
            s += "\n"
        }
        // Phase legend (every phase that occurs, in session order).
        for (k, p) in phasesSeen.enumerated() {
            let px = left + Double(k % 6) * 160, py = phaseLegendY + Double(k / 6) * 14
            s += "<rect x=\"\(px)\" y=\"\(fmt(py - 9, 1))\" width=\"12\" height=\"10\" fill=\"\(phaseColor(p))\"/><text x=\"\(px + 16)\" y=\"\(fmt(py, 1))\">\(p.name)</text>"
        }
        s += "\n"
        // Faults: a line across panels and lanes, the label in its row of the lane above.
        for f in placed {
            let ly = faultTop + Double(f.row) * 12 + 9
            s += "<line x1=\"\(fmt(f.x, 1))\" y1=\"\(fmt(ly + 2, 1))\" x2=\"\(fmt(f.x, 1))\" y2=\"\(fmt(bottom, 1))\" stroke=\"#d62728\" stroke-width=\"1\" opacity=\"0.8\"><title>\(xml(f.code))</title></line>"
            s += "<text x=\"\(fmt(f.leftOfLine ? f.x - 2 : f.x + 2, 1))\" y=\"\(fmt(ly, 1))\" font-size=\"9\" fill=\"#d62728\"\(f.leftOfLine ? " text-anchor=\"end\"" : "")>\(xml(f.text))</text>\n"
        }
        return s + "</svg>\n"
    }

    static let palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
                          "#7f7f7f", "#393b79", "#637939", "#843c39"]

    /// A colour per session phase: greys while idle, blues through the set-up, green while charging,
    /// ambers while stopping, red when faulted.
    static func phaseColor(_ p: SessionPhase) -> String {
        switch p {
        case .unplugged: "#f2f2f2"
        case .connecting, .connected, .locking: "#d9d9d9"
        case .auxPower, .handshake: "#c6dbef"
        case .insulationCheck: "#9ecae1"
        case .identification, .parameterExchange: "#6baed6"
        case .precharge: "#4292c6"
        case .charging: "#74c476"
        case .stopping: "#fdae6b"
        case .statistics, .weldingCheck: "#fdd0a2"
        case .unlocking, .finished: "#e5e5e5"
        case .faulted: "#ef3b2c"
        }
    }
    static func phaseTextColor(_ p: SessionPhase) -> String { p == .faulted || p == .precharge ? "#fff" : "#222" }

    /// Width of `text` at `size` px in a sans-serif face (an estimate: 0.58 em per character).
    public static func textWidth(_ text: String, _ size: Double) -> Double { Double(text.count) * size * 0.58 }

    /// Ticks at 1, 2 or 5 × 10^k from zero up to the first tick at or above `hi` (4 to 8 intervals).
    static func niceTicks(_ hi: Double) -> ([Double], Double) {
        let raw = hi / 5
        let mag = pow(10, (log10(raw)).rounded(.down))
        let step = [1.0, 2, 5, 10].map { $0 * mag }.first { hi / $0 <= 8 } ?? 10 * mag
        let n = Int((hi / step).rounded(.up))
        let ticks = (0...max(n, 1)).map { Double($0) * step }
        return (ticks, ticks.last!)
    }

    static func tickLabel(_ v: Double, _ ticks: [Double]) -> String {
        let step = ticks.count > 1 ? ticks[1] - ticks[0] : 1
        return fmt(v, step < 1 ? (step < 0.1 ? 2 : 1) : 0)
    }

    /// Time ticks in seconds, or minutes past 20 minutes; returns the ticks (in seconds), the unit's name
    /// and seconds per unit.
    static func timeTicks(_ t0: Double, _ t1: Double) -> ([Double], String, Double) {
        let scale = t1 - t0 > 1200 ? 60.0 : 1.0
        let span = (t1 - t0) / scale
        let (rel, _) = niceTicks(span)
        let step = rel.count > 1 ? rel[1] : span
        let first = (t0 / scale / step).rounded(.down) * step
        var ticks: [Double] = []
        var v = first
        while v <= t1 / scale + step * 0.999 && ticks.count < 40 { ticks.append(v * scale); v += step }
        return (ticks, scale == 60 ? "min" : "s", scale)
    }

    /// The console lines for one scenario: each expectation, pass/fail, with its time and values.
    public static func text(_ r: ScenarioResult) -> String {
        var s = "\(r.passed ? "PASS" : "FAIL") \(r.scenario) (\(fmt(r.endTime, 1)) s simulated in \(fmt(r.wallSeconds, 2)) s)\n"
        for v in r.verdicts { s += "  \(v.passed ? "ok  " : "FAIL") \(v.expectation): \(v.detail)\n" }
        if r.violations.isEmpty { s += "  ok   invariants every cycle\n" }
        else { for x in r.violations.prefix(5) { s += "  FAIL invariant: \(x)\n" } }
        return s
    }
}
