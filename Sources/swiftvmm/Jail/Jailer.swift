import CKVM
import Glibc

/// Builds the jail a `JailPlan` describes and execs the VMM in it, in Firecracker's
/// jailer's order: close inherited fds, create `<base>/<exec>/<id>/root` with the VMM and
/// its files, join the cgroup, set resource limits, enter the network namespace, a new
/// PID namespace (fork), a new mount namespace with the root pivoted, device nodes owned
/// by the target user, daemonize, drop to uid/gid, exec with an empty environment.
/// Returns only on failure (or in the parent of a PID-namespace fork, with the child's
/// exit status).
enum Jailer {
    static func run(_ plan: JailPlan) throws -> Int32 {
        _ = ckvm_close_from(3)
        let devNull = open("/dev/null", O_RDWR | O_CLOEXEC)
        try makeRoot(plan)
        try joinCgroup(plan)
        for limit in plan.resourceLimits {
            var r = rlimit(rlim_cur: rlim_t(limit.value), rlim_max: rlim_t(limit.value))
            if setrlimit(__rlimit_resource_t(UInt32(limit.resource)), &r) != 0 { throw JailError.failed("setrlimit \(limit.name)", errno: errno) }
        }
        if let path = plan.netns {
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            if fd < 0 { throw JailError.failed("open \(path)", errno: errno) }
            let r = ckvm_setns(fd, CKVM_CLONE_NEWNET)
            close(fd)
            if r < 0 { throw JailError.failed("setns \(path)", errno: -r) }
        }
        if plan.newPIDNamespace {
            let r = ckvm_unshare(CKVM_CLONE_NEWPID)
            if r < 0 { throw JailError.failed("unshare(CLONE_NEWPID)", errno: -r) }
            let child = fork()
            if child < 0 { throw JailError.failed("fork", errno: errno) }
            if child > 0 {
                // The VMM is PID 1 of the new namespace; this process stands for it outside.
                try writePIDFile(plan, pid: child)
                if plan.daemonize { return 0 }
                var status: Int32 = 0
                while waitpid(child, &status, 0) < 0 && errno == EINTR {}
                return status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
            }
        }
        try pivotIntoRoot(plan)
        if plan.daemonize {
            if !plan.newPIDNamespace {
                let child = fork()
                if child < 0 { throw JailError.failed("fork", errno: errno) }
                if child > 0 { _exit(0) }
            }
            _ = setsid()
            for fd: Int32 in 0...2 { dup2(devNull, fd) }
        }
        let r = ckvm_drop_to(plan.uid, plan.gid)
        if r < 0 { throw JailError.failed("dropping to uid \(plan.uid) gid \(plan.gid)", errno: -r) }
        let argv = ["/" + plan.execName] + plan.vmmArguments
        var cArgs = argv.map { strdup($0) } + [nil]
        var env: [UnsafeMutablePointer<CChar>?] = [nil]
        execve("/" + plan.execName, &cArgs, &env)
        throw JailError.failed("exec /\(plan.execName) in the jail", errno: errno)
    }

    /// `<base>/<exec>/<id>/root` with the VMM copied in, and a pid file beside it.
    static func makeRoot(_ plan: JailPlan) throws {
        if access(plan.jailDirectory, F_OK) == 0 {
            throw JailError.input("\(plan.jailDirectory) exists: another jail with --id \(plan.id)?")
        }
        var path = ""
        for part in plan.root.split(separator: "/") {
            path += "/" + part
            if mkdir(path, 0o755) != 0 && errno != EEXIST { throw JailError.failed("mkdir \(path)", errno: errno) }
        }
        try copyFile(plan.execFile, to: "\(plan.root)/\(plan.execName)", mode: 0o755)
        if chown("\(plan.root)/\(plan.execName)", plan.uid, plan.gid) != 0 { throw JailError.failed("chown the VMM", errno: errno) }
        if !plan.newPIDNamespace { try writePIDFile(plan, pid: getpid()) }
    }

    static func writePIDFile(_ plan: JailPlan, pid: pid_t) throws {
        let path = "\(plan.jailDirectory)/\(plan.execName).pid"
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        if fd < 0 { throw JailError.failed("create \(path)", errno: errno) }
        defer { close(fd) }
        let text = "\(pid)\n"
        _ = text.withCString { write(fd, $0, strlen($0)) }
    }

