/// A device whose guest-visible state can be captured as a value, for snapshots and
/// migration (Cloud Hypervisor's `Snapshottable`, vm-superio's `state()`).
///
/// Capture only while the device is quiescent (the machine paused, the device's
/// `Pausable.pause()` returned). Restoring is construction: each device type offers an
/// initialiser that takes its `State` plus the host-side plumbing (interrupt line,
/// output, backend) and builds a device already in that state — a live device is never
/// rewritten underneath a running guest.
public protocol Snapshottable: AnyObject {
    associatedtype State: StateCodable
    /// The device's state now, as a value.
    func captureState() throws -> State
}

extension Snapshottable {
    /// The captured state, encoded: what goes into a snapshot section.
    public func encodedState() throws -> [UInt8] { try captureState().encodedBytes }
}
