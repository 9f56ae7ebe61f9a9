// What a technician needs at a faulted charger, fault by fault: what tripped it and against which limit,
// the checks to make, and what a reset does. One table: the console's `help E05` prints it, and
// docs/faults.md's "Fault by fault" is generated from it (`chargerd --list-faults --markdown`; a test
// compares the page with the table). The value a record carries is shown with its unit and the limit it
// crossed (`reading`), so "E05 value 40000.000" reads "40.0 kΩ, limit 75.0 kΩ".
import ChargerCore
import Foundation
import Journal

public enum FaultGuide {
    public struct Entry: Sendable {
        /// What the controller saw, with the limit and where it comes from.
        public var trips: String
        /// What to check on site, in order.
        public var checks: [String]
        /// What clears it.
        public var reset: String
    }

    /// The common reset rule: an explicit reset clears what is no longer there; a restart clears nothing.
    static let resetRule = "`fault reset GUN` on the console (after login) clears it once the condition is gone; a "
        + "restart, an OCPP Reset's included, does not: the fault is latched again at start from the journal."

    // Long: a table: one case per fault code, what trips it, the checks and the reset
    public static func entry(_ c: FaultCode) -> Entry {
        switch c {
        case .emergencyStop:
            return Entry(trips: "The emergency-stop input is active (station-wide): modules off and K1/K2 open in the same cycle.",
                         checks: ["Find out who pressed it and why before anything else.",
                                  "Release the button (turn to unlock) and check the e-stop line reads inactive: `status` shows no E-STOP PRESSED.",
                                  "If nobody pressed it: the e-stop loop's wiring and its input line (board file `[[gpio]] estop`)."],
                         reset: "Refused while the button is pressed. " + resetRule)
        case .doorOpen:
            return Entry(trips: "The cabinet door switch reads open (station-wide): error shutdown, K1/K2 open within 100 ms.",
                         checks: ["Close the door; check `status` no longer shows DOOR OPEN.",
                                  "A door that is shut but reads open: the switch, its adjustment and its input line (board file `door`)."],
                         reset: resetRule)
        case .groundFault:
            return Entry(trips: "The residual-current / 6 mA DC earth-fault detector tripped while the gun was energised "
                         + "(docs/standards.md \"Residual current / earth\"): emergency shutdown.",
                         checks: ["Do not reconnect the car: inspect the cable, the gun and the car's inlet for damage or water.",
                                  "Measure the insulation of the DC output to PE with the gun unplugged.",
                                  "The detector tests itself before every session where the board says `ground_detector_self_test`: a failing test latches E30."],
                         reset: "Refused while the detector still reads tripped. " + resetRule)
        case .protectiveEarthLost:
            return Entry(trips: "The protective-earth continuity monitor reads the gun's PE conductor broken: power cut within 100 ms.",
                         checks: ["Check the PE conductor of the cable and the gun, and the cabinet's earth bar.",
                                  "Measure PE continuity from the gun's PE pin to the cabinet's earth."],
                         reset: "Refused while PE still reads lost. " + resetRule)
        case .insulationFault:
            return Entry(trips: "The insulation resistance of the DC output to PE is at or below 100 Ω/V of the test or output "
                         + "voltage, or the IMD raised its alarm (docs/standards.md \"Insulation check before charging\"). "
                         + "The value is the resistance measured; the limit is 100 Ω/V at that voltage.",
                         checks: ["`imd` shows the IMD's present reading and the reading that tripped.",
                                  "Unplug the car and run the check again (`imd selftest GUN`, then a session): a fault that stays "
                                  + "without the car is in the charger's cable or gun, one that comes with one car is that car's.",
                                  "Inspect the cable and the gun for damage and moisture; measure R+ and R- to PE with an insulation tester."],
                         reset: resetRule + " A session measures the insulation again before any energy.")
        case .insulationCheckTimeout:
            return Entry(trips: "The insulation (cable) check did not complete: its 25 s bound passed (value in s), the IMD did not "
                         + "answer for 15 s (s), or the output was not discharged below 10 V before it or below 60 V within "
                         + "1 s after it (value in V).",
                         checks: ["The unit of the value says which: seconds, a timeout; volts, a discharge that did not happen.",
                                  "A timeout: `imd` (is the IMD read?), `comm` (its Modbus counters), `modules` (did the modules raise the test voltage?).",
                                  "A discharge: the discharge resistor and its contactor."],
                         reset: resetRule)
        case .imdSelfTestFailed:
            return Entry(trips: "The IMD's self-test during the cable check failed or did not finish within 30 s "
                         + "(IEC 61851-23:2023 CC.4.1.3).",
                         checks: ["`imd selftest GUN` on an idle gun and read its result in `imd`.",
                                  "A device that keeps failing it must be replaced: no session runs without a working IMD."],
                         reset: resetRule)
        case .outputVoltageBeforeCheck:
            return Entry(trips: "Before the insulation check the voltage outside K1/K2 was 10 V or more (the car's side): charging refused.",
                         checks: ["The car may have its battery contactors closed early: try another car on the same gun.",
                                  "Measure the gun's DC+ to DC- with the car unplugged; check K1/K2 are open (`test contactor`)."],
                         reset: resetRule)
        case .overVoltageTable103:
            return Entry(trips: "The output voltage was above IEC 61851-23 Table 103's limit for the gun's rated voltage for 9 ms: "
                         + "emergency shutdown.",
                         checks: ["`log` for the modules' setpoints before it: a module that overshoots is faulty.",
                                  "The voltage measurement (both sides of K1/K2) against a meter."],
                         reset: resetRule)
        case .overVoltageVehicleMax:
            return Entry(trips: "The output voltage was above the car's maximum (BHM) for 10 ms with its battery on the cable: stop, "
                         + "K1/K2 open within 1 s.",
                         checks: ["Try another car: a car that asks for more than its own maximum (BHM) is at fault.",
                                  "Otherwise as E09: a module overshooting or a wrong voltage reading."],
                         reset: resetRule)
        case .overVoltageNegotiated:
            return Entry(trips: "The output voltage was above the negotiated maximum (the lower of the charger's and the car's) "
                         + "for more than 400 ms: error shutdown.",
                         checks: ["As E10."],
                         reset: resetRule)
        case .overCurrent:
            return Entry(trips: "The current was above the gun's rating times the board's over-current factor for 2 ms, or more "
                         + "than 20 A beyond what the modules were commanded for 100 ms: emergency shutdown.",
                         checks: ["`modules`: a module that does not follow its setpoint.",
                                  "The current measurement (meter or shunt) against a clamp meter.",
                                  "A short in the cable or the car: inspect before the next session."],
                         reset: resetRule)
        case .gunOverTemperature:
            return Entry(trips: "The gun's temperature sensor read above the board's trip temperature: error shutdown. Derating "
                         + "starts well below it (board file derating curve).",
                         checks: ["Let the gun cool; check `status` shows its temperature falling.",
                                  "The gun's sensor and its wiring; the contacts of the gun for wear or burns; liquid cooling, where fitted."],
                         reset: "Refused while the temperature is still above the trip. " + resetRule)
        case .contactorWelded:
            return Entry(trips: "K1 or K2 (the value: 1 is K1, 2 is K2) still reads closed after it was commanded open: "
                         + "a welded contact. The gun is blocked.",
                         checks: ["Do not plug a car into this gun.",
                                  "Measure across the contactor; replace a welded one; check the aux contact's wiring if the contactor is sound.",
                                  "Plug out, `test contactor K1 GUN` runs under this fault alone (modules off): it closes K1/K2, "
                                  + "opens them and says the close and open times, or which contact stayed closed."],
                         reset: "Refused while the aux contact still reads closed. " + resetRule)
        case .contactorFailedToClose:
            return Entry(trips: "A contactor did not close when commanded: K1 or K2 (value 1 or 2) within the board's close "
                         + "timeout, or K3/K4, the car's auxiliary supply (value in s) within 5 s.",
                         checks: ["The coil's supply and its driver line.",
                                  "Plug out, `test contactor K1 GUN` runs under this fault alone (modules off) and says the close "
                                  + "and open times; `test contactor K3 GUN` once the fault is reset."],
                         reset: resetRule)
        case .cc1OutOfBand:
            return Entry(trips: "The connection-confirm voltage CC1 left the 3.2-4.8 V band during a session (3 ms): the gun was "
                         + "pulled, its latch opened, or the CC1 circuit broke (GB/T 18487.1 Annex B).",
                         checks: ["Was the gun unplugged or the latch pressed? `log` shows when.",
                                  "The gun's CC1 resistor and pin; the car's inlet."],
                         reset: resetRule)
        case .vehicleCommTimeout:
            return Entry(trips: "The car stopped sending a GB/T 27930 message within its timeout three times in a row, or sent "
                         + "no BCL for 10 s while energised. The value names the message (BCL, BCS, ...).",
                         checks: ["`can` (boards with a CAN link): the frames counted, their errors and each message's age; another car on the same gun.",
                                  "The CAN wiring of the gun (S+/S-), its termination, and the bitrate (250 kbit/s)."],
                         reset: resetRule)
        case .vehicleVoltageMismatch:
            return Entry(trips: "The battery voltage measured outside K1/K2 was not within ±5 % of what the car reported (BCP), "
                         + "or outside the charger's range: charging refused.",
                         checks: ["Another car on the same gun: a car that reports wrong voltages is at fault.",
                                  "The vehicle-side voltage measurement against a meter."],
                         reset: resetRule)
        case .prechargeTimeout:
            return Entry(trips: "K1/K2 did not close within 60 s of the precharge (the output never matched the battery within 1-10 V).",
                         checks: ["`modules`: are modules assigned and following the voltage setpoint?",
                                  "The voltage measurements on both sides of K1/K2."],
                         reset: resetRule)
        case .inrushOverCurrent:
            return Entry(trips: "More than 20 A beyond the command flowed while K1/K2 closed (precharge or the first 100 ms): "
                         + "emergency shutdown.",
                         checks: ["The precharge matched the battery voltage? `log` around the fault.",
                                  "A module ignoring its setpoint; the current measurement."],
                         reset: resetRule)
        case .lockFailure:
            return Entry(trips: "The gun's electronic lock did not confirm locked within the board's lock timeout: no test voltage "
                         + "without a locked gun.",
                         checks: ["Push the gun fully home and try again.",
                                  "The lock's actuator, its feedback switch and their lines (`test lock GUN`)."],
                         reset: resetRule)
        case .moduleFault:
            return Entry(trips: "A rectifier module reports a fault of its own (value: its temperature): it is released and "
                         + "replaced from the pool; the session goes on with less power (derate).",
                         checks: ["`modules` names it; its own display or error register.",
                                  "Its cooling (fans, filters, ambient temperature)."],
                         reset: "Clears with `fault reset` once the module reports healthy again.")
        case .moduleCommLost:
            return Entry(trips: "A rectifier module did not answer on its bus for longer than the board's module timeout "
                         + "(value: the time silent, limit: the timeout): derate; it switches itself off after its own timeout.",
                         checks: ["`modules` and `comm`: its counters and libmodbus's last error.",
                                  "The module's bus cable, its address (unit) and its supply."],
                         reset: "Clears with `fault reset` once it answers again.")
        case .noModulesAvailable:
            return Entry(trips: "A gun that needed power had no healthy module for longer than the board's grace: error shutdown.",
                         checks: ["`modules`: every module faulted, silent or serving another gun."],
                         reset: resetRule)
        case .meterCommLost:
            return Entry(trips: "The gun's DC meter did not answer for longer than the board's meter timeout (value: the time "
                         + "silent): no session without metering.",
                         checks: ["`comm`: the meter's counters and last error; its bus cable, address and supply."],
                         reset: resetRule)
        case .imdCommLost:
            return Entry(trips: "The insulation monitor did not answer for longer than the board's IMD timeout (value: the time "
                         + "silent): no session without insulation monitoring.",
                         checks: ["`comm`: the IMD's counters and last error; its bus cable, address and supply."],
                         reset: resetRule)
        case .mainsLost:
            return Entry(trips: "The AC mains input is gone (station-wide): emergency shutdown, output below 60 V within 1 s, no "
                         + "automatic resume.",
                         checks: ["The station's supply and its breaker; the mains-present input line."],
                         reset: "Refused until mains is back. " + resetRule)
        case .escalatedToEmergency:
            return Entry(trips: "A shutdown could not bring the current to 5 A or less by its row's deadline, so K1/K2 opened under "
                         + "load (value: the current broken, in A). The contactor-wear record.",
                         checks: ["The fault before it in `faults` is the cause; this one records the current broken.",
                                  "Contactors that break current under load wear: count these per contactor and inspect."],
                         reset: resetRule)
        case .controlLoopOverrun:
            return Entry(trips: "The real-time loop missed more deadlines in a row than the board's `[runtime] miss_limit` "
                         + "(station-wide).",
                         checks: ["`rt`: the loop's latency histogram and misses.",
                                  "The board's real-time setup (SCHED_FIFO, isolated CPU; docs/realtime.md) and what else runs on it."],
                         reset: resetRule)
        case .groundDetectorSelfTestFailed:
            return Entry(trips: "The earth-fault detector's self-test before the session failed or did not finish: no session without it.",
                         checks: ["The detector's test winding, its test output line (`rcd-test`) and its trip input; `log` for the test's timing."],
                         reset: resetRule)
        case .stepContractBroken:
            return Entry(trips: "The control step's own outputs broke its contract after the arbiter (the value names the rule): "
                         + "the gun is cut. A software defect, never a site fault.",
                         checks: ["Export the journal (`export json`) and report it with the board file and the version (`version`)."],
                         reset: resetRule)
        case .boardIOFailed:
            return Entry(trips: "A bulk read or write of the board's GPIO lines failed in the loop (station-wide): every output line "
                         + "was forced safe.",
                         checks: ["The kernel log (`dmesg`) for the GPIO chip; the board's supply."],
                         reset: resetRule)
        case .auxSupplyOutOfRange:
            return Entry(trips: "The car's 12 V auxiliary supply was outside 12 V ± 0.6 V for 100 ms once K3/K4 had been closed "
                         + "200 ms: error shutdown.",
                         checks: ["The auxiliary power supply's output under load; the K3/K4 contacts and the gun's A+/A- pins."],
                         reset: resetRule)
        case .meteringDeviation:
            return Entry(trips: "Over a session, the meter's energy and the charger's own (its voltage times its modules' currents) "
                         + "differed by more than the metering budget (the meter's class and the charger's accuracy, "
                         + "docs/standards.md \"Metering budget\"; the value and its limit in percent) for a minute. A record, "
                         + "not a stop: the session finishes; new sessions are refused only where the board file says so.",
                         checks: ["`log` and `export json`: each session end holds the meter's and the charger's energy and the deviation.",
                                  "A deviation that repeats from session to session: the meter (its calibration seal, its current "
                                  + "transformer or shunt and wiring), then the modules' current readings (`modules`).",
                                  "Billing: the sessions since the deviation began are disputable; tell the operator."],
                         reset: "A technician's acknowledgement: " + resetRule)
        case .meterRegister:
            return Entry(trips: "The meter's energy register went back, fell to almost nothing, or rose by more than the gun could "
                         + "deliver since the reading before (the value is the new reading in kWh, the limit the one before): "
                         + "a replaced meter, a rollover, a reset or a tamper. The session's deviation is not judged.",
                         checks: ["Was the meter replaced or reset? The journal keeps both readings.",
                                  "The meter's seal and event log; its Modbus map (a register read with the wrong scale or word order).",
                                  "Tell the operator: a session spanning it cannot be billed from the register alone."],
                         reset: "A technician's acknowledgement: " + resetRule)
        case .analogStale:
            return Entry(trips: "The gun's analog values (CC1, the K1/K2 voltages, the gun's temperature, the auxiliary supply) were "
                         + "older than the board's analog_max_age (the value is their age in seconds): the ADC's sampler stalled or "
                         + "its channels stopped reading. A frozen CC1 is as blind as a broken one: error shutdown, as E16.",
                         checks: ["chargerd's report at exit, its `analog:` line: the sampler's rounds, the failed reads and the last "
                                  + "error, and whether its SCHED_FIFO was refused.",
                                  "The kernel log (`dmesg`) for the ADC's driver and its SPI or I2C bus; the ADC's supply and reference."],
                         reset: resetRule)
        }
    }

