/// Xen's hvm_start_info (version 1, with a memory map) for the PVH entry, plus its module
/// list (the initrd) and memory map, laid out in one page at 0x7000 — boot_params' place,
/// which the PVH path does not use.
public struct PVHStartInfo {
    public static let address: UInt64 = 0x7000
    public static let modlistAddress: UInt64 = 0x7040
    public static let memmapAddress: UInt64 = 0x7080
    public static let magic: UInt32 = 0x336E_C578
    public static let version: UInt32 = 1
    /// 128 entries of 24 bytes from 0x7080 stay inside the page.
    public static let maxMemmapEntries = 128

    public var commandLineAddress: UInt64
    public var rsdpAddress: UInt64 = 0
    public var initrd: (address: UInt64, size: UInt64)?
    public var memmap: [E820Entry]

    public init(commandLineAddress: UInt64, memmap: [E820Entry]) {
        self.commandLineAddress = commandLineAddress
        self.memmap = memmap
    }

    /// The page image, to be written at `address` (offsets relative to it).
    public var bytes: [UInt8] {
        var b = [UInt8](repeating: 0, count: 4096)
        let map = Array(memmap.prefix(Self.maxMemmapEntries))
        b.put(Self.magic, at: 0)
        b.put(Self.version, at: 4)
        b.put(UInt32(0), at: 8)  // flags
        b.put(UInt32(initrd == nil ? 0 : 1), at: 12)  // nr_modules
        b.put(initrd == nil ? 0 : Self.modlistAddress, at: 16)
        b.put(commandLineAddress, at: 24)
        b.put(rsdpAddress, at: 32)
        b.put(Self.memmapAddress, at: 40)
        b.put(UInt32(map.count), at: 48)
        if let m = initrd {
            // struct hvm_modlist_entry { paddr, size, cmdline_paddr, reserved }
            let at = Int(Self.modlistAddress - Self.address)
            b.put(m.address, at: at)
            b.put(m.size, at: at + 8)
        }
        for (i, e) in map.enumerated() {
            // struct hvm_memmap_table_entry { addr, size, type, reserved }
            let at = Int(Self.memmapAddress - Self.address) + i * 24
            b.put(e.address, at: at)
            b.put(e.size, at: at + 8)
            b.put(e.type.rawValue, at: at + 16)
        }
        return b
    }
}
