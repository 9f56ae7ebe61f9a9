// Plug and charge by VIN through the step (issue 37 part 1): recognition held for the grid's word on the
// car's VIN, bounded by Standard.vinAnswerWait; a refusal stops before any energy; with a fallback the gun
// waits in `connected` for another authorization and a fresh handshake follows.
import ChargerCore
import ChargerRuntime
import LoopContract
import SimPlant
import Testing

@Suite struct VINAuthorization {
    /// A run whose gun 0 is authorized to go as far as the VIN, its word `check` from the start.
    func pending(_ carText: String = "capacity=10kWh,soc=70,target=80") throws -> (Run, GridFeed) {
        let run = try Run("sim-60kw", cars: [0: try car(carText)])
        var feed = GridFeed()
        feed.vinChecks[0] = .pending
        run.sim.setGridFeed(feed)
        return (run, feed)
    }

    /// Held: CRM 0x00 for as long as the word does not come, the car's VIN in the charger's view; the word
    /// "accepted" lets recognition and the session go on to charge.
    @Test func heldUntilAcceptedThenCharges() throws {
        var (run, feed) = try pending("capacity=10kWh,soc=70,target=80,vin=LFV3A23C5K3012345")
        try #require(run.until(limit: .s(60)) { $0.phase(0) == .identification } != nil)
        run.until(run.sim.now.seconds + 3)
        #expect(run.sim.phase(0) == .identification)
        #expect(run.sim.outputs.guns[0].tx.crm == .notRecognised)
        let vin = try #require(run.sim.inputs.guns[0].vehicle.brm).message.vin
        #expect(String(decoding: (0..<17).map { vin[$0] }, as: UTF8.self) == "LFV3A23C5K3012345")
        #expect(run.current <= Standard.cableCheckCurrentLimit)
        feed.vinChecks[0] = .accepted
        run.sim.setGridFeed(feed)
        let s = run.toEnd(limit: .s(1800))
        #expect(s.endState == .completed)
        #expect(s.energyKWh > 0.5)
        #expect(run.phases.contains(.charging))
        #expect(run.sim.faults.isEmpty, "\(run.sim.faults.map(\.code.name))")
        expectNoViolations(run)
    }

