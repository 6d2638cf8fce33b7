/// The top level: which subcommand runs, and `swiftvmm --help`.
enum SwiftVMM {
    static let abstract = "A KVM virtual machine monitor for Linux microVMs."

    /// Each subcommand: its name and summary, and how it parses its arguments and runs.
    static let subcommands: [(name: String, abstract: String, run: ([String]) throws -> Void)] = [
        (RunOptions.command.name, RunOptions.command.abstract, { try RunOptions.command.parse($0, into: RunOptions()).runMachine() }),
        (AttachCommand.command.name, AttachCommand.command.abstract, { try AttachCommand.command.parse($0, into: AttachCommand()).run() }),
        (CheckCommand.command.name, CheckCommand.command.abstract, { try CheckCommand.command.parse($0, into: CheckCommand()).run() }),
        (SnapshotCommand.command.name, SnapshotCommand.command.abstract, { try SnapshotCommand.command.parse($0, into: SnapshotCommand()).run() }),
        (JailCommand.command.name, JailCommand.command.abstract, { try JailCommand.command.parse($0, into: JailCommand()).run() }),
    ] + ClientCommand.all.map { c in (c.spec.name, c.spec.abstract, { try c.spec.parse($0, into: ClientCommand.Options()).run(c) }) }

    /// Run the command line (without the program name). Throws `HelpRequest` for help.
    static func main(_ args: [String]) throws {
        guard let first = args.first else {
            throw ValidationError("missing subcommand: \(names) (swiftvmm --help)")
        }
        if first == "--help" || first == "-h" || (first == "help" && args.count == 1) {
            throw HelpRequest(text: help())
        }
        if first == "help" {
            // `swiftvmm help run` is `swiftvmm run --help`.
            return try main([args[1], "--help"])
        }
        guard let sub = subcommands.first(where: { $0.name == first }) else {
            throw ValidationError("unknown subcommand '\(first)': use \(names) (swiftvmm --help)")
        }
        try sub.run(Array(args.dropFirst()))
    }

    static var names: String {
        let n = subcommands.map { $0.name }
        return n.dropLast().joined(separator: ", ") + " or " + n[n.count - 1]
    }

    static func help() -> String {
        "OVERVIEW: \(abstract)\n\nUSAGE: swiftvmm SUBCOMMAND [OPTIONS]\n\nSUBCOMMANDS:\n"
            + helpColumns(subcommands.map { ($0.name, $0.abstract) })
            + "\nSee 'swiftvmm help SUBCOMMAND' or 'swiftvmm SUBCOMMAND --help' for its options.\n"
            + "Firecracker's command line works too: swiftvmm --api-sock PATH [FLAGS]\n"
            + "(swiftvmm --api-sock X --help lists its flags).\n"
    }
}
