// The car link on a real SocketCAN interface (issue 34: the CAN link's own tests). The charger's side
// (SocketCANLink) and the car's side (SocketCANCar) open CAN_RAW sockets on the same interface: the car's
// BHM and its multi-packet BRM (J1939-21 transport) reach the loop's side, and the charger's CHM and CRM
// reach the car. A vcan interface exists only in the qemu guest here: `make test-kernel` runs this suite
// there (Tests/kernel/guest.sh, CANLINK_TEST_INTERFACE=vcan9); on a host without one the wire tests are
// disabled and say why, and the refusal of a missing interface runs everywhere.
import BoardFile
import CANLink
import ChargerCore
import ChargerHAL
import Foundation
import Testing

let canInterface = ProcessInfo.processInfo.environment["CANLINK_TEST_INTERFACE"]

/// Polls `ok` every 10 ms for up to `seconds` (an event with a generous bound, never a fixed sleep).
func within(_ seconds: Double, _ ok: () -> Bool) -> Bool {
    let end = Date().addingTimeInterval(seconds)
    while Date() < end {
        if ok() { return true }
        usleep(10_000)
    }
    return ok()
}

@Suite struct CANLinkRefusals {
    @Test func anInterfaceThatIsNotThereIsRefusedByName() {
        do {
            _ = try SocketCANLink(links: [CANLinkSpec(gun: 0, interface: "nocan7")], guns: 1, clock: LoopClock())
            Issue.record("a link on an interface that does not exist opened")
        } catch {
            #expect(error.interface == "nocan7")
            // No such interface, or no SocketCAN in this kernel at all: either way it says which.
            #expect(error.why.contains("no such network interface") || error.why.contains("no SocketCAN"), "\(error)")
        }
    }
}

@Suite(.enabled(if: canInterface != nil, "needs a CAN interface: CANLINK_TEST_INTERFACE=vcanN (make test-kernel, in the guest)"))
struct CANLinkOnTheWire {
    @Test func aLinkForAGunTheBoardDoesNotHaveIsRefused() throws {
        do {
            _ = try SocketCANLink(links: [CANLinkSpec(gun: 3, interface: canInterface!)], guns: 1, clock: LoopClock())
            Issue.record("a link for gun 3 of a one-gun board opened")
        } catch {
            #expect(error.why.contains("gun 3 is not on this board"), "\(error)")
        }
    }

    @Test func theCarAndTheChargerHearEachOther() throws {
        let spec = CANLinkSpec(gun: 0, interface: canInterface!)
        let clock = LoopClock()
        let link = try SocketCANLink(links: [spec], guns: 1, clock: clock)
        let car = try SocketCANCar(spec: spec)
        try link.start()
        try car.start()
        defer { car.stop(); link.stop() }

        var vin = InlineArray<17, UInt8>(repeating: 0x30)
        for (i, b) in "LSVAB2BR7NN012345".utf8.enumerated() { vin[i] = b }
        var sent = VehicleMessages()
        sent.bhm = Stamped(BHM(maxAllowedVoltage: Volts(750)), at: Instant(micros: 1))
        sent.brm = Stamped(BRM(batteryType: .nmc, ratedCapacityAh: 150, ratedVoltage: Volts(700), vin: vin), at: Instant(micros: 1))
        car.publish(sent)

        var heard = VehicleMessages()
        let gotBoth = within(10) {
            link.receive(gun: 0, into: &heard)
            return heard.bhm != nil && heard.brm != nil
        }
        #expect(gotBoth, "the charger did not hear BHM and BRM")
        #expect(heard.bhm?.message.maxAllowedVoltage.value == 750)
        let brm = try #require(heard.brm?.message)
        #expect(brm.batteryType == .nmc && brm.ratedVoltage.value == 700 && abs(brm.ratedCapacityAh - 150) < 0.11)
        #expect((0..<17).allSatisfy { brm.vin[$0] == vin[$0] }, "the VIN came through the transport protocol intact")

        var out = ChargerMessages()
        out.chm = true
        out.crm = .recognised
        link.transmit(gun: 0, out)
        #expect(within(10) { let m = car.chargerMessages(); return m.chm && m.crm == .recognised }, "the car did not hear CHM and CRM 0xAA")

        let c = try #require(link.counters().first)
        #expect(c.interface == spec.interface && c.rxFrames > 0 && c.messages >= 2 && c.txFrames > 0, "\(c)")
        #expect(car.counts.withLock { $0.received } > 0 && car.counts.withLock { $0.sent } > 0)
    }
}
