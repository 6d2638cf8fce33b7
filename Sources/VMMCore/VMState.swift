/// The lifecycle of a managed microVM. Firecracker names the first three (`GET /` shows
/// them verbatim); `stopped` and `crashed` are Xen's "shut down" and "crashed".
public enum VMState: String, Sendable, Equatable, CaseIterable {
    case notStarted = "Not started"
    case running = "Running"
    case paused = "Paused"
    case stopped = "Stopped"
    case crashed = "Crashed"
}
