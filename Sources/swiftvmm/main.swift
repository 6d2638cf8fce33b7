import Glibc

/// When main started (CLOCK_MONOTONIC), before argument parsing: `--timings` counts from here.
let mainStartNanoseconds = monotonicNanoseconds()

do {
    try SwiftVMM.main(Array(CommandLine.arguments.dropFirst()))
    exit(VMMExit.success)
} catch let help as HelpRequest {
    print(help.text, terminator: help.text.hasSuffix("\n") ? "" : "\n")
    exit(VMMExit.success)
} catch {
    let status = exitStatus(for: error)
    if let m = status.message { fputs(m + "\n", stderr) }
    exit(status.code)
}
