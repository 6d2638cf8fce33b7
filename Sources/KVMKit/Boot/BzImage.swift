/// A bzImage whose setup header (Documentation/x86/boot.rst) has been validated for the
/// 64-bit boot protocol. Holds the whole file; `payload` is the protected-mode kernel.
public struct BzImage {
    /// Offsets into the file (== offsets into boot_params for the header part).
    public enum Offset {
        public static let setupSects = 0x1f1
        public static let syssize = 0x1f4
        public static let bootFlag = 0x1fe
        public static let jump = 0x200
        public static let header = 0x202
        public static let version = 0x206
        public static let typeOfLoader = 0x210
        public static let loadflags = 0x211
        public static let code32Start = 0x214
        public static let ramdiskImage = 0x218
        public static let ramdiskSize = 0x21c
        public static let heapEndPtr = 0x224
        public static let cmdLinePtr = 0x228
        public static let initrdAddrMax = 0x22c
        public static let kernelAlignment = 0x230
        public static let relocatableKernel = 0x234
        public static let minAlignment = 0x235
        public static let xloadflags = 0x236
        public static let cmdlineSize = 0x238
        public static let payloadOffset = 0x248
        public static let payloadLength = 0x24c
        public static let prefAddress = 0x258
        public static let initSize = 0x260
    }

    public static let magic: UInt32 = 0x5372_6448  // "HdrS"
    public static let minimumVersion: UInt16 = 0x0206
    /// xloadflags bits.
    public static let xlfKernel64: UInt16 = 1 << 0
    public static let xlfCanBeLoadedAbove4G: UInt16 = 1 << 1
    /// loadflags bits.
    public static let loadedHigh: UInt8 = 1 << 0
    public static let canUseHeap: UInt8 = 1 << 7

    public let path: String
    public let bytes: [UInt8]
    /// setup_sects with the historical 0 → 4 rule applied.
    public let setupSectors: Int
    public let version: UInt16
    public let loadflags: UInt8
    public let xloadflags: UInt16
    public let kernelAlignment: UInt32
    public let relocatable: Bool
    public let cmdlineSize: UInt32
    /// Highest byte address the initrd may occupy (inclusive, as the protocol defines it).
    public let initrdAddrMax: UInt32
    /// 0 when the protocol is older than 2.10.
    public let prefAddress: UInt64
    /// Memory the kernel needs from its load address while it decompresses and starts.
    public let initSize: UInt32
    /// File offset and size of the protected-mode kernel (loaded at the load address).
    public let payloadOffset: Int
    public let payloadSize: Int
    /// End of the setup header in the file: 0x202 + byte at 0x201.
    public let headerEnd: Int

    /// The protected-mode kernel, which the loader copies into guest memory.
    public var payload: ArraySlice<UInt8> { bytes[payloadOffset..<(payloadOffset + payloadSize)] }
    /// Setup header bytes as the boot protocol says to copy them into boot_params.
    public var setupHeader: ArraySlice<UInt8> { bytes[Offset.setupSects..<headerEnd] }
    public var canBeLoadedAbove4G: Bool { xloadflags & Self.xlfCanBeLoadedAbove4G != 0 }

    public init(bytes: [UInt8], path: String) throws {
        func fail(_ p: BootError.Problem) -> BootError { BootError(path: path, p) }
        let r = ByteReader(bytes: bytes)
        let fileSize = UInt64(bytes.count)
        guard let magic = r.u32(Offset.header), magic == Self.magic else { throw fail(.notAKernel) }
        guard let version = r.u16(Offset.version), let sects = r.u8(Offset.setupSects),
              let jumpHigh = r.u8(Offset.jump + 1)
        else { throw fail(.notAKernel) }
        if version < Self.minimumVersion { throw fail(.protocolTooOld(version: version)) }

        let setupSectors = sects == 0 ? 4 : Int(sects)
        let payloadOffset = (setupSectors + 1) * 512
        // The header's last field we read is init_size (2.10+); demand the whole setup.
        if bytes.count < payloadOffset {
            throw fail(.truncatedBzImage(fileSize: fileSize, needed: UInt64(payloadOffset),
                                         what: "the setup code (\(setupSectors)+1 sectors)"))
        }
        let headerEnd = 0x202 + Int(jumpHigh)
        if headerEnd > payloadOffset || headerEnd < Offset.cmdlineSize + 4 {
            throw fail(.badHeader("setup header ends at \(hex(headerEnd)), outside the setup code"))
        }
        let syssize = UInt64(r.u32(Offset.syssize) ?? 0)
        let claimed = UInt64(payloadOffset) + syssize * 16
        if syssize == 0 { throw fail(.badHeader("syssize is 0 (no protected-mode kernel)")) }
        // Linux's build tool rounds syssize up to whole paragraphs, so the last one may
        // be partial: up to 15 bytes short is not truncation.
        if fileSize + 15 < claimed {
            throw fail(.truncatedBzImage(fileSize: fileSize, needed: claimed,
                                         what: "the header (syssize \(hex(syssize)) paragraphs)"))
        }
        let xloadflags = version >= 0x020c ? (r.u16(Offset.xloadflags) ?? 0) : 0
        if xloadflags & Self.xlfKernel64 == 0 { throw fail(.no64BitEntry) }

        let alignment = r.u32(Offset.kernelAlignment) ?? 0
        if alignment != 0 && alignment & (alignment - 1) != 0 {
            throw fail(.badHeader("kernel_alignment \(hex(alignment)) is not a power of two"))
        }
        let cmdlineSize = r.u32(Offset.cmdlineSize) ?? 0
        if cmdlineSize == 0 { throw fail(.badHeader("cmdline_size is 0")) }

        self.path = path
        self.bytes = bytes
        self.setupSectors = setupSectors
        self.version = version
        self.loadflags = r.u8(Offset.loadflags) ?? 0
        self.xloadflags = xloadflags
        self.kernelAlignment = alignment
        self.relocatable = (r.u8(Offset.relocatableKernel) ?? 0) != 0
        self.cmdlineSize = cmdlineSize
        self.initrdAddrMax = r.u32(Offset.initrdAddrMax) ?? 0x37ff_ffff
        self.prefAddress = version >= 0x020a && headerEnd >= Offset.prefAddress + 8 ? (r.u64(Offset.prefAddress) ?? 0) : 0
        self.initSize = version >= 0x020a && headerEnd >= Offset.initSize + 4 ? (r.u32(Offset.initSize) ?? 0) : 0
        self.payloadOffset = payloadOffset
        // Load what the header claims; trailing bytes (signatures, padding) are not kernel.
        self.payloadSize = Int(min(syssize * 16, fileSize - UInt64(payloadOffset)))
        self.headerEnd = headerEnd
    }

    /// Whether these bytes look like a bzImage (used to pick a parser).
    public static func hasMagic(_ bytes: [UInt8]) -> Bool {
        ByteReader(bytes: bytes).u32(Offset.header) == magic
    }
}
