/// An ELF64 x86-64 `vmlinux`: its loadable segments placed by physical address, the
/// 64-bit entry (translated to a physical address) and, when the kernel has one, the PVH
/// 32-bit entry from its Xen ELF note.
public struct ELFKernel {
    public struct Segment: Equatable {
        public let fileOffset: UInt64
        public let fileSize: UInt64
        /// Guest-physical load address (p_paddr).
        public let physicalAddress: UInt64
        public let virtualAddress: UInt64
        /// Bytes in memory; those past fileSize are zeroed (bss).
        public let memorySize: UInt64
    }

    static let ptLoad: UInt32 = 1
    static let ptNote: UInt32 = 4
    /// XEN_ELFNOTE_PHYS32_ENTRY: the PVH entry point, 32-bit protected mode, paging off.
    static let xenElfnotePhys32Entry: UInt32 = 18

    public let path: String
    public let bytes: [UInt8]
    public let segments: [Segment]
    /// e_entry as a guest-physical address (Linux's startup_64 for a vmlinux).
    public let entry: UInt64
    /// The PVH entry (physical), if the kernel carries XEN_ELFNOTE_PHYS32_ENTRY.
    public let pvhEntry: UInt32?

    /// Lowest and end of the physical range the segments occupy.
    public var physicalStart: UInt64 { segments.map(\.physicalAddress).min() ?? 0 }
    public var physicalEnd: UInt64 { segments.map { $0.physicalAddress + $0.memorySize }.max() ?? 0 }

    /// Whether the 64-bit entry can be used with swiftvmm's boot page tables: the entry
    /// and every segment lie in the identity-mapped first 4 GiB. The default entry for an
    /// ELF kernel is 64-bit when this holds; PVH otherwise (or when the caller asks).
    public var entry64Usable: Bool { physicalEnd <= BootPageTables.identityMappedBytes && entry < physicalEnd }

    public static func hasMagic(_ bytes: [UInt8]) -> Bool {
        bytes.count >= 4 && bytes[0] == 0x7f && bytes[1] == 0x45 && bytes[2] == 0x4c && bytes[3] == 0x46
    }

    public init(bytes: [UInt8], path: String) throws {
        func bad(_ s: String) -> BootError { BootError(path: path, .badELF(s)) }
        let r = ByteReader(bytes: bytes)
        guard Self.hasMagic(bytes), bytes.count >= 64 else { throw bad("no ELF header") }
        guard bytes[4] == 2 else { throw bad("not ELF64") }
        guard bytes[5] == 1 else { throw bad("not little-endian") }
        guard let type = r.u16(16), type == 2 || type == 3 else { throw bad("not an executable") }
        guard let machine = r.u16(18), machine == 62 else { throw bad("machine is not x86-64") }
        guard let eEntry = r.u64(24), let phoff = r.u64(32), let phentsize = r.u16(54), let phnum = r.u16(56)
        else { throw bad("short ELF header") }
        guard phnum > 0 else { throw bad("no program headers") }
        guard phentsize >= 56 else { throw bad("program header size \(phentsize) is too small") }
        let tableEnd = phoff.addingReportingOverflow(UInt64(phnum) * UInt64(phentsize))
        guard !tableEnd.overflow, tableEnd.partialValue <= UInt64(bytes.count) else {
            throw bad("program headers extend past the end of the file")
        }

        var segments: [Segment] = []
        var pvh: UInt32? = nil
        for i in 0..<Int(phnum) {
            let h = Int(phoff) + i * Int(phentsize)
            guard let pType = r.u32(h), let off = r.u64(h + 8), let vaddr = r.u64(h + 16),
                  let paddr = r.u64(h + 24), let filesz = r.u64(h + 32), let memsz = r.u64(h + 40)
            else { throw bad("short program header \(i)") }
            let (fileEnd, o1) = off.addingReportingOverflow(filesz)
            if (pType == Self.ptLoad || pType == Self.ptNote) && (o1 || fileEnd > UInt64(bytes.count)) {
                throw BootError(path: path, .segmentOutsideFile(index: i))
            }
            switch pType {
            case Self.ptLoad:
                if filesz > memsz { throw bad("segment \(i) has p_filesz > p_memsz") }
                if paddr.addingReportingOverflow(memsz).overflow || vaddr.addingReportingOverflow(memsz).overflow {
                    throw bad("segment \(i) wraps the address space")
                }
                segments.append(Segment(fileOffset: off, fileSize: filesz, physicalAddress: paddr,
                                        virtualAddress: vaddr, memorySize: memsz))
            case Self.ptNote:
                if let e = Self.pvhEntry(notes: bytes[Int(off)..<Int(fileEnd)]) { pvh = e }
            default:
                break
            }
        }
        guard !segments.isEmpty else { throw bad("no PT_LOAD segments") }
        for (i, a) in segments.enumerated() {
            for b in segments[(i + 1)...] where a.physicalAddress < b.physicalAddress + b.memorySize
                && b.physicalAddress < a.physicalAddress + a.memorySize {
                throw bad("segments at \(hex(a.physicalAddress)) and \(hex(b.physicalAddress)) overlap")
            }
        }

        // e_entry is virtual in general; a vmlinux's e_entry is already physical
        // (ENTRY(phys_startup_64)). Try the virtual ranges first, then the physical ones.
        if let s = segments.first(where: { eEntry >= $0.virtualAddress && eEntry - $0.virtualAddress < $0.memorySize }) {
            entry = eEntry - s.virtualAddress + s.physicalAddress
        } else if segments.contains(where: { eEntry >= $0.physicalAddress && eEntry - $0.physicalAddress < $0.memorySize }) {
            entry = eEntry
        } else {
            throw BootError(path: path, .entryNotInSegment(entry: eEntry))
        }
        self.path = path
        self.bytes = bytes
        self.segments = segments
        self.pvhEntry = pvh
    }

    /// Walk ELF notes (4-byte aligned name and descriptor) for Xen's PHYS32_ENTRY.
    /// Malformed notes end the walk; they are not an error (other notes don't concern us).
    static func pvhEntry(notes: ArraySlice<UInt8>) -> UInt32? {
        let r = ByteReader(bytes: Array(notes))
        var at = 0
        while let namesz = r.u32(at), let descsz = r.u32(at + 4), let type = r.u32(at + 8) {
            let nameStart = at + 12
            let descStart = nameStart + Int(alignUp(UInt64(namesz), 4))
            let next = descStart + Int(alignUp(UInt64(descsz), 4))
            guard namesz < 1 << 20, descsz < 1 << 20, next <= r.bytes.count else { return nil }
            let name = r.bytes[nameStart..<(nameStart + Int(namesz))]
            if type == xenElfnotePhys32Entry && Array(name.prefix(3)) == [0x58, 0x65, 0x6e] /* "Xen" */ {
                // Linux emits it with _ASM_PTR: 8 bytes on x86-64; Xen's spec says 4.
                if descsz == 8, let v = r.u64(descStart), v <= UInt64(UInt32.max) { return UInt32(v) }
                if descsz == 4, let v = r.u32(descStart) { return v }
                return nil
            }
            at = next
        }
        return nil
    }
}
