// What the loop tells the rest of the process, into the journal: faults as they latch and clear, session
// starts and ends with the meter's energy. Runs off the loop (chargerd's main thread drains the queue).
import ChargerCore
import LoopContract
import Journal

public enum Recorder {
    /// The journal entry for a loop event, nil for events the journal does not keep (phases, status).
    public static func entry(for e: LoopEvent) -> JournalEntry? {
        switch e {
        case .fault(let r):
            var note = FaultNote(gun: r.gun < 0 ? nil : Int(r.gun), code: r.code.name, reaction: r.reaction.name,
                                 value: r.value.isFinite ? r.value : nil, faultSeq: r.sequence)
            if r.module >= 0 { note.text = "module \(r.module)" }
            if r.restored && r.clearedAt == nil { note.text = "latched again at start: it stood when the controller stopped" }
            return JournalEntry(r.clearedAt == nil ? .fault(note) : .faultCleared(note), t: (r.clearedAt ?? r.raisedAt).seconds)
        case .session(let s):
            let note = SessionNote(gun: Int(s.gun), energyKWh: s.meterEnergy.kilowattHours, soc: s.soc.isNaN ? nil : s.soc,
                                   stopReason: s.started ? nil : s.stopReason.name, exportKWh: s.meterExportEnergy.kilowattHours)
            return JournalEntry(s.started ? .sessionStart(note) : .sessionEnd(note), t: s.at.seconds)
        case .overrun(let n, let at):
            return JournalEntry(.loopOverrun(count: Double(n)), t: at.seconds)
        case .phase, .status:
            return nil
        }
    }
}
