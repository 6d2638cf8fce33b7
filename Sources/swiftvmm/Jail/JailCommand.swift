import ArgumentParser
import Glibc

/// `swiftvmm jail`: Firecracker's jailer for swiftvmm (docs/sandbox.md). Accepts its
/// flags; after `--` come the VMM's own arguments (`run …`).
struct JailCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jail",
        abstract: "Start a VMM in a chroot, namespaces and a cgroup as an unprivileged user (Firecracker's jailer).",
        discussion: """
            Run as root. Builds <chroot-base-dir>/<exec name>/<id>/root with the VMM and the files \
            its arguments name (--kernel, --initrd, --disk, --seccomp-filter are bind-mounted in and \
            the arguments rewritten), /dev/kvm and /dev/net/tun owned by --uid/--gid, then pivots \
            into it and execs the VMM with an empty environment. Exit status: the VMM's (it \
            replaces this process); 2 on bad input (nothing created); 1 when building the jail failed.
            """)

    @Option(help: "VM id: 1 to 64 letters, digits and hyphens.") var id: String
    @Option(name: .customLong("exec-file"), help: "The VMM executable (statically linked), copied into the jail.") var execFile: String
    @Option(help: "Numeric user id the VMM runs as.") var uid: String
    @Option(help: "Numeric group id the VMM runs as.") var gid: String
    @Option(name: .customLong("chroot-base-dir"), help: "Where jails are built.") var chrootBaseDir = "/srv/jailer"
    @Option(help: "A network namespace to join (e.g. /var/run/netns/NAME).") var netns: String?
    @Option(name: .customLong("cgroup"), help: "CONTROLLER.FILE=VALUE written in the VM's cgroup (repeatable).") var cgroups: [String] = []
    @Option(name: .customLong("cgroup-version"), help: "1 or 2.") var cgroupVersion = "2"
    @Option(name: .customLong("parent-cgroup"), help: "Parent cgroup of <id> (default: the exec file's name).") var parentCgroup: String?
    @Option(name: .customLong("resource-limit"), help: "fsize=BYTES or no-file=COUNT (repeatable).") var resourceLimits: [String] = []
    @Flag(help: "Detach: new session, stdio to /dev/null.") var daemonize = false
    @Flag(name: .customLong("new-pid-ns"), help: "Run the VMM as PID 1 of a new PID namespace.") var newPIDNamespace = false
    @Argument(parsing: .postTerminator, help: "The VMM's arguments, after --.") var vmmArguments: [String] = []

    func run() throws {
        guard geteuid() == 0 else { throw JailError.input("jail must run as root (it mounts, chroots and changes user)") }
        let plan = try JailPlan(id: id, execFile: execFile, uid: uid, gid: gid, chrootBase: chrootBaseDir, netns: netns,
                                cgroups: cgroups, cgroupVersion: cgroupVersion, parentCgroup: parentCgroup,
                                resourceLimits: resourceLimits, daemonize: daemonize, newPIDNamespace: newPIDNamespace,
                                vmmArguments: vmmArguments)
        throw ExitCode(try Jailer.run(plan))
    }
}
