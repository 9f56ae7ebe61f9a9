// GB/T 27930 behaviour beyond the happy path, limits from the grid, and the demand ramp.
import ChargerCore
import ChargerRuntime
import LoopContract
import SimPlant
import Testing

@Suite struct ProtocolAndLimits {
    /// BSM "charging allowed" 00 pauses output with the contactors closed; 01 resumes.
    @Test func bsmPauseAndResume() throws {
        let run = try charging(["bms-pause@100s", "bms-resume@160s"])
        run.until(101)
        #expect(run.current < Amps(1), "paused: \(run.current.value) A")
        #expect(run.sim.phase(0) == .charging)
        #expect(run.k1k2Closed, "a pause keeps K1/K2 closed")
        run.until(170)
        #expect(run.current > Amps(100), "resumed")
        let s = run.toEnd()
        expectNoViolations(run)
        #expect(s.endState == .completed)
    }

    /// "a pause over 10 min ends the session" — normally, without a fault.
    @Test func pauseOverTenMinutesEndsTheSession() throws {
        let run = try charging(["bms-pause@100s"])
        run.until(100 + 599)
        #expect(run.sim.phase(0) == .charging)
        run.until(100 + 602)
        #expect(run.sim.phase(0) != .charging)
        #expect(run.sim.state.sessions[0].stopReason == .pauseTooLong)
        let s = run.toEnd(limit: .s(60))
        expectNoViolations(run)
        #expect(s.endState == .completed && s.faults.isEmpty)
    }

    /// "Current demand changes are followed at ≥ 20 A/s": the board's 50 A/s ramp, not faster.
    @Test func rampFollowsTheBoardRate() throws {
        let run = try Run("sim-60kw")
        let start = try #require(run.until(limit: .s(60)) { $0.phase(0) == .charging })
        run.sim.run(for: .s(1))
        let i1 = run.current
        #expect(i1 > Amps(40) && i1 <= Amps(51), "after 1 s at 50 A/s: \(i1.value) A")
        run.sim.run(for: .s(3))
        #expect(run.current > Amps(140), "at the gun's limit after about 3 s")
        _ = start
        expectNoViolations(run)
    }

    /// The orderly-charging setpoint is a plain input: a station cap binds, reached at the board's stop
    /// ramp (issue 6: grid changes apply at the board's ramp rate; a dispatch is not a protection).
    @Test func gridSetpointCapsAtTheBoardsRamp() throws {
        let run = try charging(["setpoint=30kW@100s", "setpoint=none@200s"])
        let before = run.current
        run.until(100.2)
        let ramp = run.sim.spec.guns[0].stopRamp
        #expect(abs((before - run.current).value - ramp.value * 0.2) < 3, "\(before.value) A -> \(run.current.value) A in 0.2 s at \(ramp.value) A/s")
        run.until(101.5)
        let p = run.sim.plant.guns[0].vehicleSide * run.current
        #expect(p <= Watts.kW(30) * 1.01, "\(p.kilowatts) kW")
        #expect(run.sim.outputs.guns[0].binding == .gridSetpoint)
        run.until(210)
        #expect(run.sim.plant.guns[0].vehicleSide * run.current > .kW(55), "cap lifted")
        let s = run.toEnd()
        expectNoViolations(run)
        #expect(s.endState == .completed)
    }

    /// A limit that falls below the stop ramp applies at once: the ramp is the demand's way to zero, not
    /// a licence to stay above a limit (exploration seed 882217947, where the station's share fell under a
    /// stopping gun, latched E31). A technician's cap 1 ms after the car's BST: the next cycle's command
    /// is within it, the contract holds and the session ends normally.
    @Test func aLimitBelowTheStopRampAppliesAtOnce() throws {
        let run = try charging(["bms-stop@100s"])
        try #require(run.until(limit: .s(1)) { $0.phase(0) == .stopping } != nil)
        let before = run.sim.outputs.guns[0].currentSetpoint
        run.sim.setOperatorCap(gun: 0, .kW(10))
        run.sim.run(for: .ms(2))
        let o = run.sim.outputs.guns[0]
        let capA = Watts.kW(10) / max(run.sim.plant.guns[0].vehicleSide, run.sim.spec.guns[0].minVoltage)
        #expect(before > capA + Amps(50), "still high on the stop ramp: \(before.value) A")
        #expect(o.binding == .operatorCap)
        #expect(o.currentSetpoint <= o.currentLimit, "\(o.currentSetpoint.value) A above \(o.currentLimit.value) A")
        #expect(o.currentSetpoint <= capA * 1.01, "\(o.currentSetpoint.value) A for a cap of \(capA.value) A")
        #expect(run.raisedAt[.stepContractBroken] == nil)
        let s = run.toEnd(limit: .s(120))
        expectNoViolations(run)
        #expect(s.endState == .completed && s.faults.isEmpty)
    }

