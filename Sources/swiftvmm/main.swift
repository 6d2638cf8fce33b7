import Glibc
import KVMKit
import VMMCore

/// When main started (CLOCK_MONOTONIC), before argument parsing: `--timings` counts from here.
let mainStartNanoseconds = monotonicNanoseconds()

do {
    let arguments = Array(CommandLine.arguments.dropFirst())
    let program = CommandLine.arguments.first ?? ""
    // Invoked through a link named `jailer` (what tools built for Firecracker's jailer
    // run; `make build` makes one): `swiftvmm jail`.
    if program.split(separator: "/").last == "jailer" {
        try SwiftVMM.main(["jail"] + arguments)
    // `swiftvmm --help` alone is swiftvmm's own help (which points to Firecracker's).
    } else if arguments != ["--help"], arguments != ["-h"],
       FirecrackerCommandLine.applies(program: program, arguments: arguments) {
        switch try FirecrackerCommandLine.parse(arguments) {
        case .run(let managed): try managed.run()
        case .version: print("swiftvmm \(APIController.version) (Firecracker API)")
        case .help: print(FirecrackerCommandLine.help)
        }
    } else {
        try SwiftVMM.main(arguments)
    }
    exit(VMMExit.success)
} catch let help as HelpRequest {
    print(help.text, terminator: help.text.hasSuffix("\n") ? "" : "\n")
    exit(VMMExit.success)
} catch {
    let status = exitStatus(for: error)
    if let m = status.message { StandardError.write(m + "\n") }
    exit(status.code)
}
