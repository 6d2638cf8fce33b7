import ArgumentParser
import Glibc
import KVMKit
import VMMCore

/// When main started (CLOCK_MONOTONIC), before argument parsing: `--timings` counts from here.
let mainStartNanoseconds = monotonicNanoseconds()

do {
    let arguments = Array(CommandLine.arguments.dropFirst())
    if FirecrackerCommandLine.applies(program: CommandLine.arguments.first ?? "", arguments: arguments) {
        switch try FirecrackerCommandLine.parse(arguments) {
        case .run(let managed): try managed.run()
        case .version: print("swiftvmm \(APIController.version) (Firecracker API)")
        case .help: print(FirecrackerCommandLine.help)
        }
    } else if let options = FastRunParser.parse(arguments) {
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