    /// `help E05` (or `help e05`, `help E05-insulation`): the code's name, reaction and scope, then the
    /// entry, wrapped to `width` columns.
    public static func help(_ c: FaultCode, width: Int = 80) -> String {
        let e = entry(c)
        var lines = ["\(c.name): \(c.reaction.name), \(c.isStationWide ? "the whole station" : "one gun")"]
        lines += wrap(e.trips.replacingOccurrences(of: "`", with: "'"), width: width, indent: "  ")
        lines.append("checks:")
        for (i, k) in e.checks.enumerated() { lines += wrap(k.replacingOccurrences(of: "`", with: "'"), width: width, indent: "  \(i + 1). ", hanging: "     ") }
        lines.append("reset:")
        lines += wrap(e.reset.replacingOccurrences(of: "`", with: "'"), width: width, indent: "  ")
        return lines.joined(separator: "\n")
    }

    /// The code a technician typed: "E05", "e5", "E05-insulation".
    public static func code(named text: String) -> FaultCode? {
        let t = text.uppercased()
        guard t.hasPrefix("E"), let n = Int(t.dropFirst().prefix { $0.isNumber }), n >= 1, n <= FaultCode.allCases.count else { return nil }
        return FaultCode.allCases.first { $0.name.hasPrefix(String(format: "E%02d-", n)) }
    }

