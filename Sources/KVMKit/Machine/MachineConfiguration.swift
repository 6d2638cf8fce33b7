import Glibc

/// What to build: composed first, validated as a whole by `Machine.init`, then started
/// (the shape of Virtualization.framework's `VZVirtualMachineConfiguration`).
public struct MachineConfiguration {
    public var kernelPath: String
    public var initrdPath: String?
    public var commandLine: String
    public var memoryMiB: UInt64
    public var cpus: Int
    /// Attach a second 16550 at this MMIO address (`earlycon=uart8250,mmio,ADDRESS`).
    public var serialMMIOAddress: UInt64?
    /// For ELF kernels: force the 64-bit or the PVH entry (nil: the loader's choice).
    public var elfEntry: ELFEntryKind?
    /// Back guest RAM with 2 MiB hugetlbfs pages (memory must be a multiple of 2 MiB).
    public var hugePages = false

    public static let defaultCommandLine = "console=ttyS0 reboot=k panic=-1"
    public static let defaultSerialMMIOAddress: UInt64 = 0xD100_0000

    public init(kernelPath: String, initrdPath: String? = nil, commandLine: String = MachineConfiguration.defaultCommandLine,
                memoryMiB: UInt64 = 512, cpus: Int = 1, serialMMIOAddress: UInt64? = nil, elfEntry: ELFEntryKind? = nil) {
        self.kernelPath = kernelPath
        self.initrdPath = initrdPath
        self.commandLine = commandLine
        self.memoryMiB = memoryMiB
        self.cpus = cpus
        self.serialMMIOAddress = serialMMIOAddress
        self.elfEntry = elfEntry
    }
}

/// A configuration the host cannot run. Shown as one line; the CLI exits 2.
public enum ConfigurationError: Error, CustomStringConvertible, Equatable {
    case cpuCount(Int, maximum: Int)
    case memoryTooLarge(mib: UInt64, hostMiB: UInt64)
    case memoryTooSmall(mib: UInt64, minimumMiB: UInt64)
    case noFreeInterrupt(device: String)
    case noFreeMMIOWindow(device: String)
    case serialMMIOAddress(UInt64)
    case file(path: String, problem: String)

    public var description: String {
        switch self {
        case .cpuCount(let n, let max): return "--cpus \(n): must be between 1 and \(max) (the KVM maximum here)"
        case .memoryTooLarge(let m, let h): return "--memory \(m) MiB: larger than this host's \(h) MiB of RAM"
        case .memoryTooSmall(let m, let min): return "--memory \(m) MiB: at least \(min) MiB are needed"
        case .noFreeInterrupt(let d): return "\(d): no free interrupt line (GSIs 5–23 are all taken)"
        case .noFreeMMIOWindow(let d): return "\(d): no free MMIO window"
        case .serialMMIOAddress(let a): return "--serial-mmio \(hex(a)): must be a 4 KiB-aligned address in 0xC0000000–0xFEBFF000 outside the virtio windows"
        case .file(let p, let what): return "\(p): \(what)"
        }
    }
}

/// Host RAM in MiB (MemTotal of /proc/meminfo, which glibc reads through sysinfo(2)
/// without parsing text), for the "larger than the host allows" check.
func hostMemoryMiB() -> UInt64 {
    let pages = sysconf(Int32(_SC_PHYS_PAGES)), pageSize = sysconf(Int32(_SC_PAGESIZE))
    guard pages > 0, pageSize > 0 else { return UInt64.max }
    return (UInt64(pages) &* UInt64(pageSize)) >> 20
}
