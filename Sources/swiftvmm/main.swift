import ArgumentParser
import Glibc
import KVMKit
import VirtioDevices

/// When main started (CLOCK_MONOTONIC), before argument parsing: `--timings` counts from here.
let mainStartNanoseconds = monotonicNanoseconds()

// Parse by hand so that every usage error exits 2 (bad input), not ArgumentParser's 64.
do {
    if let options = FastRunParser.parse(Array(CommandLine.arguments.dropFirst())) {
        try options.runMachine()  // `swiftvmm run` with plain options: ArgumentParser stays cold
    } else {
        var command = try SwiftVMM.parseAsRoot()
        try command.run()
    }
    exit(VMMExit.success)
} catch let e as ExitCode {
    exit(e.rawValue)
} catch let e as BootError {
    fputs("swiftvmm: \(e)\n", stderr)
    exit(VMMExit.badInput)
} catch let e as ConfigurationError {
    fputs("swiftvmm: \(e)\n", stderr)
    exit(VMMExit.badInput)
} catch let e as DiskOptionsError {
    fputs("swiftvmm: \(e)\n", stderr)
    exit(VMMExit.badInput)
} catch let e as BlockBackendError {
    fputs("swiftvmm: \(e)\n", stderr)
    exit(VMMExit.badInput)
} catch let e as ConsoleError {
    fputs("swiftvmm: \(e)\n", stderr)
    exit(VMMExit.badInput)
} catch let e as RuntimeFailure {
    fputs("swiftvmm: \(e)\n", stderr)
    exit(VMMExit.failure)
} catch let e as KVMError {
    fputs("swiftvmm: \(e)\n", stderr)
    exit(VMMExit.failure)
} catch {
    let code = SwiftVMM.exitCode(for: error)
    if code == .success {
        print(SwiftVMM.fullMessage(for: error))
        exit(VMMExit.success)
    }
    let message = SwiftVMM.message(for: error)
    fputs("swiftvmm: \(message)\n", stderr)
    exit(code == .failure ? VMMExit.failure : VMMExit.badInput)
}
