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
    private struct State {
        var reason: MachineStopReason?
        var onStop: [@Sendable () -> Void] = []
    }
    private let state = Mutex(State())
    /// Mirrors `state.reason != nil` for the vCPU loops, which look at it on every exit.
    private let stopped = Atomic<Bool>(false)
    private let wakeFD: Int32

    public init() throws {
        let fd = eventfd(0, Int32(EFD_CLOEXEC))
        if fd < 0 { throw KVMError("eventfd for the machine's stop signal", errno: errno) }
        wakeFD = fd
    }

    deinit { close(wakeFD) }

    /// Run `h` once a stop is requested (e.g. kick a vCPU), on the stopping thread; at once
    /// if the machine has already stopped.
    public func addStopHandler(_ h: @escaping @Sendable () -> Void) {
        let alreadyStopped = state.withLock { s -> Bool in
            if s.reason != nil { return true }
            s.onStop.append(h)
            return false
        }
        if alreadyStopped { h() }
    }

    @inline(__always)
    public var isStopped: Bool { stopped.load(ordering: .acquiring) }
    public var stopReason: MachineStopReason? { state.withLock { $0.reason } }

    public func requestStop(_ r: MachineStopReason) {
        let handlers = state.withLock { s -> [@Sendable () -> Void]? in
            if s.reason != nil { return nil }
            s.reason = r
            return s.onStop
        }
        guard let handlers else { return }
        stopped.store(true, ordering: .releasing)
        for h in handlers { h() }
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
