// V2G (issue 20): sessions that change direction on bidirectional modules, dispatched by signed grid
// setpoints, with every protective rule in both directions (docs/standards.md "V2G"). The simulator
// checks V2G's own invariants every cycle (offer, car limits, minimum SOC, anti-islanding), so each
// `expectNoViolations` below covers them too.
import ChargerCore
import ChargerRuntime
import SimPlant
import Testing

/// A V2G car: 60 kWh at 50 %, discharge down to 40 % at 60 A / 25 kW.
let v2gCar = "capacity=60kWh,soc=50,target=80,max-voltage=750V,v2g-min-soc=40,v2g-max-current=60A,v2g-max-power=25kW"

/// On sim-v2g-60kw, charging at full power at 100 s.
func v2gCharging(_ inject: [String], car text: String = v2gCar, board: String = "sim-v2g-60kw",
                 cars more: [Int: CarProfile] = [:]) throws -> Run {
    var cars = more
    cars[0] = try car(text)
    let run = try Run(board, cars: cars, inject: inject)
    run.until(99.5)
    #expect(run.sim.phase(0) == .charging)
    #expect(run.current > Amps(30), "charging before the dispatch: \(run.current.value) A")
    return run
}

/// After the cable check (which opens K1/K2 itself) and before any dispatch.
let t99 = Instant(micros: 99_000_000)

func gunPower(_ run: Run, _ g: Int = 0) -> Watts { run.sim.plant.guns[g].vehicleSide * run.sim.plant.guns[g].current }

/// The lowest of gun 0's plant current (or, `commanded`, its current command) over the next `span`.
func lowestCurrent(_ run: Run, over span: TimeSpan, commanded: Bool = false) -> Amps {
    var lowest = Amps.zero
    run.until(limit: span) { s in lowest = min(lowest, commanded ? s.outputs.guns[0].currentSetpoint : s.plant.guns[0].current); return false }
    return lowest
}

@Suite struct V2G {
    /// Charging → exporting → charging in one session: through zero at the board's ramps (200 A/s down,
    /// 50 A/s up in export), K1/K2 closed throughout, the export at the setpoint, the meter's two
    /// registers each counting their own direction.
    @Test func aSessionChangesDirectionThroughZeroAtTheBoardsRamps() throws {
        let run = try v2gCharging(["gun-setpoint=-20kW@100s", "gun-setpoint=none@200s"])
        // Before any dispatch: nothing in force, but what the car allows is there for an EMS to ask:
        // 25 kW at about 640 V (below its 60 A).
        let waiting = run.sim.outputs.guns[0]
        #expect(waiting.dischargeLimit == .zero && waiting.currentSetpoint > .zero)
        #expect(abs(waiting.dischargeAvailable.value - 25_000 / run.sim.plant.guns[0].vehicleSide.value) < 1, "\(waiting.dischargeAvailable.value) A")
        let before = run.current
        run.until(100.2)
        // 0.2 s at the 200 A/s stop ramp: down by about 40 A, not cut.
        #expect(abs((before - run.current).value - 40) < 5, "\(before.value) A -> \(run.current.value) A in 0.2 s")
        let crossed = try #require(run.until(limit: .s(5)) { $0.plant.guns[0].current < Amps(-1) })
        run.until(101.0)
        let ramping = run.current
        run.until(110)
        let p = gunPower(run)
        #expect(abs(p.kilowatts + 20) < 0.5, "exporting \(p.kilowatts) kW")
        #expect(ramping > run.current, "the export grew at the ramp up: \(ramping.value) A at 101 s, \(run.current.value) A at 110 s")
        #expect(run.sim.outputs.guns[0].dischargeBinding == .gridSetpoint)
        #expect(run.sim.outputs.guns[0].currentSetpoint < .zero)
        #expect(run.sim.phase(0) == .charging)
        #expect(run.k1k2OpenedAt.filter { $0 > t99 }.isEmpty, "no contactor cycling on a change of direction")
        _ = crossed
        run.until(210)
        #expect(run.current > Amps(50), "charging again: \(run.current.value) A")
        #expect(run.k1k2OpenedAt.filter { $0 > t99 }.isEmpty)
        let s = run.toEnd()
        expectNoViolations(run)
        #expect(s.endState == .completed && s.faults.isEmpty)
        // About 20 kW for about 99 s exported; the import register counts only what went in.
        #expect(s.exportedKWh > 0.5 && s.exportedKWh < 0.6, "\(s.exportedKWh) kWh exported")
        #expect(s.energyKWh > 15, "\(s.energyKWh) kWh imported")
        #expect(s.json.contains("\"exported_kwh\":"))
    }

