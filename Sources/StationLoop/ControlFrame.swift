// The data of one control cycle, as every board's loop holds it (the hardware loop here, the simulated
// board in ChargerRuntime).
import ChargerCore

/// The data of one control cycle: the core's state, the input snapshot, the outputs, and what the
/// invariants need from the previous cycle.
public struct ControlFrame: Sendable {
    public var spec: StationSpec
    public var state = StationState()
    public var inputs = StationInputs()
    public var outputs = StationOutputs()
    public var wasClosed = GunArray<Bool>(repeating: false)
    public var previousModuleGun = ModuleArray<Int8>(repeating: -1)
    public init(spec: StationSpec) { self.spec = spec }
}
