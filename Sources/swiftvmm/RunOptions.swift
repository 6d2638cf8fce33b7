/// What `swiftvmm run` needs, however the command line was parsed: by `RunCommand`
/// (swift-argument-parser) or by `FastRunParser` (the start-up path).
protocol RunOptions {
    var kernel: String? { get }
    var initrd: String? { get }
    var cmdline: String? { get }
    var memory: UInt64 { get }
    var cpus: Int { get }
    var serial: String { get }
    var serialMMIO: String? { get }
    var elfEntry: String? { get }
    var disks: [String] { get }
    var rng: Bool { get }
    var console: String { get }
    var noVirtioCommandLine: Bool { get }
    var timings: Bool { get }
    var noSeccomp: Bool { get }
    var seccompFilter: String? { get }
}

/// `run`'s options as plain values. Its defaults are also `RunCommand`'s.
struct PlainRunOptions: RunOptions {
    static let defaults = PlainRunOptions()

    var kernel: String? = nil
    var initrd: String? = nil
    var cmdline: String? = nil
    var memory: UInt64 = 512
    var cpus: Int = 1
    var serial: String = "stdio"
    var serialMMIO: String? = nil
    var elfEntry: String? = nil
    var disks: [String] = []
    var rng = false
    var console: String = "serial"
    var noVirtioCommandLine = false
    var timings = false
    var noSeccomp = false
    var seccompFilter: String? = nil
}
