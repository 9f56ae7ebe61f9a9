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
            note.unit = r.measure.name
            if r.limit.isFinite { note.limit = r.limit }
            if r.module >= 0 { note.text = "module \(r.module)" }
            if r.restored && r.clearedAt == nil { note.text = "latched again at start: it stood when the controller stopped" }
            return JournalEntry(r.clearedAt == nil ? .fault(note) : .faultCleared(note), t: (r.clearedAt ?? r.raisedAt).seconds)
        case .session(let s):
            var note = SessionNote(gun: Int(s.gun), energyKWh: s.meterEnergy.kilowattHours, soc: s.soc.isNaN ? nil : s.soc,
                                   stopReason: s.started ? nil : s.stopReason.name, exportKWh: s.meterExportEnergy.kilowattHours)
            if !s.started {
                note.chargerKWh = (s.chargerEnergy.kilowattHours * 1000).rounded() / 1000
                if s.meteringDeviation.isFinite { note.deviationPercent = (s.meteringDeviation * 100_000).rounded() / 1000 }
            }
            return JournalEntry(s.started ? .sessionStart(note) : .sessionEnd(note), t: s.at.seconds)
        case .service(let g, let out, let at):
            return JournalEntry(.service(gun: Int(g), out: out), t: at.seconds)
        case .overrun(let n, let at):
            return JournalEntry(.loopOverrun(count: Double(n)), t: at.seconds)
        case .phase, .status:
            return nil
        }
    }

    /// The faults the journal says stood when the controller last stopped (`Journal.latchedAtStart`), as
    /// the core latches them again: with the reading that tripped each and its limit, so that a restart
    /// shows them as they were (issue 36: after kill -9 and a restart, `faults` said "value nan").
    public static func standing(_ entries: [JournalEntry]) -> [StandingFault] {
        entries.compactMap { e in
            guard case .fault(let f) = e.event, let code = FaultCode.allCases.first(where: { $0.name == f.code }) else { return nil }
            return StandingFault(code: code, gun: f.gun ?? -1, value: f.value ?? .nan, limit: f.limit ?? .nan,
                                 measure: f.unit.flatMap(FaultMeasure.init(name:)))
        }
    }
}