    /// No word within the bound: the session stops (not a fault) after 4 s of recognition, not before,
    /// with CST and no energy, and ends.
    @Test func noAnswerStopsAfterTheBoundNotBefore() throws {
        let (run, _) = try pending()
        let entered = try #require(run.until(limit: .s(60)) { $0.phase(0) == .identification })
        var maxCurrent = Amps.zero, sawCST = false
        let stopped = try #require(run.until(limit: .s(10)) { s in
            maxCurrent = max(maxCurrent, s.plant.guns[0].current)
            if let c = s.outputs.guns[0].tx.cst { sawCST = true; #expect(c.reasons == .conditionsReached) }
            return s.phase(0) != .identification
        })
        #expect(run.sim.phase(0) == .stopping)
        let held = stopped - entered
        #expect(held > Standard.vinAnswerWait && held <= Standard.vinAnswerWait + .ms(2), "\(held.seconds) s")
        #expect(held < Standard.defaultMessageTimeout, "the car's own 5 s wait for CRM 0xAA must not run out first")
        try #require(run.until(limit: .s(30)) { s in
            if let c = s.outputs.guns[0].tx.cst { sawCST = true; #expect(c.reasons == .conditionsReached) }
            return s.phase(0) == .finished
        } != nil)
        #expect(run.sim.state.sessions[0].stopReason == .notAuthorized)
        #expect(!run.phases.contains(.parameterExchange) && !run.phases.contains(.charging))
        #expect(maxCurrent <= Standard.cableCheckCurrentLimit, "\(maxCurrent)")
        #expect(run.sim.faults.isEmpty, "\(run.sim.faults.map(\.code.name))")
        #expect(sawCST)
        expectNoViolations(run)
    }

    /// No word within the bound on a site that falls back (`pendingFallBack`): the core's own bound falls
    /// back as a refusal would, to `connected`, unlocked, with no energy; the session does not end.
    @Test func noAnswerWithAFallbackWaitsInConnected() throws {
        let run = try Run("sim-60kw", cars: [0: try car("capacity=10kWh,soc=70,target=80")])
        var feed = GridFeed()
        feed.vinChecks[0] = .pendingFallBack
        run.sim.setGridFeed(feed)
        let entered = try #require(run.until(limit: .s(60)) { $0.phase(0) == .identification })
        let stopped = try #require(run.until(limit: .s(10)) { $0.phase(0) != .identification })
        #expect(run.sim.phase(0) == .stopping)
        #expect(stopped - entered > Standard.vinAnswerWait && stopped - entered <= Standard.vinAnswerWait + .ms(2))
        // The grid interface takes the gun's authorization away as the wait ends (as chargerd's OCPP client does).
        feed.authorized[0] = false
        run.sim.setGridFeed(feed)
        var maxCurrent = Amps.zero
        try #require(run.until(limit: .s(30)) { s in maxCurrent = max(maxCurrent, s.plant.guns[0].current); return s.phase(0) == .connected } != nil)
        run.until(run.sim.now.seconds + 5)
        #expect(run.sim.phase(0) == .connected)
        #expect(run.sim.state.sessions[0].stopReason == .notAuthorized)
        #expect(!run.phases.contains(.finished) && !run.phases.contains(.charging))
        #expect(!run.sim.plant.guns[0].locked)
        #expect(maxCurrent <= Standard.cableCheckCurrentLimit, "\(maxCurrent)")
        #expect(run.sim.faults.isEmpty)
        expectNoViolations(run)
    }

    /// Refused: the stop starts at once (no wait for the bound); the car gets no energy; the summary does not
    /// count it as a completed session.
    @Test func refusedGetsNoEnergy() throws {
        var (run, feed) = try pending()
        let entered = try #require(run.until(limit: .s(60)) { $0.phase(0) == .identification })
        run.until(run.sim.now.seconds + 0.5)
        feed.vinChecks[0] = .refused
        run.sim.setGridFeed(feed)
        let stopped = try #require(run.until(limit: .s(2)) { $0.phase(0) == .stopping })
        #expect(stopped - entered < .s(1))
        var maxCurrent = Amps.zero
        run.until(limit: .s(60)) { s in maxCurrent = max(maxCurrent, s.plant.guns[0].current); return s.phase(0) == .finished }
        let s = run.toEnd(limit: .s(120))
        #expect(maxCurrent <= Standard.cableCheckCurrentLimit, "\(maxCurrent)")
        #expect(run.sim.state.sessions[0].stopReason == .notAuthorized)
        #expect(!run.phases.contains(.precharge) && !run.phases.contains(.charging))
        #expect(s.energyKWh < 0.001, "\(s.energyKWh) kWh")
        #expect(s.endState != .completed)
        #expect(run.sim.faults.isEmpty)
        expectNoViolations(run)
    }

    /// Refused with a fallback: after the stop the gun waits in `connected`, unlocked, with the aux supply
    /// off; an idTag (the grid's `authorized`) then starts a new handshake that charges.
    @Test func refusedWithFallbackWaitsThenChargesOnAnotherAuthorization() throws {
        var (run, feed) = try pending()
        try #require(run.until(limit: .s(60)) { $0.phase(0) == .identification } != nil)
        feed.vinChecks[0] = .refusedFallBack
        feed.authorized[0] = false
        run.sim.setGridFeed(feed)
        try #require(run.until(limit: .s(30)) { $0.phase(0) == .connected } != nil)
        #expect(Array(run.phases.suffix(5)) == [.stopping, .statistics, .weldingCheck, .unlocking, .connected])
        run.until(run.sim.now.seconds + 5)
        #expect(run.sim.phase(0) == .connected)
        #expect(!run.sim.plant.guns[0].locked)
        #expect(!run.sim.outputs.guns[0].closeK3K4)
        #expect(!run.phases.contains(.charging))
        feed.vinChecks[0] = .notUsed
        feed.authorized[0] = true
        run.sim.setGridFeed(feed)
        let s = run.toEnd(limit: .s(1800))
        #expect(s.endState == .completed)
        #expect(s.energyKWh > 0.5)
        #expect(run.phases.filter { $0 == .handshake }.count >= 2)
        #expect(run.sim.faults.isEmpty, "\(run.sim.faults.map(\.code.name))")
        expectNoViolations(run)
    }

    /// A car that sends the short BRM: the VIN bytes are all zero (the grid reads that as no VIN).
    @Test func carWithoutVINSendsTheShortForm() throws {
        let (run, _) = try pending("capacity=10kWh,soc=70,target=80,vin=none")
        try #require(run.until(limit: .s(60)) { $0.phase(0) == .identification } != nil)
        run.until(run.sim.now.seconds + 0.5)
        let vin = try #require(run.sim.inputs.guns[0].vehicle.brm).message.vin
        #expect((0..<17).allSatisfy { vin[$0] == 0 })
    }

    /// `--car vin=` is checked: 17 characters of the VIN alphabet or `none`.
    @Test func carVINIsChecked() throws {
        #expect(try car("vin=LFV3A23C5K3012345").vin == "LFV3A23C5K3012345")
        #expect(try car("vin=none").vin == nil)
        #expect(throws: CarProfile.ParseError.self) { try car("vin=LFV3A23C5K301234") }
        #expect(throws: CarProfile.ParseError.self) { try car("vin=LFV3A23C5K301234O") }
        #expect(throws: CarProfile.ParseError.self) { try car("vin=lfv3a23c5k3012345") }
    }
}
