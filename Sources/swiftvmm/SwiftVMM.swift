import ArgumentParser

struct SwiftVMM: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "swiftvmm",
        abstract: "A KVM virtual machine monitor for Linux microVMs.",
        subcommands: [RunCommand.self, AttachCommand.self, CheckCommand.self, JailCommand.self])
}
