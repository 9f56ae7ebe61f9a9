// The pieces between threads and between processes: the triple buffer (loop ↔ Modbus poller) and the
// bench channel (chargerd ↔ plant emulator): newest value, never torn, clear errors on a bad channel.
import BenchChannel
import ChargerCore
import ChargerHAL
import Foundation
import RealTime
import Synchronization
import Testing

struct Pair: BitwiseCopyable, Equatable { var a: UInt64; var b: UInt64 }

@Suite struct TripleBufferTests {
    @Test func newestValueWins() {
        let storage = TripleBufferStorage(initial: Pair(a: 0, b: 0))
        let tb = storage.buffer
        #expect(tb.read() == Pair(a: 0, b: 0))
        tb.write(Pair(a: 1, b: 1)); tb.write(Pair(a: 2, b: 2)); tb.write(Pair(a: 3, b: 3))
        #expect(tb.read() == Pair(a: 3, b: 3))
        #expect(tb.read() == Pair(a: 3, b: 3), "reading again gives the same newest value")
        tb.write(Pair(a: 4, b: 4))
        #expect(tb.read() == Pair(a: 4, b: 4))
    }

    /// A writer thread and a reader thread: the reader never sees a torn pair (a ≠ b) and never sees
    /// values go backwards.
    @Test func neverTornNeverBackwardsAcrossThreads() async {
        let storage = TripleBufferStorage(initial: Pair(a: 0, b: 0))
        let tb = storage.buffer
        let n: UInt64 = 2_000_000
        let done = Atomic<Bool>(false)
        let writer = Thread {
            for i in 1...n { tb.write(Pair(a: i, b: i)) }
            done.store(true, ordering: .releasing)
        }
        writer.start()
        var last: UInt64 = 0, torn = 0, backwards = 0, reads = 0
        while !done.load(ordering: .acquiring) {
            let v = tb.read()
            reads += 1
            if v.a != v.b { torn += 1 }
            if v.a < last { backwards += 1 }
            last = v.a
        }
        #expect(torn == 0 && backwards == 0, "\(reads) reads")
        #expect(tb.read() == Pair(a: n, b: n), "the last write is the one left")
        _ = storage
    }
}

@Suite(.serialized) struct BenchChannelTests {
    let path = "/dev/shm/charger-test-channel-\(getpid())"

    @Test func controllerSeesWhatThePlantPublishesAndViceVersa() throws {
        let plant = try BenchChannel.create(path: path, guns: 2, modules: 4, speed: 10)
        let ctl = try BenchChannel.open(path: path, guns: 2, modules: 4)
        #expect(plant.controllerAttached)
        var gi = GunInputs()
        gi.cc1 = Volts(4); gi.vehicleSideVoltage = Volts(612.5); gi.lockConfirmed = true; gi.k1Closed = true
        gi.gunTemperature = Celsius(41); gi.peContinuity = true; gi.groundDetectorTest = .passed
        plant.publish(gun: 1, inputs: gi, imdAlarm: true)
        plant.publish(station: true, door: false, mains: true)
        var seen = GunInputs()
        ChannelFrontEnd(ctl).sample(gun: 1, into: &seen)
        #expect(seen.cc1 == Volts(4) && seen.vehicleSideVoltage == Volts(612.5) && seen.lockConfirmed && seen.k1Closed && !seen.k2Closed)
        #expect(seen.gunTemperature == Celsius(41) && seen.groundDetectorTest == .passed && seen.imdAlarm)
        var st = StationInputs()
        let signals = ChannelSignals(ctl)
        signals.sample(into: &st)
        #expect(st.emergencyStop && !st.doorOpen && st.mainsPresent)
        plant.publish(station: false, door: false, mains: true)
        signals.stalled = true
        signals.sample(into: &st)
        #expect(st.emergencyStop, "a stalled plant reads as the e-stop pressed")

        var o = GunOutputs()
        o.closeK1K2 = true; o.lock = true; o.lamp = .charging
        ChannelFrontEnd(ctl).apply(gun: 1, o)
        let back = try #require(plant.outputs(gun: 1))
        #expect(back.closeK1K2 && back.lock && !back.closeK3K4 && back.lamp == .charging)
        let matrix = ChannelMatrix(ctl)
        matrix.set(module: 2, gun: 1); matrix.commit()
        #expect(plant.matrix() == [-1, -1, 1, -1])

        // The lockstep clock: a tick, the controller's cycle, its acknowledgement.
        plant.publishTick(7, now: Instant(micros: 6_000))
        #expect(ctl.waitTick(after: 6, timeoutMicros: 1_000_000))
        #expect(ctl.plantNow == Instant(micros: 6_000))
        ctl.acknowledge(7)
        #expect(plant.waitAcknowledged(7, timeoutMicros: 1_000_000))
        #expect(!ctl.waitTick(after: 7, timeoutMicros: 1_000), "no new tick: times out")
        ctl.detach()
        #expect(!plant.controllerAttached)
    }

    @Test func badChannelsAreNamed() throws {
        do { _ = try BenchChannel.open(path: path + "-missing", guns: 1, modules: 2); Issue.record("opened a missing channel") }
        catch { #expect(error.description.contains("start the plant emulator first")) }
        let plant = try BenchChannel.create(path: path, guns: 1, modules: 2, speed: 1)
        do { _ = try BenchChannel.open(path: path, guns: 2, modules: 2); Issue.record("opened a channel of another board") }
        catch { #expect(error.description.contains("the emulator runs 1 gun(s) and 2 module(s); this board has 2 and 2")) }
        _ = plant
        _ = FileManager.default.createFile(atPath: path + "-junk", contents: Data(repeating: 7, count: 100_000))
        defer { unlink(path + "-junk") }
        do { _ = try BenchChannel.open(path: path + "-junk", guns: 1, modules: 2); Issue.record("opened junk") }
        catch { #expect(error.description.contains("not a bench channel")) }
    }
}
