import KVMKit

/// Everything a managed VM is built from, composed before `MicroVM.start` and validated
/// as a whole there. Field names follow Firecracker's configuration (the API and
/// `--config-file` map onto this one-to-one); the console fields are swiftvmm's own.
public struct VMConfiguration: Equatable, Sendable {
    public struct BootSource: Equatable, Sendable {
        public var kernelPath: String
        public var initrdPath: String?
        /// nil: `MachineConfiguration.defaultCommandLine`.
        public var bootArgs: String?
        /// For ELF kernels: force the 64-bit or the PVH entry.
        public var elfEntry: ELFEntryKind?
        public init(kernelPath: String, initrdPath: String? = nil, bootArgs: String? = nil, elfEntry: ELFEntryKind? = nil) {
            self.kernelPath = kernelPath; self.initrdPath = initrdPath; self.bootArgs = bootArgs; self.elfEntry = elfEntry
        }
    }

    public enum HugePages: String, Equatable, Sendable { case none = "None", twoMiB = "2M" }

    public struct MachineSettings: Equatable, Sendable {
        public var vcpuCount = 1
        public var memSizeMiB: UInt64 = 128
        public var smt = false
        public var trackDirtyPages = false
        public var hugePages = HugePages.none
        public init(vcpuCount: Int = 1, memSizeMiB: UInt64 = 128, smt: Bool = false, trackDirtyPages: Bool = false,
                    hugePages: HugePages = .none) {
            self.vcpuCount = vcpuCount; self.memSizeMiB = memSizeMiB; self.smt = smt
            self.trackDirtyPages = trackDirtyPages; self.hugePages = hugePages
        }
    }

    public enum CacheType: String, Equatable, Sendable { case unsafe = "Unsafe", writeback = "Writeback" }

    public struct Drive: Equatable, Sendable {
        public var id: String
        public var path: String
        public var readOnly = false
        public var isRootDevice = false
        public var partUUID: String?
        /// Unsafe: guest flushes are acknowledged without reaching the disk (Firecracker's
        /// default); Writeback: a flush is an fdatasync.
        public var cacheType = CacheType.unsafe
        public init(id: String, path: String, readOnly: Bool = false, isRootDevice: Bool = false,
                    partUUID: String? = nil, cacheType: CacheType = .unsafe) {
            self.id = id; self.path = path; self.readOnly = readOnly; self.isRootDevice = isRootDevice
            self.partUUID = partUUID; self.cacheType = cacheType
        }
    }

    /// Which guest device the host console is connected to.
    public enum ConsoleDevice: String, Equatable, Sendable { case serial, hvc }

    public struct Console: Equatable, Sendable {
        public var mode = ConsoleMode.stdio
        public var device = ConsoleDevice.serial
        /// A second 16550 in an MMIO window (earlycon).
        public var serialMMIOAddress: UInt64?
        public init(mode: ConsoleMode = .stdio, device: ConsoleDevice = .serial, serialMMIOAddress: UInt64? = nil) {
            self.mode = mode; self.device = device; self.serialMMIOAddress = serialMMIOAddress
        }
    }

    public var bootSource: BootSource?
    public var machine = MachineSettings()
    public var drives: [Drive] = []
    public var entropy = false
    public var console = Console()
    /// Append `virtio_mmio.device=` entries to the command line (kernels without ACPI).
    public var virtioCommandLine = true

    public init() {}

    /// Drives in device order: the root device first (it is /dev/vda), then the others in
    /// the order they were added.
    public var drivesInDeviceOrder: [Drive] { drives.filter(\.isRootDevice) + drives.filter { !$0.isRootDevice } }

    /// The kernel command line: the boot arguments plus, for a root device, `root=` and
    /// `ro`/`rw` as Firecracker adds them.
    public var kernelCommandLine: String {
        var line = bootSource?.bootArgs ?? MachineConfiguration.defaultCommandLine
        if let root = drives.first(where: \.isRootDevice) {
            line += (root.partUUID.map { " root=PARTUUID=\($0)" } ?? " root=/dev/vda") + (root.readOnly ? " ro" : " rw")
        }
        return line
    }

    /// Add or replace (same id) a drive; at most one root device.
    public mutating func upsertDrive(_ d: Drive) throws {
        guard !d.id.isEmpty else { throw VMError.invalidConfiguration("drive_id must not be empty") }
        if d.isRootDevice, let other = drives.first(where: { $0.isRootDevice && $0.id != d.id }) {
            throw VMError.invalidConfiguration("drive \(d.id): a root device is already configured (\(other.id))")
        }
        if let i = drives.firstIndex(where: { $0.id == d.id }) { drives[i] = d } else { drives.append(d) }
    }
}
