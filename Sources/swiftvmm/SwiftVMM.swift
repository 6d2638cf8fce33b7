import ArgumentParser

struct SwiftVMM: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "swiftvmm",
        abstract: "A KVM virtual machine monitor for Linux microVMs.",
        subcommands: [CheckCommand.self])
}
