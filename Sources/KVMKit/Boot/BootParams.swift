/// struct boot_params (the "zero page", Documentation/x86/zero-page.rst) as a 4 KiB byte
/// image. The loader fills it and copies it to `LinuxLoader.bootParamsAddress`.
public struct BootParams {
    public static let size = 4096

    public enum Offset {
        public static let acpiRSDPAddress = 0x070
        public static let extRamdiskImage = 0x0C0
        public static let extRamdiskSize = 0x0C4
        public static let extCmdLinePtr = 0x0C8
        public static let e820Entries = 0x1E8
        public static let setupHeader = 0x1F1
        public static let e820Table = 0x2D0
    }

    /// Values the loader writes into the header for an ELF kernel, which has no header of
    /// its own: 2.15 is the protocol the fields below exist in.
    public static let elfProtocolVersion: UInt16 = 0x020F
    public static let bootFlag: UInt16 = 0xAA55
    /// "undefined" boot loader ID: swiftvmm has no assigned one.
    public static let typeOfLoader: UInt8 = 0xFF
    /// x86's COMMAND_LINE_SIZE, the limit for a kernel that does not state cmdline_size.
    public static let defaultCmdlineSize: UInt32 = 2048
    /// Linux x86-64's own initrd_addr_max.
    public static let defaultInitrdAddrMax: UInt32 = 0x7FFF_FFFF
    static let elfKernelAlignment: UInt32 = 0x0100_0000

    public private(set) var bytes = [UInt8](repeating: 0, count: size)

    public init() {}

    /// Zero page for a bzImage: the image's setup header copied in as the protocol says
    /// (0x1F1 up to 0x202 + byte at 0x201), then the loader's obligatory fields.
    public init(header image: BzImage) {
        let header = Array(image.setupHeader)
        bytes.replaceSubrange(Offset.setupHeader..<(Offset.setupHeader + header.count), with: header)
        set(Self.typeOfLoader, at: BzImage.Offset.typeOfLoader)
        // Heap use only matters to the real-mode setup code, which the 64-bit entry skips;
        // QEMU sets it anyway and so do we (heap_end_ptr = 0xFE00 - 0x200).
        let flags = image.loadflags | BzImage.loadedHigh | BzImage.canUseHeap
        set(flags, at: BzImage.Offset.loadflags)
        set(UInt16(0xFE00 - 0x200), at: BzImage.Offset.heapEndPtr)
    }

    /// Zero page for an ELF vmlinux entered at startup_64: the header fields Linux reads.
    public static func forELF() -> BootParams {
        var p = BootParams()
        p.set(bootFlag, at: BzImage.Offset.bootFlag)
        p.set(BzImage.magic, at: BzImage.Offset.header)
        p.set(elfProtocolVersion, at: BzImage.Offset.version)
        p.set(typeOfLoader, at: BzImage.Offset.typeOfLoader)
        p.set(BzImage.loadedHigh, at: BzImage.Offset.loadflags)
        p.set(elfKernelAlignment, at: BzImage.Offset.kernelAlignment)
        p.set(defaultCmdlineSize, at: BzImage.Offset.cmdlineSize)
        p.set(defaultInitrdAddrMax, at: BzImage.Offset.initrdAddrMax)
        return p
    }

    public mutating func set<T: FixedWidthInteger>(_ value: T, at offset: Int) { bytes.put(value, at: offset) }

    public func get<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T {
        ByteReader(bytes: bytes).int(offset, T.self) ?? 0
    }

    public mutating func setCommandLine(address: UInt64) {
        set(UInt32(truncatingIfNeeded: address), at: BzImage.Offset.cmdLinePtr)
        set(UInt32(truncatingIfNeeded: address >> 32), at: Offset.extCmdLinePtr)
    }

    public mutating func setRamdisk(address: UInt64, size: UInt64) {
        set(UInt32(truncatingIfNeeded: address), at: BzImage.Offset.ramdiskImage)
        set(UInt32(truncatingIfNeeded: size), at: BzImage.Offset.ramdiskSize)
        set(UInt32(truncatingIfNeeded: address >> 32), at: Offset.extRamdiskImage)
        set(UInt32(truncatingIfNeeded: size >> 32), at: Offset.extRamdiskSize)
    }

    /// Where the protected-mode kernel was put (code32_start; read by relocating loaders).
    public mutating func setCode32Start(_ address: UInt64) {
        set(UInt32(truncatingIfNeeded: address), at: BzImage.Offset.code32Start)
    }

    /// At most 128 entries fit; more are dropped (swiftvmm's layouts have five).
    public mutating func setE820(_ map: [E820Entry]) {
        let used = Array(map.prefix(E820Entry.maxInZeroPage))
        set(UInt8(used.count), at: Offset.e820Entries)
        for (i, e) in used.enumerated() {
            let at = Offset.e820Table + i * E820Entry.byteSize
            set(e.address, at: at)
            set(e.size, at: at + 8)
            set(e.type.rawValue, at: at + 16)
        }
    }

    public mutating func setACPIRSDP(_ address: UInt64) { set(address, at: Offset.acpiRSDPAddress) }
}
