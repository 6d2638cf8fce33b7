import CKVM
import Glibc
import Synchronization

/// Why a machine stopped.
public enum MachineStopReason: Sendable, Equatable {
    /// The guest powered off (ACPI sleep register, S5).
    case powerOff
    /// The guest asked for a reset (i8042 0xFE, ACPI reset register, KVM system event).
    case reset
    /// The guest crashed: triple fault, emulation failure, failed entry. One-line reason,
    /// then a register dump.
    case guestCrash(reason: String, dump: String)
    /// The VMM failed (an ioctl, a device backend).
    case vmmError(String)
    /// The host asked: Ctrl-A x, a signal, an API call.
    case hostRequest(String)
}

/// The first stop request wins; everyone can wait for it. The waiter blocks in `read` on an
/// eventfd, so no thread spins and signal handlers stay out of it.
public final class MachineControl: @unchecked Sendable {
    private let reason = Mutex<MachineStopReason?>(nil)
    private let wakeFD: Int32
    private var onStop: [@Sendable () -> Void] = []

    public init() {
        wakeFD = eventfd(0, Int32(EFD_CLOEXEC))
    }

    deinit { close(wakeFD) }

    /// Called once, on the stopping thread, after the first stop request (e.g. kick vCPUs).
    public func addStopHandler(_ h: @escaping @Sendable () -> Void) { onStop.append(h) }

    public var isStopped: Bool { reason.withLock { $0 != nil } }
    public var stopReason: MachineStopReason? { reason.withLock { $0 } }

    public func requestStop(_ r: MachineStopReason) {
        let first = reason.withLock { (cur: inout MachineStopReason?) -> Bool in
            if cur != nil { return false }
            cur = r
            return true
        }
        guard first else { return }
        for h in onStop { h() }
        var one: UInt64 = 1
        _ = write(wakeFD, &one, 8)
    }

    /// Block until a stop is requested, and return why.
    public func wait() -> MachineStopReason {
        while true {
            if let r = stopReason { return r }
            var v: UInt64 = 0
            _ = read(wakeFD, &v, 8)
        }
    }
}
