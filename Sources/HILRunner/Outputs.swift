// What a scenario run leaves behind: the trace as CSV, JUnit XML for CI, and an SVG plot of power,
// voltage, current, SOC and the active limit over time with faults and state changes marked.
import ChargerCore
import ChargerRuntime
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

    /// Four panels sharing the time axis: power and the active limit (kW), voltage (V), current (A), SOC (%);
    /// faults as red lines, state changes as grey ticks with their names.
    public static func svg(_ r: ScenarioResult, gun: Int = 0) -> String {
        let rows = r.trace.filter { $0.gun == gun }
        let width = 900.0, panelH = 130.0, left = 60.0, right = 20.0, top = 30.0, gap = 22.0
        let panels: [(String, String, (TraceRow) -> Double?)] = [
            ("power kW", "#1f77b4", { $0.powerKW }),
            ("voltage V", "#2ca02c", { $0.vehicleVoltage }),
            ("current A", "#ff7f0e", { $0.current }),
            ("SOC %", "#9467bd", { $0.soc.isNaN ? nil : $0.soc }),
        ]
        let height = top + Double(panels.count) * (panelH + gap) + 30
        let t0 = rows.first?.t ?? 0, t1 = max(rows.last?.t ?? 1, t0 + 1)
        func x(_ t: Double) -> Double { left + (t - t0) / (t1 - t0) * (width - left - right) }
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" font-family=\"sans-serif\" font-size=\"10\">\n"
        s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        s += "<text x=\"\(left)\" y=\"16\" font-size=\"13\">\(xml(r.scenario)) — gun\(gun) (\(r.passed ? "pass" : "FAIL"))</text>\n"
        for (i, p) in panels.enumerated() {
            let y0 = top + Double(i) * (panelH + gap)
            var values = rows.compactMap { p.2($0) }
            if i == 0 { values += rows.map(\.limitKW) }
            let hi = i == 3 ? 100 * 1.08 : max(values.max() ?? 1, 1) * 1.08   // SOC on its full 0...100 % scale
            func y(_ v: Double) -> Double { y0 + panelH - v / hi * panelH }
            s += "<rect x=\"\(left)\" y=\"\(y0)\" width=\"\(width - left - right)\" height=\"\(panelH)\" fill=\"none\" stroke=\"#ccc\"/>\n"
            s += "<text x=\"4\" y=\"\(y0 + 12)\">\(p.0)</text><text x=\"4\" y=\"\(y0 + 26)\" fill=\"#888\">max \(fmt(hi / 1.08, 1))</text>\n"
            func path(_ f: (TraceRow) -> Double?, _ color: String, dash: Bool = false) -> String {
                var d = ""
                for row in rows { if let v = f(row) { d += (d.isEmpty ? "M" : "L") + "\(fmt(x(row.t), 1)),\(fmt(y(v), 1)) " } }
                return d.isEmpty ? "" : "<path d=\"\(d)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.3\"\(dash ? " stroke-dasharray=\"4 3\"" : "")/>\n"
            }
            if i == 0 {
                s += path({ $0.limitKW }, "#d62728", dash: true)
                s += "<text x=\"\(left + 6)\" y=\"\(y0 + panelH - 6)\" fill=\"#d62728\">- - active limit (kW)</text>\n"
            }
            s += path(p.2, p.1)
        }
        let bottom = top + Double(panels.count) * (panelH + gap) - gap
        for m in r.phaseMarks where m.gun == gun {
            s += "<line x1=\"\(fmt(x(m.t), 1))\" y1=\"\(top)\" x2=\"\(fmt(x(m.t), 1))\" y2=\"\(bottom)\" stroke=\"#bbb\" stroke-width=\"0.5\"/>"
            s += "<text x=\"\(fmt(x(m.t) + 2, 1))\" y=\"\(bottom + 12)\" fill=\"#777\" font-size=\"8\" transform=\"rotate(30 \(fmt(x(m.t) + 2, 1)) \(bottom + 12))\">\(xml(m.phase))</text>\n"
        }
        for f in r.faultMarks where f.gun == gun || f.gun < 0 {
            s += "<line x1=\"\(fmt(x(f.t), 1))\" y1=\"\(top)\" x2=\"\(fmt(x(f.t), 1))\" y2=\"\(bottom)\" stroke=\"#d62728\" stroke-width=\"1.5\"/>"
            s += "<text x=\"\(fmt(x(f.t) + 3, 1))\" y=\"\(top + 10)\" fill=\"#d62728\">\(xml(f.code))</text>\n"
        }
        for k in 0...5 {
            let t = t0 + (t1 - t0) * Double(k) / 5
            s += "<text x=\"\(fmt(x(t) - 10, 1))\" y=\"\(height - 6)\">\(fmt(t, 0)) s</text>"
        }
        return s + "\n</svg>\n"
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
