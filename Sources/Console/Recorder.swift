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
            var j = JournalEntry(kind: r.clearedAt == nil ? "fault" : "fault-cleared", t: (r.clearedAt ?? r.raisedAt).seconds)
            j.gun = r.gun < 0 ? nil : Int(r.gun)
            j.code = r.code.name
            j.reaction = r.reaction.name
            j.value = r.value.isFinite ? r.value : nil
            j.faultSeq = r.sequence
            if r.module >= 0 { j.text = "module \(r.module)" }
            if r.restored && r.clearedAt == nil { j.text = "latched again at start: it stood when the controller stopped" }
            return j
        case .session(let s):
            var j = JournalEntry(kind: s.started ? "session-start" : "session-end", t: s.at.seconds)
            j.gun = Int(s.gun)
            j.energyKWh = s.meterEnergy.kilowattHours
            j.soc = s.soc.isNaN ? nil : s.soc
            if !s.started { j.stopReason = s.stopReason.name }
            return j
        case .overrun(let n, let at):
            var j = JournalEntry(kind: "loop-overrun", t: at.seconds)
            j.value = Double(n)
            return j
        case .phase, .status:
            return nil
        }
    }
}