    /// The car's discharge limits bind: a 50 kW request exports the car's 25 kW, named as the source.
    @Test func theCarsLimitsBindTheExport() throws {
        let run = try v2gCharging(["gun-setpoint=-50kW@100s"])
        run.until(120)
        let p = gunPower(run)
        #expect(abs(p.kilowatts + 25) < 0.6, "\(p.kilowatts) kW")
        #expect(run.sim.outputs.guns[0].dischargeBinding == .vehicle)
        expectNoViolations(run)
    }

    /// A car that makes no offer is never discharged: a negative setpoint holds it at zero, in session.
    @Test func aCarWithoutAnOfferIsNeverDischarged() throws {
        let run = try v2gCharging(["gun-setpoint=-20kW@100s"], car: "capacity=60kWh,soc=50,target=80,max-voltage=750V")
        let lowest = lowestCurrent(run, over: .s(30))
        #expect(lowest >= -Amps(0.01), "\(lowest.value) A")
        #expect(run.current.magnitude < Amps(1))
        #expect(run.sim.phase(0) == .charging)
        #expect(run.sim.outputs.guns[0].dischargeLimit == .zero)
        expectNoViolations(run)
    }

    /// A board whose modules only charge never discharges a car, whatever it offers.
    @Test func aBoardThatOnlyChargesNeverDischarges() throws {
        let run = try v2gCharging(["gun-setpoint=-20kW@100s"], board: "sim-60kw")
        let lowest = lowestCurrent(run, over: .s(30))
        #expect(lowest >= -Amps(0.01), "\(lowest.value) A")
        #expect(run.sim.outputs.guns[0].dischargeAvailable == .zero && run.sim.outputs.guns[0].dischargeLimit == .zero)
        expectNoViolations(run)
        // Nor with a module silent on it: a silent rectifier's last (charging) command is no reverse
        // capability, so the gun is never commanded into discharge against it.
        let silent = try v2gCharging(["module-silent=0@100s", "gun-setpoint=-20kW@105s"], board: "sim-60kw")
        let commanded = lowestCurrent(silent, over: .s(40), commanded: true)
        #expect(commanded >= .zero, "commanded \(commanded.value) A")
        #expect(silent.raisedAt[.overCurrent] == nil)
        expectNoViolations(silent)
    }

    /// Consent withdrawn while exporting: the export ends within the offer's period (the charger learns
    /// of it from the next BDP) and the modules' lag, not at the ramp; the session goes on.
    @Test func aWithdrawnOfferEndsTheExportAtOnce() throws {
        let run = try v2gCharging(["gun-setpoint=-20kW@100s", "v2g-withdraw@150s"])
        run.until(149.9)
        #expect(run.current < Amps(-20))
        let t150 = Instant(micros: 150_000_000)
        let ended = try #require(run.until(limit: .s(2)) { $0.plant.guns[0].current > -Amps(1) })
        #expect(ended - t150 <= Standard.periodBDP + .ms(50), "\(ms(ended - t150)) ms")
        run.until(180)
        #expect(run.current.magnitude < Amps(1), "the setpoint still asks for export, which the car no longer allows")
        #expect(run.sim.phase(0) == .charging)
        #expect(run.k1k2OpenedAt.filter { $0 > t99 }.isEmpty)
        expectNoViolations(run)
    }

