/// `swiftvmm run …` parsed without swift-argument-parser, for start-up time and resident
/// memory: ArgumentParser's parse took ~1.5 ms of a ~4 ms start (it re-parses the
/// arguments as completion-script requests and reflects over every command), and the
/// code it reaches kept ~3 MiB of the binary resident (BENCHMARKS.md).
///
/// It accepts only what it can read exactly as ArgumentParser would: `run`, then
/// `--option value` / `--option=value` and the flags. Anything else — help, an unknown,
/// repeated or valueless option, a value that looks like an option or does not parse —
/// returns nil, and main falls back to ArgumentParser, which also words the errors.
enum FastRunParser {
    static func parse(_ arguments: [String]) -> PlainRunOptions? {
        guard arguments.first == "run" else { return nil }
        var o = PlainRunOptions()
        var seen = Set<String>()
        var i = 1
        while i < arguments.count {
            let word = arguments[i]
            i += 1
            guard word.hasPrefix("--"), word.count > 2 else { return nil }
            var name = String(word.dropFirst(2))
            var inlineValue: String?
            if let eq = name.firstIndex(of: "=") {
                inlineValue = String(name[name.index(after: eq)...])
                name = String(name[..<eq])
            }
            if name != "disk" {
                guard seen.insert(name).inserted else { return nil }
            }
            // Flags take no value.
            switch name {
            case "rng", "no-virtio-cmdline", "timings", "no-seccomp":
                guard inlineValue == nil else { return nil }
                switch name {
                case "rng": o.rng = true
                case "timings": o.timings = true
                case "no-seccomp": o.noSeccomp = true
                default: o.noVirtioCommandLine = true
                }
                continue
            default:
                break
            }
            let value: String
            if let v = inlineValue {
                value = v
            } else {
                guard i < arguments.count, !arguments[i].hasPrefix("-") else { return nil }
                value = arguments[i]
                i += 1
            }
            switch name {
            case "kernel": o.kernel = value
            case "initrd": o.initrd = value
            case "cmdline": o.cmdline = value
            case "memory":
                guard let m = UInt64(value) else { return nil }
                o.memory = m
            case "cpus":
                guard let n = Int(value) else { return nil }
                o.cpus = n
            case "serial": o.serial = value
            case "serial-mmio": o.serialMMIO = value
            case "elf-entry": o.elfEntry = value
            case "disk": o.disks.append(value)
            case "console": o.console = value
            case "seccomp-filter": o.seccompFilter = value
            default: return nil
            }
        }
        return o
    }
}
