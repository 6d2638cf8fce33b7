import Glibc
import VMMCore

/// Firecracker's own command line, so a tool that starts `firecracker --api-sock PATH …`
/// can start swiftvmm instead by changing only the binary path (or through a link named
/// `firecracker`). Its flags, as Firecracker documents them:
///
///     --api-sock PATH  --config-file PATH  --id ID  --no-api  --log-path PATH  --level L
///     --show-level  --show-log-origin  --module M  --metrics-path PATH  --no-seccomp
///     --seccomp-filter PATH  --boot-timer  --start-time-us N  --start-time-cpu-us N
///     --parent-cpu-time-us N  --http-api-max-payload-size N  --mmds-size-limit N  --version
enum FirecrackerCommandLine {
    /// Firecracker's default socket when neither `--api-sock` nor `--no-api` is given.
    static let defaultAPISocket = "/run/firecracker.socket"

    /// True when these arguments are Firecracker's: invoked as `firecracker`, or the first
    /// argument is one of its flags rather than a swiftvmm subcommand.
    static func applies(program: String, arguments: [String]) -> Bool {
        if program.split(separator: "/").last == "firecracker" { return true }
        guard let first = arguments.first else { return false }
        let name = first.split(separator: "=", maxSplits: 1).first.map(String.init) ?? first
        return valueFlags.contains(name) || plainFlags.contains(name)
    }

    static let valueFlags: Set<String> = ["--api-sock", "--config-file", "--id", "--log-path", "--level", "--module",
                                          "--metrics-path", "--seccomp-filter", "--start-time-us", "--start-time-cpu-us",
                                          "--parent-cpu-time-us", "--http-api-max-payload-size", "--mmds-size-limit"]
    static let plainFlags: Set<String> = ["--no-api", "--show-level", "--show-log-origin", "--no-seccomp", "--boot-timer",
                                          "--version", "--help"]

    enum Parsed {
        case run(ManagedRun)
        case version
        case help
    }

    static func parse(_ arguments: [String]) throws -> Parsed {
        var m = ManagedRun()
        var apiSocket: String? = defaultAPISocket
        var noAPI = false
        var noSeccomp = false
        var seccompFilter: String?
        var i = 0
        var seen = Set<String>()
        while i < arguments.count {
            var name = arguments[i]
            var value: String?
            if let eq = name.firstIndex(of: "="), name.hasPrefix("--") {
                value = String(name[name.index(after: eq)...])
                name = String(name[..<eq])
            }
            i += 1
            guard valueFlags.contains(name) || plainFlags.contains(name) else {
                throw ValidationError("\(name): not a Firecracker option (see swiftvmm --help)")
            }
            guard seen.insert(name).inserted else { throw ValidationError("\(name) given twice") }
            if plainFlags.contains(name) {
                guard value == nil else { throw ValidationError("\(name) takes no value") }
                switch name {
                case "--version": return .version
                case "--help": return .help
                case "--no-api": noAPI = true
                case "--show-level": m.showLevel = true
                case "--show-log-origin": m.showLogOrigin = true
                case "--no-seccomp": noSeccomp = true
                case "--boot-timer":
                    // Firecracker's boot-timer device is not built: say so rather than
                    // let a tool believe it will get a boot-time log line.
                    warn("--boot-timer: this build has no boot-timer device; the flag changes nothing")
                default: break
                }
                continue
            }
            if value == nil {
                guard i < arguments.count else { throw ValidationError("\(name) needs a value") }
                value = arguments[i]
                i += 1
            }
            let v = value!
            switch name {
            case "--api-sock": apiSocket = v
            case "--config-file": m.configFile = v
            case "--id":
                guard isValidID(v) else { throw ValidationError("--id \(v): use 1-64 letters, digits and '-'") }
                m.id = v
            case "--log-path": m.logPath = v
            case "--level":
                guard let l = VMMLogger.Level(name: v) else { throw ValidationError("--level \(v): use Error, Warning, Info, Debug, Trace or Off") }
                m.level = l
            case "--metrics-path": m.metricsPath = v
            case "--seccomp-filter": seccompFilter = v
            default:
                // Timestamps for Firecracker's own start-up metrics and MMDS/payload sizes:
                // numbers that change nothing here, still checked.
                if name != "--module" && UInt64(v) == nil { throw ValidationError("\(name) \(v): not a number") }
            }
        }
        if noAPI {
            guard m.configFile != nil else { throw ValidationError("--no-api needs --config-file (nothing could start the VM)") }
            apiSocket = nil
        }
        m.apiSocket = apiSocket
        m.seccomp = try SeccompOptions(noSeccomp: noSeccomp, filterPath: seccompFilter).policy()
        return .run(m)
    }

    /// Firecracker's instance id rule: 1–64 alphanumerics and hyphens.
    static func isValidID(_ id: String) -> Bool {
        !id.isEmpty && id.utf8.count <= 64 && id.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122) || $0 == 45 }
    }

    static let help = """
        usage: swiftvmm --api-sock PATH [--config-file FILE] [--id ID] [--no-api]
                        [--log-path PATH] [--level LEVEL] [--show-level] [--show-log-origin]
                        [--metrics-path PATH] [--no-seccomp | --seccomp-filter FILE] [--boot-timer]

        Firecracker's command line: serve Firecracker's REST API on a Unix socket and run the
        microVM it configures (or the one --config-file describes). Also works when swiftvmm
        is invoked through a link named `firecracker`. swiftvmm's own commands: swiftvmm --help.
        """
}
