// The charger's GB/T 27930 messages start and stop on the events docs/standards.md "When each charger
// message starts and stops" names (issue 35, part 5), judged every cycle of whole sessions on the
// simulated board: the broadcast the loop hands the car link, against the car's messages as the loop saw
// them. (Tests/kernel/can_check.py judges the same order from candump's record of the wire.)
import ChargerCore
import ChargerRuntime
import LoopContract
import SimPlant
import Testing

/// What one gun's broadcast held, cycle by cycle, beside the car's messages of the same cycle.
final class Broadcasts {
    struct Cycle { var at: Instant; var phase: SessionPhase; var tx: ChargerMessages; var car: VehicleMessages; var chargingSince: Instant }
    var cycles: [Cycle] = []

    init(_ run: Run) {
        let previous = run.sim.observer
        run.sim.observer = { [unowned self] s in
            previous?(s)
            self.cycles.append(Cycle(at: s.now, phase: s.phase(0), tx: s.outputs.guns[0].tx, car: s.inputs.guns[0].vehicle,
                                     chargingSince: s.state.sessions[0].chargingSince))
        }
    }

    /// The first cycle at which `what` held, if any.
    func first(_ what: (Cycle) -> Bool) -> Instant? { cycles.first(where: what)?.at }
}

@Suite struct MessageOrder {
    /// A whole session: each message alone in its stage, and their first appearances in the standard's order.
    @Test func aWholeSessionSendsEachMessageInItsStage() throws {
        let run = try Run("sim-60kw", cars: [0: try car("capacity=10kWh,soc=70,target=80")])
        let b = Broadcasts(run)
        let s = run.toEnd(limit: .s(1800))
        #expect(s.endState == .completed)
        expectNoViolations(run)
        var bad: [String] = []
        func rule(_ c: Broadcasts.Cycle, _ holds: Bool, _ what: String) {
            if !holds && bad.count < 5 { bad.append("\(what) at \(c.at.seconds) s (\(c.phase.name))") }
        }
        for c in b.cycles {
            let tx = c.tx
            rule(c, !(tx.chm && tx.crm != nil), "CHM beside CRM")
            rule(c, tx.crm == nil || (tx.cts == false && tx.cml == nil && tx.cro == nil), "CRM beside CTS, CML or CRO")
            rule(c, tx.cml == nil || tx.cro == nil, "CML beside CRO")
            rule(c, tx.cro == nil || tx.ccs == nil, "CRO beside CCS")
            rule(c, tx.ccs == nil || tx.cst == nil, "CCS beside CST")
            rule(c, tx.cst == nil || tx.csd == nil, "CST beside CSD")
            rule(c, tx.cem == nil, "CEM in a session without a timeout")
            // CRO stops, and CCS starts, once the car is heard in its charging stage.
            let heard = (c.car.bcl.map { $0.at >= c.chargingSince } ?? false) || (c.car.bcs.map { $0.at >= c.chargingSince } ?? false)
            if c.phase == .charging { rule(c, heard ? (tx.cro == nil && tx.ccs != nil) : (tx.cro == true && tx.ccs == nil),
                                           heard ? "CRO after the car's BCL or BCS, or no CCS" : "CCS before the car's BCL or BCS") }
        }
        #expect(bad.isEmpty, "\(bad)")
        let order: [(String, Instant?)] = [
            ("CHM", b.first { $0.tx.chm }),
            ("CRM 0x00", b.first { $0.tx.crm == .notRecognised }),
            ("CRM 0xAA", b.first { $0.tx.crm == .recognised }),
            ("CML", b.first { $0.tx.cml != nil }),
            ("CRO 0x00", b.first { $0.tx.cro == false }),
            ("CRO 0xAA", b.first { $0.tx.cro == true }),
            ("CCS", b.first { $0.tx.ccs != nil }),
            ("CST", b.first { $0.tx.cst != nil }),
            ("CSD", b.first { $0.tx.csd != nil }),
        ]
        for (name, at) in order { #expect(at != nil, "\(name) never sent") }
        let times = order.compactMap(\.1)
        #expect(times == times.sorted(), "first appearances out of order: \(order.map { "\($0.0) \($0.1?.seconds ?? -1)" })")
        // CSD stays out csdHold at the least, and ends once the car's BSD is in (this car sends it on CSD).
        let firstCSD = try #require(order[8].1)
        let bsd = try #require(b.cycles.first { $0.tx.csd != nil && $0.car.bsd != nil }?.car.bsd?.at)
        let lastCSD = try #require(b.cycles.last { $0.tx.csd != nil }?.at)
        #expect(lastCSD - firstCSD >= Standard.csdHold - .ms(1), "CSD out for \((lastCSD - firstCSD).seconds) s")
        #expect(lastCSD <= max(bsd, firstCSD + Standard.csdHold) + .ms(1), "CSD went on \((lastCSD - bsd).seconds) s after BSD")
    }

    /// The handshake's last retry ends on BRM: CEM names BRM from the first cycle it is sent (it named BCL for
    /// one cycle before, the arbiter's default for a session that had not yet said which).
    @Test func cemNamesTheMessageThatTimedOutFromItsFirstCycle() throws {
        let run = try Run("sim-60kw", inject: ["bms-silent@5s"])
        let b = Broadcasts(run)
        let s = run.toEnd(limit: .s(200))
        #expect(s.faults.first?.code == .vehicleCommTimeout)
        let named = Set(b.cycles.compactMap(\.tx.cem))
        #expect(named == [.brm], "CEM named \(named)")
        expectNoViolations(run)
    }
}
