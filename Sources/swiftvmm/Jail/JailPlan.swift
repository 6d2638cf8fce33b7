import Glibc
import KVMKit

/// Why `swiftvmm jail` refused its input (exit 2, nothing created) or could not build the
/// jail (exit 1).
struct JailError: Error, CustomStringConvertible {
    let description: String
    let badInput: Bool
    static func input(_ s: String) -> JailError { JailError(description: s, badInput: true) }
    static func failed(_ s: String, errno e: Int32) -> JailError { JailError(description: "\(s): \(errnoText(e))", badInput: false) }
}

/// A validated jail: every check on the user's input happens here, before anything is
/// created (pure apart from stat/read of the named files).
struct JailPlan {
    var id: String
    var execFile: String
    var execName: String
    var uid: uid_t
    var gid: gid_t
    var chrootBase: String
    var netns: String?
    var cgroupVersion: Int
    var parentCgroup: String
    var cgroups: [(file: String, value: String)]
    var resourceLimits: [(resource: Int32, name: String, value: UInt64)]
    var daemonize: Bool
    var newPIDNamespace: Bool
    /// The VMM's arguments with host file paths replaced by their place in the jail.
    var vmmArguments: [String]
    /// Host files bind-mounted into the jail: (host path, path inside the jail, writable).
    var files: [(host: String, inJail: String, writable: Bool)]

    var jailDirectory: String { "\(chrootBase)/\(execName)/\(id)" }
    var root: String { "\(jailDirectory)/root" }

    static let resourceNames: [String: Int32] = ["fsize": Int32(RLIMIT_FSIZE.rawValue), "no-file": Int32(RLIMIT_NOFILE.rawValue)]

    init(id: String, execFile: String, uid: String, gid: String, chrootBase: String, netns: String?,
         cgroups: [String], cgroupVersion: String, parentCgroup: String?, resourceLimits: [String],
         daemonize: Bool, newPIDNamespace: Bool, vmmArguments: [String]) throws {
        // Firecracker's rule: alphanumerics and hyphens, 1 to 64 characters.
        guard (1...64).contains(id.utf8.count), id.utf8.allSatisfy({ isalnum(Int32($0)) != 0 || $0 == UInt8(ascii: "-") }) else {
            throw JailError.input("--id \(id): use 1 to 64 letters, digits and hyphens")
        }
        self.id = id
        guard let u = UInt32(uid), u != UInt32.max else { throw JailError.input("--uid \(uid): not a numeric user id") }
        guard let g = UInt32(gid), g != UInt32.max else { throw JailError.input("--gid \(gid): not a numeric group id") }
        self.uid = u
        self.gid = g
        guard chrootBase.hasPrefix("/"), !chrootBase.split(separator: "/").contains("..") else {
            throw JailError.input("--chroot-base-dir \(chrootBase): must be an absolute path without ..")
        }
        self.chrootBase = chrootBase.count > 1 && chrootBase.hasSuffix("/") ? String(chrootBase.dropLast()) : chrootBase
        var st = stat()
        guard stat(execFile, &st) == 0 else { throw JailError.input("--exec-file \(execFile): \(errnoText(errno))") }
        guard st.st_mode & S_IFMT == S_IFREG else { throw JailError.input("--exec-file \(execFile): not a regular file") }
        if try Self.isDynamicallyLinked(execFile) {
            throw JailError.input("--exec-file \(execFile): dynamically linked; the jail holds no libraries (build it with make build)")
        }
        self.execFile = execFile
        execName = String(execFile.split(separator: "/").last ?? "")
        if let n = netns, access(n, R_OK) != 0 { throw JailError.input("--netns \(n): \(errnoText(errno))") }
        self.netns = netns
        guard let version = Int(cgroupVersion), version == 1 || version == 2 else {
            throw JailError.input("--cgroup-version \(cgroupVersion): use 1 or 2")
        }
        self.cgroupVersion = version
        let parent = parentCgroup ?? execName
        guard !parent.isEmpty, parent.split(separator: "/").allSatisfy({ $0 != ".." && $0 != "." }), !parent.hasPrefix("/") else {
            throw JailError.input("--parent-cgroup \(parent): a relative path without . or ..")
        }
        self.parentCgroup = parent
        self.cgroups = try cgroups.map { c in
            let parts = c.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, !parts[1].isEmpty, !parts[1].contains("\n"),
                  parts[0].split(separator: ".").count >= 2, !parts[0].contains("/"), !parts[0].hasPrefix(".") else {
                throw JailError.input("--cgroup \(c): use CONTROLLER.FILE=VALUE, e.g. memory.max=268435456")
            }
            return (parts[0], parts[1])
        }
        self.resourceLimits = try resourceLimits.map { r in
            let parts = r.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, let resource = Self.resourceNames[parts[0]], let value = UInt64(parts[1]) else {
                throw JailError.input("--resource-limit \(r): use fsize=BYTES or no-file=COUNT")
            }
            return (resource, parts[0], value)
        }
        self.daemonize = daemonize
        self.newPIDNamespace = newPIDNamespace
        (self.vmmArguments, self.files) = try Self.placeFiles(vmmArguments, execName: execName)
    }

