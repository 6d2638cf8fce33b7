import ArgumentParser
import Glibc
import KVMKit

/// When main started (CLOCK_MONOTONIC), before argument parsing: `--timings` counts from here.
let mainStartNanoseconds = monotonicNanoseconds()

do {
    if let options = FastRunParser.parse(Array(CommandLine.arguments.dropFirst())) {
        try options.runMachine()  // `swiftvmm run` with plain options: ArgumentParser stays cold
    } else {
        var command = try SwiftVMM.parseAsRoot()
        try command.run()
    }
    exit(VMMExit.success)
} catch {
    let status = exitStatus(for: error)
    if let m = status.message {
        fputs(m + "\n", stderr)
    } else if status.code == VMMExit.success, !(error is ExitCode) {
        print(SwiftVMM.fullMessage(for: error))  // --help
    }
    exit(status.code)
}
