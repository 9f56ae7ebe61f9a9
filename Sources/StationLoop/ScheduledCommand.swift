// An operator's command scripted for a time of the loop's clock (`chargerd --inject ...@TIME` on a bench
// board, where the plant's faults are the emulator's to inject and only the operator's actions remain).
import ChargerCore
import LoopContract

public struct ScheduledCommand: Sendable {
    /// As the operator wrote it (printed when it is given).
    public var text: String
    public var at: Instant
    public var command: OperatorCommand
    public var done = false
    public init(text: String, at: Instant, command: OperatorCommand) {
        self.text = text; self.at = at; self.command = command
    }
}
