// What a technician holds from the console, through the step: actuator tests only on an idle gun, a gun
// out of service, a temporary power cap as a limit source.
import BoardFile
import ChargerCore
import ChargerRuntime
import SimPlant
import Testing

@Suite struct OperatorInputs {
    /// `test contactor K1` on an idle, unplugged gun closes K1/K2 (no module powered) and releases them.
    @Test func contactorTestOnIdleGun() throws {
        let run = try Run("sim-60kw", cars: [:])
        run.until(1)
        run.sim.setActuatorTest(gun: 0, .contactorsK1K2)
        run.until(1.2)
        #expect(run.sim.plant.guns[0].k1.closed && run.sim.plant.guns[0].k2.closed)
        #expect(run.sim.outputs.modules[0].enabled == false)
        run.sim.setActuatorTest(gun: 0, .none)
        run.until(1.4)
        #expect(!run.k1k2Closed)
        #expect(run.sim.faults.isEmpty, "\(run.sim.faults.map(\.code.name))")
        expectNoViolations(run)
    }

    /// The same test with a car plugged in is ignored by the step: the session goes on, K1/K2 stay open
    /// until the session itself closes them.
    @Test func actuatorTestIgnoredWithCarPlugged() throws {
        let run = try Run("sim-60kw", cars: [0: try car("capacity=10kWh,soc=20,target=80")])
        run.sim.setActuatorTest(gun: 0, .contactorsK1K2)
        run.until(2.8)
        #expect(run.sim.phase(0) != .unplugged)
        #expect(!run.k1k2Closed)
        run.sim.setActuatorTest(gun: 0, .none)
        let s = run.toEnd()
        #expect(s.endState == .completed)
        expectNoViolations(run)
    }

    /// Lock and lamp tests drive their outputs; the IMD self-test runs to its result.
    @Test func lockLampAndIMDTests() throws {
        let run = try Run("sim-60kw", cars: [:])
        run.until(1)
        run.sim.setActuatorTest(gun: 0, .lock)
        run.until(2)
        #expect(run.sim.plant.guns[0].locked)
        run.sim.setActuatorTest(gun: 0, .lamp)
        var lamps = Set<UInt8>()
        run.sim.run(for: .s(2)) { lamps.insert($0.outputs.guns[0].lamp.rawValue); return false }
        #expect(lamps == [Lamp.charging.rawValue, Lamp.fault.rawValue])
        run.sim.setActuatorTest(gun: 0, .imdSelfTest)
        run.until(8)
        #expect(run.sim.inputs.guns[0].imdSelfTest == .passed)
        run.sim.setActuatorTest(gun: 0, .none)
        run.until(9)
        #expect(!run.sim.plant.guns[0].locked)
        #expect(run.sim.faults.isEmpty)
    }

    /// Out of service: a car that plugs in gets no session (lamp off); back in service, it charges.
    @Test func outOfServiceRefusesSessions() throws {
        let run = try Run("sim-60kw", cars: [0: try car("capacity=10kWh,soc=70,target=80")])
        run.sim.setOutOfService(gun: 0, true)
        run.until(10)
        #expect(run.sim.phase(0) == .unplugged)
        #expect(run.sim.outputs.guns[0].lamp == .off)
        run.sim.setOutOfService(gun: 0, false)
        let s = run.toEnd()
        #expect(s.endState == .completed)
        #expect(s.energyKWh > 0.5)
    }

    /// Out of service while charging stops the session in order (an operator stop, ≤ 5 A at opening).
    @Test func outOfServiceStopsARunningSession() throws {
        let run = try Run("sim-60kw", cars: [0: try car("capacity=10kWh,soc=20,target=80")])
        run.until(limit: .s(60)) { $0.phase(0) == .charging && $0.plant.guns[0].current > Amps(50) }
        run.sim.setOutOfService(gun: 0, true)
        run.until(limit: .s(30)) { $0.phase(0) == .finished }
        #expect(run.sim.state.sessions[0].stopReason == .operatorRequest)
        expectNoViolations(run)
    }

    /// A technician's cap binds as its own limit source and the delivered power follows it.
    @Test func operatorCapBinds() throws {
        let run = try Run("sim-60kw", cars: [0: try car("capacity=60kWh,soc=20,target=80")])
        run.until(limit: .s(60)) { $0.phase(0) == .charging }
        run.sim.setOperatorCap(gun: 0, .kW(20))
        run.until(run.sim.now.seconds + 10)
        #expect(run.sim.outputs.guns[0].binding == .operatorCap)
        let p = run.sim.plant.guns[0].vehicleSide * run.sim.plant.guns[0].current
        #expect(p <= .kW(20.5) && p >= .kW(19), "\(p.kilowatts) kW")
        run.sim.setOperatorCap(gun: 0, nil)
        run.until(run.sim.now.seconds + 10)
        #expect(run.sim.outputs.guns[0].binding != .operatorCap)
        expectNoViolations(run)
    }
}
