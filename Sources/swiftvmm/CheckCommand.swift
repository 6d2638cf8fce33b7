import Glibc
import KVMKit

/// `swiftvmm check`: can this host run VMs? kvm-ok, but right on VT-x, AMD-V and PVM.
struct CheckCommand {
    var json = false
    var kvmDevice: String = KVM.defaultDevicePath
    var quiet = false

    static let command = CommandSpec<CheckCommand>(
        name: "check",
        abstract: "Check whether this host can run KVM virtual machines.",
        discussion: "Exit status: 0 if KVM acceleration can be used, 1 if not, 2 on a usage error.",
        options: [
            .flag("json", "Print the facts as one JSON object.") { $0.json = true },
            .value("kvm-device", "PATH", "The KVM device node to check (default: \(KVM.defaultDevicePath)).") { $0.kvmDevice = $1 },
            .flag("quiet", short: "q", "Print nothing; the exit status says it.") { $0.quiet = true },
        ])

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
