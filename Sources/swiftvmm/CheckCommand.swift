import ArgumentParser
import Glibc
import KVMKit

/// `swiftvmm check`: can this host run VMs? kvm-ok, but right on VT-x, AMD-V and PVM.
struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check whether this host can run KVM virtual machines.",
        discussion: "Exit status: 0 if KVM acceleration can be used, 1 if not, 2 on a usage error.")

    @Flag(name: .long, help: "Print the facts as one JSON object.")
    var json = false

    @Option(name: .customLong("kvm-device"), help: "The KVM device node to check.")
    var kvmDevice: String = KVM.defaultDevicePath

    @Flag(name: .shortAndLong, help: "Print nothing; the exit status says it.")
    var quiet = false

    func run() throws {
        let report = HostCheck.evaluate(HostFactsCollector.collect(devicePath: kvmDevice))
        if json {
            print(report.json())
        } else if !quiet {
            for item in report.items {
                let mark = item.status == .ok ? "OK  " : item.status == .warn ? "WARN" : "FAIL"
                print("\(mark) \(item.label): \(item.detail)")
            }
            print(report.verdict)
        }
        if !report.usable { throw ExitCode(VMMExit.failure) }
    }
}
