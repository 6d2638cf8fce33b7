import Glibc

/// `swiftvmm jail`: Firecracker's jailer for swiftvmm (docs/sandbox.md). Accepts its
/// flags; after `--` come the VMM's own arguments (`run …`).
struct JailCommand {
    var id: String?
    var execFile: String?
    var uid: String?
    var gid: String?
    var chrootBaseDir = "/srv/jailer"
    var netns: String?
    var cgroups: [String] = []
    var cgroupVersion = "2"
    var parentCgroup: String?
    var resourceLimits: [String] = []
    var daemonize = false
    var newPIDNamespace = false
    var vmmArguments: [String] = []

    static let command = CommandSpec<JailCommand>(
        name: "jail",
        abstract: "Start a VMM in a chroot, namespaces and a cgroup as an unprivileged user (Firecracker's jailer).",
        discussion: """
            Run as root. Builds <chroot-base-dir>/<exec name>/<id>/root with the VMM and the files \
            its arguments name (--kernel, --initrd, --disk, --seccomp-filter are bind-mounted in and \
            the arguments rewritten), /dev/kvm and /dev/net/tun owned by --uid/--gid, then pivots \
            into it and execs the VMM with an empty environment. Exit status: the VMM's (it \
            replaces this process); 2 on bad input (nothing created); 1 when building the jail failed.
            """,
        options: [
            .value("id", "ID", "VM id: 1 to 64 letters, digits and hyphens.") { $0.id = $1 },
            .value("exec-file", "PATH", "The VMM executable (statically linked), copied into the jail.") { $0.execFile = $1 },
            .value("uid", "UID", "Numeric user id the VMM runs as.") { $0.uid = $1 },
            .value("gid", "GID", "Numeric group id the VMM runs as.") { $0.gid = $1 },
            .value("chroot-base-dir", "DIR", "Where jails are built (default: /srv/jailer).") { $0.chrootBaseDir = $1 },
            .value("netns", "PATH", "A network namespace to join (e.g. /var/run/netns/NAME).") { $0.netns = $1 },
            .repeated("cgroup", "CONTROLLER.FILE=VALUE", "Written in the VM's cgroup (repeatable).") { $0.cgroups.append($1) },
            .value("cgroup-version", "1|2", "cgroup version (default: 2).") { $0.cgroupVersion = $1 },
            .value("parent-cgroup", "NAME", "Parent cgroup of <id> (default: the exec file's name).") { $0.parentCgroup = $1 },
            .repeated("resource-limit", "fsize=BYTES|no-file=COUNT", "A resource limit (repeatable).") { $0.resourceLimits.append($1) },
            .flag("daemonize", "Detach: new session, stdio to /dev/null.") { $0.daemonize = true },
            .flag("new-pid-ns", "Run the VMM as PID 1 of a new PID namespace.") { $0.newPIDNamespace = true },
        ],
        arguments: [CommandArgument(name: "VMM-ARGS", help: "The VMM's arguments, after --.", variadic: true) { $0.vmmArguments.append($1) }])

    func run() throws {
        guard let id, let execFile, let uid, let gid else {
            throw ValidationError("jail: --id, --exec-file, --uid and --gid are required (swiftvmm jail --help)")
        }
        guard geteuid() == 0 else { throw JailError.input("jail must run as root (it mounts, chroots and changes user)") }
        let plan = try JailPlan(id: id, execFile: execFile, uid: uid, gid: gid, chrootBase: chrootBaseDir, netns: netns,
                                cgroups: cgroups, cgroupVersion: cgroupVersion, parentCgroup: parentCgroup,
                                resourceLimits: resourceLimits, daemonize: daemonize, newPIDNamespace: newPIDNamespace,
                                vmmArguments: vmmArguments)
        throw ExitCode(try Jailer.run(plan))
    }
}