    /// docs/faults.md's "Fault by fault", generated from the same table.
    public static func markdown() -> String {
        var s = "## Fault by fault\n\n"
        s += "Generated by `chargerd --list-faults --markdown` from the table the console's `help CODE` prints\n"
        s += "(`Sources/Console/FaultGuide.swift`); a test keeps this page and the table the same.\n"
        for c in FaultCode.allCases {
            let e = entry(c)
            s += "\n### \(c.name)\n\n"
            s += "**\(c.reaction.name)**, \(c.isStationWide ? "the whole station" : "one gun"). \(e.trips)\n\n"
            for (i, k) in e.checks.enumerated() { s += "\(i + 1). \(k)\n" }
            s += "\nReset: \(e.reset)\n"
        }
        return s
    }

    /// A fault record's value with its unit and the limit it crossed: "40.0 kΩ, limit 75.0 kΩ",
    /// "K2", "BCL", "1.001 s, limit 1.000 s"; nil where there is nothing to show (a switch).
    /// `ascii`: "kOhm" and "degC" for terminals without UTF-8.
    public static func reading(value: Double?, unit: String?, limit: Double?, code: String, ascii: Bool = false) -> String? {
        let measure = unit.flatMap(FaultMeasure.init(name:))
            ?? FaultCode.allCases.first { $0.name == code }?.measure ?? .none
        guard let v = value, v.isFinite else { return nil }
        func q(_ x: Double) -> String {
            switch measure {
            case .ohms:
                let a = abs(x)
                if a >= 1e6 { return String(format: "%.2f %@", x / 1e6, ascii ? "MOhm" : "MΩ") }
                if a >= 1e3 { return String(format: "%.1f %@", x / 1e3, ascii ? "kOhm" : "kΩ") }
                return String(format: "%.0f %@", x, ascii ? "Ohm" : "Ω")
            case .volts: return String(format: "%.1f V", x)
            case .amps: return String(format: "%.1f A", x)
            case .celsius: return String(format: "%.1f %@", x, ascii ? "degC" : "°C")
            case .seconds: return String(format: abs(x) < 10 ? "%.3f s" : "%.1f s", x)
            case .count: return String(format: "%.0f", x)
            case .percent: return String(format: "%+.2f %%", x)
            case .kilowattHours: return String(format: "%.3f kWh", x)
            case .none, .message, .rule, .contactor: return String(format: "%g", x)
            }
        }
        switch measure {
        case .none: return nil
        case .contactor: return v == 1 ? "K1" : v == 2 ? "K2" : q(v)
        case .message: return VehicleMessageKind(rawValue: UInt8(exactly: v) ?? 255).map { "\($0)".uppercased() } ?? q(v)
        case .rule: return StepRule(rawValue: UInt8(exactly: v) ?? 255)?.name ?? q(v)
        default:
            guard let l = limit, l.isFinite else { return q(v) }
            return "\(q(v)), limit \(q(l))"
        }
    }

