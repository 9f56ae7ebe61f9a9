// The runtime's own types built from a board's plain data (the board file knows nothing of them).
import BoardFile
import RealTime

extension Board {
    /// The real-time loop of this board: its period (`[board] period`) and its `[runtime]` table.
    public var loopSettings: LoopSettings {
        LoopSettings(periodNanos: spec.period.micros * 1000, priority: runtime.priority, cpu: runtime.cpu,
                     lockMemory: runtime.lockMemory, missLimit: runtime.missLimit)
    }
}