    static func copyFile(_ from: String, to: String, mode: mode_t) throws {
        let src = open(from, O_RDONLY | O_CLOEXEC)
        if src < 0 { throw JailError.failed("open \(from)", errno: errno) }
        defer { close(src) }
        let dst = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        if dst < 0 { throw JailError.failed("create \(to)", errno: errno) }
        defer { close(dst) }
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = read(src, &buffer, buffer.count)
            if n < 0 { if errno == EINTR { continue }; throw JailError.failed("read \(from)", errno: errno) }
            if n == 0 { break }
            var done = 0
            while done < n {
                let w = buffer[done..<n].withUnsafeBytes { write(dst, $0.baseAddress, $0.count) }
                if w < 0 { if errno == EINTR { continue }; throw JailError.failed("write \(to)", errno: errno) }
                done += w
            }
        }
    }

    /// cgroup v2: `<cgroup2 mount>/<parent>/<id>`, controllers enabled down the path,
    /// the files written, this process moved in. v1: the same path under each named
    /// controller's hierarchy, `tasks` instead of `cgroup.procs`.
    static func joinCgroup(_ plan: JailPlan) throws {
        let mounts = (try? readText("/proc/mounts")) ?? ""
        let lines = mounts.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
        if plan.cgroupVersion == 2 {
            guard let mount = lines.first(where: { $0.count > 2 && $0[2] == "cgroup2" })?[1] else {
                throw JailError.input("--cgroup-version 2: no cgroup2 file system is mounted")
            }
            let controllers = Set(plan.cgroups.map { String($0.file.split(separator: ".")[0]) })
            var dir = mount
            for part in (plan.parentCgroup + "/" + plan.id).split(separator: "/") {
                if !controllers.isEmpty {
                    try writeText("\(dir)/cgroup.subtree_control", controllers.map { "+" + $0 }.joined(separator: " "))
                }
                dir += "/" + part
                if mkdir(dir, 0o755) != 0 && errno != EEXIST { throw JailError.failed("mkdir \(dir)", errno: errno) }
            }
            for c in plan.cgroups { try writeText("\(dir)/\(c.file)", c.value) }
            try writeText("\(dir)/cgroup.procs", "\(getpid())")
        } else {
            let byController = Dictionary(grouping: plan.cgroups) { String($0.file.split(separator: ".")[0]) }
            for (controller, settings) in byController.sorted(by: { $0.key < $1.key }) {
                guard let mount = lines.first(where: { $0.count > 3 && $0[2] == "cgroup" && $0[3].split(separator: ",").contains(Substring(controller)) })?[1] else {
                    throw JailError.input("--cgroup \(settings[0].file): no cgroup v1 hierarchy has the \(controller) controller")
                }
                var dir = mount
                for part in (plan.parentCgroup + "/" + plan.id).split(separator: "/") {
                    dir += "/" + part
                    if mkdir(dir, 0o755) != 0 && errno != EEXIST { throw JailError.failed("mkdir \(dir)", errno: errno) }
                }
                for c in settings { try writeText("\(dir)/\(c.file)", c.value) }
                try writeText("\(dir)/tasks", "\(getpid())")
            }
        }
    }

    /// New mount namespace; the root bind-mounted on itself with the VM's files and the
    /// device nodes in it; pivot_root there and detach the old root.
    static func pivotIntoRoot(_ plan: JailPlan) throws {
        func check(_ r: Int32, _ what: String) throws { if r < 0 { throw JailError.failed(what, errno: -r) } }
        try check(ckvm_unshare(CKVM_CLONE_NEWNS), "unshare(CLONE_NEWNS)")
        try check(ckvm_mount(nil, "/", nil, CKVM_MS_PRIVATE | CKVM_MS_REC, nil), "make / private")
        try check(ckvm_mount(plan.root, plan.root, nil, CKVM_MS_BIND | CKVM_MS_REC, nil), "bind \(plan.root)")
        for f in plan.files {
            let target = plan.root + f.inJail
            let fd = open(target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            if fd < 0 { throw JailError.failed("create \(target)", errno: errno) }
            close(fd)
            try check(ckvm_mount(f.host, target, nil, CKVM_MS_BIND, nil), "bind \(f.host)")
            if !f.writable {
                try check(ckvm_mount(nil, target, nil, CKVM_MS_BIND | CKVM_MS_REMOUNT | CKVM_MS_RDONLY, nil), "read-only \(target)")
            }
        }
        for dir in ["/dev", "/dev/net", "/proc"] where mkdir(plan.root + dir, 0o755) != 0 {
            throw JailError.failed("mkdir \(plan.root + dir)", errno: errno)
        }
        // A static Swift program finds its own path through /proc/self/exe at start-up.
        // hidepid=2: the user sees only its own processes.
        try check(ckvm_mount("proc", plan.root + "/proc", "proc", CKVM_MS_NOSUID | CKVM_MS_NODEV | CKVM_MS_NOEXEC, "hidepid=2"),
                  "mount /proc in the jail")
        for node in ["/dev/kvm", "/dev/net/tun"] {
            var major: UInt32 = 0, minor: UInt32 = 0
            guard ckvm_char_device_numbers(node, &major, &minor) == 0 else { continue }  // no tun: no node
            try check(ckvm_mknod_char(plan.root + node, 0o600, major, minor), "mknod \(plan.root + node)")
            if chown(plan.root + node, plan.uid, plan.gid) != 0 { throw JailError.failed("chown \(plan.root + node)", errno: errno) }
        }
        if chdir(plan.root) != 0 { throw JailError.failed("chdir \(plan.root)", errno: errno) }
        if mkdir("old_root", 0o700) != 0 { throw JailError.failed("mkdir old_root", errno: errno) }
        try check(ckvm_pivot_root(".", "old_root"), "pivot_root")
        if chdir("/") != 0 { throw JailError.failed("chdir /", errno: errno) }
        try check(ckvm_umount_detach("/old_root"), "detach the old root")
        if rmdir("/old_root") != 0 { throw JailError.failed("rmdir /old_root", errno: errno) }
    }

    static func readText(_ path: String) throws -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw JailError.failed("open \(path)", errno: errno) }
        defer { close(fd) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = read(fd, &buf, buf.count)
            if n <= 0 { break }
            out += buf[..<n]
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func writeText(_ path: String, _ text: String) throws {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        if fd < 0 { throw JailError.failed("open \(path)", errno: errno) }
        defer { close(fd) }
        let n = text.withCString { write(fd, $0, strlen($0)) }
        if n < 0 { throw JailError.failed("write \(text) to \(path)", errno: errno) }
    }
}
