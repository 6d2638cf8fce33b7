import KVMKit
import VirtioDevices
import VMMCore

/// How an error ends the process: the documented exit code (README "Exit codes") and the
/// one line for stderr (nil: nothing to print).
func exitStatus(for error: Error) -> (code: Int32, message: String?) {
    switch error {
    case let e as ExitCode:
        return (e.rawValue, nil)
    case let e as JailError:
        return (e.badInput ? VMMExit.badInput : VMMExit.failure, "swiftvmm: jail: \(e)")
    // The user's input was wrong: nothing was started.
    case is ValidationError, is BootError, is ConfigurationError, is DiskOptionsError, is BlockBackendError, is Qcow2Error, is ConsoleError,
         is NetOptionsError, is NetBackendError, is VsockOptionsError, is VsockError,
         is SnapshotFileError, is SnapshotError, is GuestMemoryError, is VirtioStateError,
         is SeccompError:
        return (VMMExit.badInput, "swiftvmm: \(error)")
    case let e as VMError:
        switch e {
        case .missingBootSource, .invalidConfiguration: return (VMMExit.badInput, "swiftvmm: \(error)")
        case .illegal, .startFailed, .keyboardBusy: return (VMMExit.failure, "swiftvmm: \(error)")
        }
    // Accepted input, then a failure of the guest, the host or the VMM (RuntimeFailure,
    // KVMError, EventLoopError).
    default:
        return (VMMExit.failure, "swiftvmm: \(error)")
    }
}