    /// A setpoint of zero while a module is silent: the silent module goes on delivering its last command
    /// until it switches itself off (20 s), which is no over-current (before, E12 opened K1/K2 under its
    /// 73 A); then the gun holds at zero, and charges on the module left once the setpoint goes.
    @Test func aSetpointOfZeroWithASilentModuleIsNoOverCurrent() throws {
        let run = try charging(["module-silent=0@100s", "gun-setpoint=0kW@105s", "gun-setpoint=none@140s"])
        run.until(110)
        #expect(run.current > Amps(50), "the silent module's last command still flows: \(run.current.value) A")
        #expect(run.sim.phase(0) == .charging)
        run.until(135)
        #expect(run.current < Amps(1), "switched itself off: \(run.current.value) A")
        run.until(150)
        #expect(run.current > Amps(20), "charging on the module left: \(run.current.value) A")
        #expect(run.raisedAt[.overCurrent] == nil && run.raisedAt[.escalatedToEmergency] == nil)
        expectNoViolations(run)
    }

    /// A per-gun setpoint of 0 W holds the gun at zero current without stopping the session.
    @Test func gunSetpointZeroHoldsAtZero() throws {
        let run = try charging(["gun-setpoint=0kW@100s", "gun-setpoint=none@130s"])
        run.until(101)
        #expect(run.current < Amps(1))
        #expect(run.sim.phase(0) == .charging)
        run.until(140)
        #expect(run.current > Amps(100))
        expectNoViolations(run)
    }

    /// "handshake retried 3 times": a car that stops answering after the cable check is given three
    /// attempts, then the session ends with a communication fault; nothing was energised for charging.
    @Test func handshakeRetriedThreeTimes() throws {
        // Silent from the middle of the first cable check: BRM never comes.
        let run = try Run("sim-60kw", inject: ["bms-silent@5s"])
        let s = run.toEnd(limit: .s(200))
        expectNoViolations(run)
        #expect(s.endState == .faulted)
        let f = try #require(s.faults.first)
        #expect(f.code == .vehicleCommTimeout)
        #expect(run.phases.filter { $0 == .handshake }.count == 3, "three handshake attempts: \(run.phases.map(\.name))")
        #expect(!run.phases.contains(.charging))
        #expect(s.energyKWh < 0.01)
    }

    /// A BMS whose reported battery voltage is off by more than 5 % is refused before precharge.
    @Test func batteryVoltageMismatchRefused() throws {
        var c = CarProfile()
        c.reportedVoltageOffset = Volts(40)
        let run = try Run("sim-60kw", cars: [0: c])
        let s = run.toEnd(limit: .s(120))
        expectNoViolations(run)
        #expect(s.faults.first?.code == .vehicleVoltageMismatch)
        #expect(s.faults.first?.reaction == .refuse)
        #expect(!run.phases.contains(.precharge))
    }

    /// GB/T 18487.1: 100 < R ≤ 500 Ω/V is a warning, charging allowed (IEC drops the band).
    @Test func insulationWarningBandChargesAndIsReported() throws {
        // 150 kΩ at the 500 V test voltage = 300 Ω/V.
        let run = try Run("sim-60kw", cars: [0: try car("capacity=30kWh,soc=70,target=75")], inject: ["insulation=150kOhm@1s"])
        let s = run.toEnd()
        expectNoViolations(run)
        #expect(s.endState == .completed)
        #expect(s.insulationWarning)
        #expect(s.insulationOhmPerVolt == 300)
        #expect(s.json.contains("\"insulation_warning\":true"))
    }

    /// "Inrush peak ≤ 20 A": current beyond the command on closing is an emergency.
    @Test func inrushOnClosingIsAnEmergency() throws {
        // 60 A the moment K1/K2 close for charging (7.5 s), before any current is commanded.
        let run = try Run("sim-60kw", inject: ["overcurrent=60A@7.3s"])
        let s = run.toEnd(limit: .s(120))
        expectNoViolations(run)
        let f = try #require(s.faults.first)
        #expect(f.code == .inrushOverCurrent && f.reaction == .emergency, "\(s.faults.map(\.code.name))")
        #expect(s.energyKWh < 0.01)
    }

    /// A short during the cable check (2 A commanded) is an over-current, not a surprise at the opening.
    @Test func currentBeyondTheCableCheckLimit() throws {
        let run = try Run("sim-60kw", inject: ["overcurrent=60A@5s"])
        let s = run.toEnd(limit: .s(120))
        expectNoViolations(run)
        let f = try #require(s.faults.first)
        #expect(f.code == .overCurrent && f.reaction == .emergency, "\(s.faults.map(\.code.name))")
        #expect(f.raisedAt - Instant(micros: 5_000_000) <= Standard.uncommandedCurrentPersistence + .ms(2))
        #expect(!run.phases.contains(.charging))
    }

    /// "BSD / CSD ... wait up to 10 s": a car that never sends BSD does not hold the gun.
    @Test func statisticsWaitIsBounded() throws {
        let run = try charging(["bms-stop@100s", "bms-silent@100.2s"])
        let entered = try #require(run.until(limit: .s(5)) { $0.phase(0) == .statistics })
        let left = try #require(run.until(limit: .s(15)) { $0.phase(0) != .statistics })
        #expect(left - entered >= Standard.statisticsTimeout)
        #expect(left - entered <= Standard.statisticsTimeout + .ms(2))
        let s = run.toEnd(limit: .s(60))
        expectNoViolations(run)
        #expect(s.endState == .completed)
    }
}