    /// Words of `text` in lines of at most `width` columns: the first after `indent`, the rest after
    /// `hanging` (default: as many spaces as `indent`). A word wider than a whole line (a deep path) is
    /// broken after its last '/' that fits, or at the width when it has none.
    static func wrap(_ text: String, width: Int, indent: String, hanging: String? = nil) -> [String] {
        let rest = hanging ?? String(repeating: " ", count: indent.count)
        var lines: [String] = []
        var line = indent
        var fresh = true
        for word in text.split(separator: " ") {
            if !fresh && line.count + 1 + word.count > width && rest.count + word.count <= width {
                lines.append(line)
                line = rest
                fresh = true
            }
            if !fresh { line += " " }
            var w = word
            while line.count + w.count > width {          // only a word wider than a line gets here
                let head = w.prefix(max(0, width - line.count))
                let cut: Substring.Index
                if let slash = head.lastIndex(of: "/") {
                    cut = w.index(after: slash)
                } else if !fresh {                        // no '/' fits after the text before it: a new line
                    lines.append(String(line.dropLast()))
                    line = rest
                    fresh = true
                    continue
                } else if !head.isEmpty {
                    cut = head.endIndex
                } else {
                    break                                 // the hanging indent alone fills the width
                }
                lines.append(line + w[..<cut])
                line = rest
                fresh = true
                w = w[cut...]
            }
            line += w
            fresh = false
        }
        lines.append(line)
        return lines
    }
}
