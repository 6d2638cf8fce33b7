/// Which lifecycle changes are legal (Cloud Hypervisor's `VmState::valid_transition`):
///
///     Not started ─start─▶ Running ◀─resume/pause─▶ Paused
///          │                  │                        │
///          └──────────────────┴──▶ Stopped / Crashed ◀─┘
///
/// Stopped and Crashed are final: a VM's process (or `MicroVM` object) runs one guest.
public enum VMLifecycle {
    public static func canTransition(from: VMState, to: VMState) -> Bool {
        switch (from, to) {
        case (.notStarted, .running), (.notStarted, .stopped): return true
        case (.notStarted, .paused): return true  // a snapshot loaded without resuming
        case (.running, .paused), (.paused, .running): return true
        case (.running, .stopped), (.running, .crashed), (.paused, .stopped), (.paused, .crashed): return true
        default: return false
        }
    }
}

/// What a user asks of a VM, and the states in which each request is accepted.
public enum VMRequest: String, Sendable, CaseIterable {
    case configure = "configure"
    case start = "start"
    case pause = "pause"
    case resume = "resume"
    case sendCtrlAltDel = "send Ctrl-Alt-Del to"
    case readRegisters = "read the registers of"
    case createSnapshot = "snapshot"
    case loadSnapshot = "load a snapshot into"
    case migrate = "migrate"
    case receiveMigration = "receive a migration into"

    public func isAllowed(in state: VMState) -> Bool {
        switch self {
        case .configure, .start, .loadSnapshot, .receiveMigration: return state == .notStarted
        case .pause, .sendCtrlAltDel, .migrate: return state == .running
        case .resume, .readRegisters, .createSnapshot: return state == .paused
        }
    }
}

/// A request the VM's state does not allow, or a VM that cannot be built as configured.
public enum VMError: Error, Equatable, CustomStringConvertible {
    case illegal(VMRequest, state: VMState)
    case missingBootSource
    case invalidConfiguration(String)
    case startFailed(String)
    case keyboardBusy

    public var description: String {
        switch self {
        case .illegal(.configure, .running), .illegal(.configure, .paused):
            return "the requested operation is not supported after starting the microVM"
        case .illegal(let r, let s): return "cannot \(r.rawValue) a VM that is \(s.description)"
        case .missingBootSource: return "cannot start the microVM without a kernel (configure the boot source first)"
        case .invalidConfiguration(let why): return why
        case .startFailed(let why): return "cannot start the microVM: \(why)"
        case .keyboardBusy: return "the keyboard buffer is full or the guest disabled the keyboard; try again"
        }
    }
}

extension VMState: CustomStringConvertible {
    /// "running", "not started" … for sentences.
    public var description: String { rawValue.lowercased() }
}