    /// An ELF with a PT_INTERP program header needs a loader and libraries.
    static func isDynamicallyLinked(_ path: String) throws -> Bool {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw JailError.input("--exec-file \(path): \(errnoText(errno))") }
        defer { close(fd) }
        var header = [UInt8](repeating: 0, count: 64)
        guard pread(fd, &header, 64, 0) == 64, header[0..<4] == [0x7f, 0x45, 0x4c, 0x46], header[4] == 2 else {
            throw JailError.input("--exec-file \(path): not an ELF64 executable")
        }
        func u(_ b: [UInt8], _ at: Int, _ n: Int) -> Int { (0..<n).reduce(0) { $0 | Int(b[at + $1]) << (8 * $1) } }
        let (phoff, phentsize, phnum) = (u(header, 32, 8), u(header, 54, 2), u(header, 56, 2))
        guard phentsize >= 56, phnum < 256, phoff < 1 << 30 else { throw JailError.input("--exec-file \(path): bad program headers") }
        var table = [UInt8](repeating: 0, count: phentsize * phnum)
        guard pread(fd, &table, table.count, off_t(phoff)) == table.count else { throw JailError.input("--exec-file \(path): short program headers") }
        return (0..<phnum).contains { u(table, $0 * phentsize, 4) == 3 }  // PT_INTERP
    }

    /// The files `swiftvmm run` reads (--kernel, --initrd, --disk, --seccomp-filter) are
    /// bind-mounted into the jail's root under their file names; the arguments name them
    /// there. Disks stay writable unless `,ro`.
    static func placeFiles(_ args: [String], execName: String) throws -> ([String], [(host: String, inJail: String, writable: Bool)]) {
        var out: [String] = []
        var files: [(host: String, inJail: String, writable: Bool)] = []
        var used: Set<String> = [execName, "dev"]
        func place(_ host: String, writable: Bool) throws -> String {
            guard access(host, R_OK) == 0 else { throw JailError.input("\(host): \(errnoText(errno))") }
            var name = String(host.split(separator: "/").last ?? "file")
            var n = 1
            while used.contains(name) { n += 1; name = "\(n)-" + (host.split(separator: "/").last.map(String.init) ?? "file") }
            used.insert(name)
            files.append((host, "/" + name, writable))
            return "/" + name
        }
        var i = 0
        while i < args.count {
            var word = args[i]
            i += 1
            var inline: String?
            if word.hasPrefix("--"), let eq = word.firstIndex(of: "=") {
                inline = String(word[word.index(after: eq)...])
                word = String(word[..<eq])
            }
            guard ["--kernel", "--initrd", "--disk", "--seccomp-filter"].contains(word) else { out.append(args[i - 1]); continue }
            guard let value = inline ?? (i < args.count ? args[i] : nil) else { out.append(word); continue }
            if inline == nil { i += 1 }
            if word == "--disk" {
                let parts = value.split(separator: ",", maxSplits: 1).map(String.init)
                let readOnly = parts.count > 1 && parts[1].split(separator: ",").contains("ro")
                let placed = try place(parts[0], writable: !readOnly)
                out += [word, parts.count > 1 ? "\(placed),\(parts[1])" : placed]
            } else {
                out += [word, try place(value, writable: false)]
            }
        }
        return (out, files)
    }
}