    /// The car's minimum state of charge is never crossed: the export stops at it.
    @Test func theCarsMinimumSocIsNeverCrossed() throws {
        let run = try v2gCharging(["gun-setpoint=-25kW@100s"],
                                  car: "capacity=60kWh,soc=40.5,target=80,max-voltage=750V,v2g-min-soc=40,v2g-max-current=60A,v2g-max-power=25kW")
        var lowestSoc = 100.0
        run.until(limit: .s(600)) { s in lowestSoc = min(lowestSoc, s.plant.guns[0].car?.soc ?? 100); return false }
        #expect(lowestSoc >= 40 - 0.05, "SOC went down to \(lowestSoc) %")
        #expect(lowestSoc < 40.2, "it was exported down to the minimum: \(lowestSoc) %")
        #expect(run.current.magnitude < Amps(1))
        #expect(run.sim.phase(0) == .charging)
        expectNoViolations(run)
    }

    /// Mains lost while exporting: export stops within the anti-islanding time (in the cycle the loss is
    /// seen: the mains-lost emergency), E27 latches, and nothing resumes when the mains return.
    @Test func mainsLostDuringExportStopsItAndDoesNotResume() throws {
        let run = try v2gCharging(["gun-setpoint=-20kW@100s", "mains-loss@150s", "mains-restore@155s"])
        run.until(149.9)
        #expect(run.current < Amps(-20))
        let t150 = Instant(micros: 150_000_000)
        let ended = try #require(run.until(limit: .s(3)) { $0.plant.guns[0].current > -Amps(1) })
        #expect(ended - t150 <= Standard.antiIslandingWithin, "\(ms(ended - t150)) ms")
        #expect(ended - t150 <= .ms(50), "in the cycle it is seen, plus the modules' lag: \(ms(ended - t150)) ms")
        run.until(180)
        #expect(run.sim.state.faults(gun: 0).contains(.mainsLost))
        #expect(run.current == .zero && !run.k1k2Closed, "no automatic resume")
        expectNoViolations(run)
    }

    /// A current out of the car beyond the command (a module running away in reverse) is an over-current,
    /// judged against the commanded direction as it is when charging.
    @Test func aReverseRunawayIsAnOverCurrent() throws {
        let run = try v2gCharging(["gun-setpoint=-20kW@100s", "overcurrent=-90A@150s"])
        run.until(149.9)
        #expect(run.sim.faults.isEmpty)
        let raised = try #require(run.until(limit: .s(2)) { $0.state.faults(gun: 0).contains(.overCurrent) })
        #expect(raised - Instant(micros: 150_000_000) <= Standard.uncommandedCurrentPersistence + .ms(5))
        #expect(run.sim.faults.contains { $0.code == .overCurrent && $0.value < -80 })
        // And a current into the car while exporting is one too.
        let back = try v2gCharging(["gun-setpoint=-20kW@100s", "overcurrent=40A@150s"])
        back.until(149.9)
        #expect(back.current < Amps(-20) && back.sim.faults.isEmpty)
        #expect(back.until(limit: .s(2)) { $0.state.faults(gun: 0).contains(.overCurrent) } != nil)
    }

    /// A negative station setpoint is shared max-min fair by the guns that may export; both cars export
    /// half, and the station's export stays within the grid connection.
    @Test func aStationExportIsSharedByTheCarsThatOfferIt() throws {
        var second = try car(v2gCar)
        second.plugAt = .s(5)
        let run = try v2gCharging(["setpoint=-30kW@100s"], cars: [1: second])
        run.until(130)
        let p0 = gunPower(run, 0), p1 = gunPower(run, 1)
        #expect(abs(p0.kilowatts + 15) < 0.6 && abs(p1.kilowatts + 15) < 0.6, "\(p0.kilowatts) kW, \(p1.kilowatts) kW")
        expectNoViolations(run)
    }
}
