import ArgumentParser
import KVMKit
import VirtioDevices

/// How an error ends the process: the documented exit code (README "Exit codes") and the
/// one line for stderr (nil: nothing to print, e.g. help text goes to stdout).
func exitStatus(for error: Error) -> (code: Int32, message: String?) {
    switch error {
    case let e as ExitCode:
        return (e.rawValue, nil)
    case let e as JailError:
        return (e.badInput ? VMMExit.badInput : VMMExit.failure, "swiftvmm: jail: \(e)")
    // The user's input was wrong: nothing was started.
    case is BootError, is ConfigurationError, is DiskOptionsError, is BlockBackendError, is ConsoleError,
         is SeccompError:
        return (VMMExit.badInput, "swiftvmm: \(error)")
    // Accepted input, then a failure of the guest, the host or the VMM.
    case is RuntimeFailure, is KVMError:
        return (VMMExit.failure, "swiftvmm: \(error)")
    default:
        // ArgumentParser's own errors: help and version succeed, everything else is a
        // usage error (2, not its default 64).
        let code = SwiftVMM.exitCode(for: error)
        if code == .success { return (VMMExit.success, nil) }
        return (code == .failure ? VMMExit.failure : VMMExit.badInput, "swiftvmm: \(SwiftVMM.message(for: error))")
    }
}
