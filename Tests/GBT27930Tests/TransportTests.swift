// J1939-21 transport, the receiving side, with plain values: whole transfers by connection mode and by
// broadcast, windows, a repeated packet, a missing one asked again, aborts from either side, a second
// RTS, timeouts, and frames that are not what they claim.
import ChargerCore
import GBT27930
import Testing

func brmPayload() -> GBTPayload {
    var vin = InlineArray<17, UInt8>(repeating: 0)
    for (i, c) in "LSVAU2180N2183294".utf8.enumerated() { vin[i] = c }
    return GBTCodec.encode(BRM(batteryType: .lfp, ratedCapacityAh: 200, ratedVoltage: Volts(540), vin: vin))
}
let brmPGN: UInt32 = 0x0200
let t0 = Instant(micros: 1_000_000)
func ms(_ n: Int64) -> Instant { t0 + .ms(n) }

@Suite struct TransportReceiving {
    @Test func aWholeBRMByConnectionMode() throws {
        var rx = TPReceiver()
        let brm = brmPayload()
        let first = rx.connectionManagement(TPSender.rts(pgn: brmPGN, size: 49), at: t0)
        #expect(first.reply?.array == [17, 7, 1, 0xFF, 0xFF, 0x00, 0x02, 0x00])        // CTS: 7 packets from 1
        var last = TPOutput()
        for seq in UInt8(1)...7 {
            last = rx.dataTransfer(TPSender.packet(seq, of: brm), at: ms(Int64(seq) * 10))
            if seq < 7 { #expect(last.reply == nil && last.message == nil) }
        }
        #expect(last.reply?.array == [19, 49, 0, 7, 0xFF, 0x00, 0x02, 0x00])            // EndOfMsgAck
        let m = try #require(last.message)
        #expect(m.pgn == brmPGN && m.payload.array == brm.array)
        #expect(try GBTCodec.decodeBRM(m.payload).ratedVoltage == Volts(540))
        #expect(!rx.busy && rx.completed == 1)
    }

    @Test func windowsOfTheSendersSize() throws {
        var rx = TPReceiver()
        let brm = brmPayload()
        #expect(rx.connectionManagement(TPSender.rts(pgn: brmPGN, size: 49, maxPerCTS: 2), at: t0).reply?.array.prefix(3) == [17, 2, 1])
        var replies: [[UInt8]] = []
        var done: GBTPayload? = nil
        for seq in UInt8(1)...7 {
            let o = rx.dataTransfer(TPSender.packet(seq, of: brm), at: ms(Int64(seq)))
            if let r = o.reply { replies.append(Array(r.array.prefix(3))) }
            if let m = o.message { done = m.payload }
        }
        #expect(replies == [[17, 2, 3], [17, 2, 5], [17, 1, 7], [19, 49, 0]])
        #expect(done?.array == brm.array)
    }

    @Test func aRepeatedPacketIsIgnoredAMissingOneAskedAgain() throws {
        var rx = TPReceiver()
        let brm = brmPayload()
        _ = rx.connectionManagement(TPSender.rts(pgn: brmPGN, size: 49), at: t0)
        _ = rx.dataTransfer(TPSender.packet(1, of: brm), at: ms(1))
        _ = rx.dataTransfer(TPSender.packet(1, of: brm), at: ms(2))                     // again
        #expect(rx.duplicates == 1)
        let gap = rx.dataTransfer(TPSender.packet(3, of: brm), at: ms(3))                // 2 is missing
        #expect(gap.reply?.array.prefix(3) == [17, 6, 2])                                // CTS from packet 2
        var done: GBTPayload? = nil
        for seq in UInt8(2)...7 { if let m = rx.dataTransfer(TPSender.packet(seq, of: brm), at: ms(10 + Int64(seq))).message { done = m.payload } }
        #expect(done?.array == brm.array)
        // A sender that keeps skipping: asked again twice, then aborted (bad sequence).
        var rx2 = TPReceiver()
        _ = rx2.connectionManagement(TPSender.rts(pgn: brmPGN, size: 49), at: t0)
        #expect(rx2.dataTransfer(TPSender.packet(2, of: brm), at: ms(1)).reply?.array.prefix(3) == [17, 7, 1])
        #expect(rx2.dataTransfer(TPSender.packet(3, of: brm), at: ms(2)).reply?.array.prefix(3) == [17, 7, 1])
        let given = rx2.dataTransfer(TPSender.packet(4, of: brm), at: ms(3))
        #expect(given.reply?.array == [255, 7, 0xFF, 0xFF, 0xFF, 0x00, 0x02, 0x00] && given.dropped == .badSequence && !rx2.busy)
    }

    @Test func timeoutsAbortTheTransfer() {
        let brm = brmPayload()
        var rx = TPReceiver()
        _ = rx.connectionManagement(TPSender.rts(pgn: brmPGN, size: 49), at: t0)
        #expect(rx.poll(at: t0 + (TPReceiver.t2 - .ms(1))).reply == nil)                 // T2 after the CTS
        let late = rx.poll(at: t0 + TPReceiver.t2)
        #expect(late.reply?.array.prefix(2) == [255, 3] && late.dropped == .timeout && rx.timeouts == 1)
        // Between data packets: T1.
        _ = rx.connectionManagement(TPSender.rts(pgn: brmPGN, size: 49), at: ms(2000))
        _ = rx.dataTransfer(TPSender.packet(1, of: brm), at: ms(2010))
        #expect(rx.poll(at: ms(2010) + (TPReceiver.t1 - .ms(1))).dropped == nil)
        #expect(rx.poll(at: ms(2010) + TPReceiver.t1).dropped == .timeout)
    }

    @Test func abortsAndASecondRTS() {
        let brm = brmPayload()
        var rx = TPReceiver()
        _ = rx.connectionManagement(TPSender.rts(pgn: brmPGN, size: 49), at: t0)
        // Another PGN while BRM is open: refused, BRM goes on.
        let other = rx.connectionManagement(TPSender.rts(pgn: 0x0600, size: 13), at: ms(1))
        #expect(other.reply?.array == [255, 1, 0xFF, 0xFF, 0xFF, 0x00, 0x06, 0x00] && rx.busy)
        // The same PGN again: the sender started over; the old transfer goes, the new one is answered.
        let again = rx.connectionManagement(TPSender.rts(pgn: brmPGN, size: 49), at: ms(2))
        #expect(again.dropped == .alreadyInSession && again.reply?.array.prefix(3) == [17, 7, 1])
        // The sender aborts.
        _ = rx.dataTransfer(TPSender.packet(1, of: brm), at: ms(3))
        var abort = CANData([255, 5, 0xFF, 0xFF, 0xFF, 0x00, 0x02, 0x00])
        let o = rx.connectionManagement(abort, at: ms(4))
        #expect(o.dropped == .retransmitLimit && !rx.busy && rx.aborts == 1)
        abort.b[6] = 0x06                                                                 // an abort of nothing open: nothing
        #expect(rx.connectionManagement(abort, at: ms(5)).dropped == nil)
    }

    @Test func aBroadcastIsTakenWithoutAnswers() throws {
        var rx = TPReceiver()
        let bcp = GBTCodec.encode(BCP(maxCellVoltage: Volts(3.65), maxChargeCurrent: Amps(200), nominalEnergy: WattHours(60_000),
                                      maxChargeVoltage: Volts(540), maxTemperature: Celsius(55), soc: 20, batteryVoltage: Volts(480)))
        #expect(rx.connectionManagement(TPSender.bam(pgn: 0x0600, size: 13), at: t0).reply == nil)
        #expect(rx.dataTransfer(TPSender.packet(1, of: bcp), at: ms(50)).reply == nil)
        let o = rx.dataTransfer(TPSender.packet(2, of: bcp), at: ms(100))
        #expect(o.reply == nil && o.message?.pgn == 0x0600)
        #expect(try GBTCodec.decodeBCP(o.message!.payload).batteryVoltage == Volts(480))
    }

    @Test func framesThatAreNotWhatTheyClaim() {
        var rx = TPReceiver()
        // Too large for any GB/T 27930 message, or a packet count that does not match the size.
        #expect(rx.connectionManagement(TPSender.rts(pgn: 0x1500, size: 300), at: t0).reply?.array.prefix(2) == [255, 2])
        var wrongCount = TPSender.rts(pgn: brmPGN, size: 49); wrongCount.b[3] = 9
        #expect(rx.connectionManagement(wrongCount, at: t0).reply?.array.prefix(2) == [255, 2])
        // Data with nothing open, a TP.CM of 5 bytes, an unknown control byte: ignored.
        #expect(rx.dataTransfer(TPSender.packet(1, of: brmPayload()), at: t0).message == nil)
        #expect(rx.connectionManagement(CANData([16, 49, 0, 7, 0xFF]), at: t0).reply == nil)
        #expect(rx.connectionManagement(CANData([99, 0, 0, 0, 0, 0, 0, 0]), at: t0).reply == nil)
        #expect(!rx.busy)
    }
}
