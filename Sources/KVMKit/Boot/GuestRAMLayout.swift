/// Where guest RAM goes for a given size (docs/machine.md): low RAM from 0 up to 3 GiB at
/// most, the rest from 4 GiB, keeping 3–4 GiB free for MMIO. Pure; the machine maps
/// `regions` and the loader reports `e820`.
public struct GuestRAMLayout: Equatable {
    public static let lowRAMLimit: UInt64 = 0xC000_0000
    public static let highRAMStart: UInt64 = 0x1_0000_0000
    /// Enough for the low 1 MiB (boot structures, firmware tables) and a little above.
    public static let minimumBytes: UInt64 = 2 << 20
    /// KVM_SET_TSS_ADDR (three pages) and KVM_SET_IDENTITY_MAP_ADDR (one page) for Intel
    /// VMX, in the hole below 4 GiB clear of the IOAPIC and LAPIC windows (QEMU's choice).
    public static let tssAddress: UInt64 = 0xFFFB_D000
    public static let identityMapAddress: UInt64 = 0xFFFB_C000

    public let totalBytes: UInt64
    /// RAM regions to map: (guest address, size).
    public let regions: [(guestAddress: UInt64, size: UInt64)]

    /// End of the RAM that starts at 0 (exclusive).
    public var lowRAMEnd: UInt64 { regions[0].size }
    /// The RAM above 4 GiB, if any.
    public var highRAM: (guestAddress: UInt64, size: UInt64)? { regions.count > 1 ? regions[1] : nil }

    public enum LayoutError: Error, Equatable, CustomStringConvertible {
        case tooSmall(mib: UInt64)
        case tooLarge(mib: UInt64)
        public var description: String {
            switch self {
            case .tooSmall(let m): return "memory size \(m) MiB is too small (at least \(GuestRAMLayout.minimumBytes >> 20) MiB)"
            case .tooLarge(let m): return "memory size \(m) MiB is larger than a guest address space can hold"
            }
        }
    }

    public init(memoryMiB: UInt64) throws {
        // 46 bits of guest-physical addresses is well below every x86-64 CPU's limit.
        guard memoryMiB < (1 << 26) else { throw LayoutError.tooLarge(mib: memoryMiB) }
        let bytes = memoryMiB << 20
        guard bytes >= Self.minimumBytes else { throw LayoutError.tooSmall(mib: memoryMiB) }
        totalBytes = bytes
        let low = min(bytes, Self.lowRAMLimit)
        var r: [(guestAddress: UInt64, size: UInt64)] = [(0, low)]
        if bytes > low { r.append((Self.highRAMStart, bytes - low)) }
        regions = r
    }

    public static func == (a: GuestRAMLayout, b: GuestRAMLayout) -> Bool { a.totalBytes == b.totalBytes }

    /// The e820 map the guest sees. The legacy hole 0xA0000–0xE0000 is absent (not RAM);
    /// the MP table and ACPI areas are reserved so Linux leaves them alone.
    public var e820: [E820Entry] {
        var map: [E820Entry] = [
            E820Entry(address: 0, size: E820Entry.mpTableStart, type: .ram),
            E820Entry(address: E820Entry.mpTableStart, size: 0xA0000 - E820Entry.mpTableStart, type: .reserved),
            E820Entry(address: 0xE0000, size: 0x100000 - 0xE0000, type: .reserved),
        ]
        if lowRAMEnd > 0x100000 { map.append(E820Entry(address: 0x100000, size: lowRAMEnd - 0x100000, type: .ram)) }
        if let high = highRAM { map.append(E820Entry(address: high.guestAddress, size: high.size, type: .ram)) }
        return map
    }
}

/// One e820 entry: struct boot_e820_entry { u64 addr; u64 size; u32 type } (packed, 20 bytes).
public struct E820Entry: Equatable {
    public enum Kind: UInt32 {
        case ram = 1
        case reserved = 2
        case acpi = 3
        case nvs = 4
        case unusable = 5
    }

    public static let mpTableStart: UInt64 = 0x9FC00
    public static let byteSize = 20
    /// boot_params holds at most this many (E820_MAX_ENTRIES_ZEROPAGE).
    public static let maxInZeroPage = 128

    public var address: UInt64
    public var size: UInt64
    public var type: Kind

    public init(address: UInt64, size: UInt64, type: Kind) {
        self.address = address
        self.size = size
        self.type = type
    }
}
