import Glibc

/// Where the initrd comes from. `.path` and `.file` are read straight into guest memory
/// (no intermediate copy of a large initrd).
public enum InitrdSource {
    case bytes([UInt8], path: String)
    /// An open descriptor the caller owns and closes; `size` bytes from offset 0.
    case file(descriptor: Int32, size: UInt64, path: String)
    /// Opened, read and closed by the loader.
    case path(String)
}

/// Which entry to use for an ELF kernel.
public enum ELFEntryKind: Equatable, Sendable {
    /// startup_64 through the 64-bit boot protocol (boot_params, identity paging).
    case linux64
    /// The PVH 32-bit entry (hvm_start_info, paging off).
    case pvh
}

/// What the loader put where, and the boot vCPU's entry state.
public struct LoadedKernel {
    public var entry: EntryState
    /// [start, end) reserved for the kernel, including the room it decompresses into.
    public var kernelStart: UInt64
    public var kernelEnd: UInt64
    public var initrd: (address: UInt64, size: UInt64)?
    public var commandLineAddress: UInt64
    public var commandLineLength: Int
    public var entryKind: ELFEntryKind
}

/// Loads a Linux kernel, initrd and command line into guest memory and builds the boot
/// structures (boot_params or hvm_start_info, page tables, GDT). Every check runs before
/// the first byte is written, so a bad input leaves guest memory untouched.
///
///     let layout = try GuestRAMLayout(memoryMiB: 512)
///     let kernel = try LinuxKernel(contentsOf: path)          // bzImage or ELF, by magic
///     let memory = try GuestMemory(layout: layout.regions)
///     let boot = try LinuxLoader.load(kernel, into: memory, layout: layout,
///                                     commandLine: "console=ttyS0", initrd: .path(initrdPath),
///                                     acpiRSDP: 0xE0000)
///     // vCPU 0: sregs from KVM_GET_SREGS, then boot.entry.apply(to: &sregs); boot.entry.kvmRegs.
///     // Every vCPU: GuestCPUID.entries(...), BootMSRs.entries, FPUState(), BootLAPIC.configureLINT.
public enum LinuxLoader {
    public static let bootParamsAddress: UInt64 = 0x7000
    public static let commandLineAddress: UInt64 = 0x20000
    /// The command line must end below the MP table.
    public static let commandLineAreaEnd: UInt64 = E820Entry.mpTableStart
    public static let kernelAddress: UInt64 = 0x100000
    public static let pageSize: UInt64 = 4096

    // MARK: bzImage

    public static func load(_ kernel: BzImage, into memory: GuestMemory, layout: GuestRAMLayout,
                            commandLine: String, initrd: InitrdSource? = nil,
                            acpiRSDP: UInt64? = nil) throws -> LoadedKernel {
        let cmdline = try commandLineBytes(commandLine, limit: kernel.cmdlineSize, path: kernel.path)
        let low = layout.lowRAMEnd
        let payload = UInt64(kernel.payloadSize)
        let alignment = UInt64(max(kernel.kernelAlignment, 1))

        // Prefer pref_address (the kernel then runs where it was linked, no self-copy)
        // when it is sane and fits; otherwise the classic 1 MiB.
        let pref = kernel.prefAddress
        let prefFits = pref >= kernelAddress && pref % alignment == 0 && pref < low
            && low - pref >= max(payload, UInt64(kernel.initSize))
        let load = prefFits ? pref : kernelAddress
        let end = try bzImageEnd(kernel, loadedAt: load, lowRAMEnd: low)

        let initrdSize = try initrdSize(initrd)
        let initrdAt = try placeInitrd(size: initrdSize, maxAddress: UInt64(kernel.initrdAddrMax), kernelEnd: end,
                                       layout: layout, allowHigh: kernel.canBeLoadedAbove4G, path: initrdPath(initrd))

        // Checks done; write.
        try guarded(kernel.path) {
            try kernel.bytes.withUnsafeBytes { raw in
                let p = UnsafeRawBufferPointer(rebasing: raw[kernel.payloadOffset..<(kernel.payloadOffset + kernel.payloadSize)])
                try memory.write(at: load, from: p)
            }
        }
        try loadInitrd(initrd, at: initrdAt, size: initrdSize, into: memory)
        try guarded(kernel.path) { try memory.write(at: commandLineAddress, bytes: cmdline) }

        var params = BootParams(header: kernel)
        params.setCode32Start(load)
        finish(&params, cmdline: cmdline, initrdAt: initrdAt, initrdSize: initrdSize, layout: layout, acpiRSDP: acpiRSDP)
        try guarded(kernel.path) {
            try memory.write(at: bootParamsAddress, bytes: params.bytes)
            try BootPageTables.write(into: memory)
            try BootGDT.write(into: memory)
        }
        return LoadedKernel(entry: .linux64(entry: load + 0x200), kernelStart: load, kernelEnd: end,
                            initrd: initrdAt.map { ($0, initrdSize) }, commandLineAddress: commandLineAddress,
                            commandLineLength: cmdline.count - 1, entryKind: .linux64)
    }

    /// End of what a bzImage loaded at `load` occupies: its payload, and the buffer its
    /// decompressor uses, init_size bytes from max(load aligned up, pref_address)
    /// (arch/x86/boot/compressed/head_64.S) — pref_address is LOAD_PHYSICAL_ADDR.
    static func bzImageEnd(_ kernel: BzImage, loadedAt load: UInt64, lowRAMEnd low: UInt64) throws -> UInt64 {
        let alignment = UInt64(max(kernel.kernelAlignment, 1))
        let base = kernel.relocatable ? max(alignUp(load, alignment), kernel.prefAddress) : max(load, kernel.prefAddress)
        // pref_address and init_size come from the file: a crafted pair must not wrap.
        let (decompressEnd, wrapped) = base.addingReportingOverflow(UInt64(kernel.initSize))
        if wrapped { throw BootError(path: kernel.path, .badHeader("pref_address \(hex(kernel.prefAddress)) + init_size \(hex(kernel.initSize)) wraps")) }
        let end = max(load + UInt64(kernel.payloadSize), decompressEnd)
        if end > low { throw BootError(path: kernel.path, .memoryTooSmall(needed: end, available: low)) }
        return end
    }

    // MARK: ELF vmlinux

    /// `entry` nil picks the default: the 64-bit entry when `kernel.entry64Usable`, else
    /// PVH when the kernel has the note.
    public static func load(_ kernel: ELFKernel, into memory: GuestMemory, layout: GuestRAMLayout,
                            commandLine: String, initrd: InitrdSource? = nil, entry: ELFEntryKind? = nil,
                            acpiRSDP: UInt64? = nil) throws -> LoadedKernel {
        let kind = entry ?? (kernel.entry64Usable || kernel.pvhEntry == nil ? .linux64 : .pvh)
        if kind == .pvh && kernel.pvhEntry == nil {
            throw BootError(path: kernel.path, .badELF("no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY)"))
        }
        let cmdline = try commandLineBytes(commandLine, limit: BootParams.defaultCmdlineSize, path: kernel.path)
        let low = layout.lowRAMEnd
        for (i, s) in kernel.segments.enumerated() {
            if s.physicalAddress < kernelAddress {
                throw BootError(path: kernel.path, .badELF("segment \(i) at \(hex(s.physicalAddress)) is below 1 MiB, over the boot structures"))
            }
            let end = s.physicalAddress + s.memorySize
            if s.physicalAddress < low && end > low {
                throw BootError(path: kernel.path, .memoryTooSmall(needed: end, available: low))
            }
            if !memory.isValid(address: s.physicalAddress, length: s.memorySize) {
                throw BootError(path: kernel.path, .segmentOutsideRAM(index: i, address: s.physicalAddress, size: s.memorySize))
            }
        }
        if kind == .linux64 && !kernel.entry64Usable {
            throw BootError(path: kernel.path, .badELF("the 64-bit entry needs the kernel below 4 GiB"))
        }
        let end = kernel.physicalEnd
        let initrdSize = try initrdSize(initrd)
        let initrdAt = try placeInitrd(size: initrdSize, maxAddress: UInt64(BootParams.defaultInitrdAddrMax),
                                       kernelEnd: end, layout: layout, allowHigh: true, path: initrdPath(initrd))

        try guarded(kernel.path) {
            try kernel.bytes.withUnsafeBytes { raw in
                for s in kernel.segments {
                    let file = UnsafeRawBufferPointer(rebasing: raw[Int(s.fileOffset)..<Int(s.fileOffset + s.fileSize)])
                    try memory.write(at: s.physicalAddress, from: file)
                    try memory.zero(at: s.physicalAddress + s.fileSize, length: s.memorySize - s.fileSize)
                }
            }
        }
        try loadInitrd(initrd, at: initrdAt, size: initrdSize, into: memory)
        try guarded(kernel.path) {
            try memory.write(at: commandLineAddress, bytes: cmdline)
            try BootGDT.write(into: memory)
        }

        let state: EntryState
        switch kind {
        case .linux64:
            var params = BootParams.forELF()
            finish(&params, cmdline: cmdline, initrdAt: initrdAt, initrdSize: initrdSize, layout: layout, acpiRSDP: acpiRSDP)
            try guarded(kernel.path) {
                try memory.write(at: bootParamsAddress, bytes: params.bytes)
                try BootPageTables.write(into: memory)
            }
            state = .linux64(entry: kernel.entry)
        case .pvh:
            var info = PVHStartInfo(commandLineAddress: commandLineAddress, memmap: layout.e820)
            info.rsdpAddress = acpiRSDP ?? 0
            info.initrd = initrdAt.map { ($0, initrdSize) }
            try guarded(kernel.path) { try memory.write(at: PVHStartInfo.address, bytes: info.bytes) }
            state = .pvh32(entry: kernel.pvhEntry ?? 0)
        }
        return LoadedKernel(entry: state, kernelStart: kernel.physicalStart, kernelEnd: end,
                            initrd: initrdAt.map { ($0, initrdSize) }, commandLineAddress: commandLineAddress,
                            commandLineLength: cmdline.count - 1, entryKind: kind)
    }

    // MARK: Either kind

    public static func load(_ kernel: LinuxKernel, into memory: GuestMemory, layout: GuestRAMLayout,
                            commandLine: String, initrd: InitrdSource? = nil, elfEntry: ELFEntryKind? = nil,
                            acpiRSDP: UInt64? = nil) throws -> LoadedKernel {
        switch kernel {
        case .bzImage(let k):
            return try load(k, into: memory, layout: layout, commandLine: commandLine, initrd: initrd, acpiRSDP: acpiRSDP)
        case .elf(let k):
            return try load(k, into: memory, layout: layout, commandLine: commandLine, initrd: initrd,
                            entry: elfEntry, acpiRSDP: acpiRSDP)
        }
    }

    // MARK: Pieces

    /// The command line with its NUL terminator; `limit` excludes the terminator.
    static func commandLineBytes(_ s: String, limit: UInt32, path: String) throws -> [UInt8] {
        let utf8 = Array(s.utf8)
        if utf8.contains(0) { throw BootError(path: path, .commandLineHasNUL) }
        let room = Int(commandLineAreaEnd - commandLineAddress) - 1
        let allowed = min(Int(limit), room)
        if utf8.count > allowed { throw BootError(path: path, .commandLineTooLong(length: utf8.count, allowed: allowed)) }
        return utf8 + [0]
    }

    static func finish(_ p: inout BootParams, cmdline: [UInt8], initrdAt: UInt64?, initrdSize: UInt64,
                       layout: GuestRAMLayout, acpiRSDP: UInt64?) {
        p.setCommandLine(address: commandLineAddress)
        if let at = initrdAt { p.setRamdisk(address: at, size: initrdSize) }
        p.setE820(layout.e820)
        if let rsdp = acpiRSDP { p.setACPIRSDP(rsdp) }
    }

    /// Highest page-aligned address where `size` bytes end at or below `maxAddress`
    /// (inclusive, as initrd_addr_max is defined) and inside low RAM, above the kernel.
    /// If that fails and the kernel allows it, the top of RAM above 4 GiB.
    static func placeInitrd(size: UInt64, maxAddress: UInt64, kernelEnd: UInt64, layout: GuestRAMLayout,
                            allowHigh: Bool, path: String) throws -> UInt64? {
        guard size > 0 else { return nil }
        let limit = min(maxAddress + 1, layout.lowRAMEnd)
        let floor = alignUp(kernelEnd, pageSize)
        if size <= limit {
            let at = alignDown(limit - size, pageSize)
            if at >= floor { return at }
        }
        if allowHigh, let high = layout.highRAM, size <= high.size {
            return alignDown(high.guestAddress + high.size - size, pageSize)
        }
        throw BootError(path: path, .initrdDoesNotFit(size: size, below: limit))
    }

    static func initrdPath(_ s: InitrdSource?) -> String {
        switch s {
        case .bytes(_, let p)?, .file(_, _, let p)?, .path(let p)?: return p
        case nil: return ""
        }
    }

    static func initrdSize(_ s: InitrdSource?) throws -> UInt64 {
        switch s {
        case nil: return 0
        case .bytes(let b, _)?: return UInt64(b.count)
        case .file(_, let size, _)?: return size
        case .path(let p)?:
            let fd = open(p, O_RDONLY | O_CLOEXEC)
            if fd < 0 { throw BootError(path: p, .cannotRead(errno: errno)) }
            defer { close(fd) }
            return try fileSize(fd, path: p)
        }
    }

    static func loadInitrd(_ s: InitrdSource?, at address: UInt64?, size: UInt64, into memory: GuestMemory) throws {
        guard let s, let address, size > 0 else { return }
        let path = initrdPath(s)
        let dst = try guarded(path) { try memory.slice(at: address, length: size) }
        switch s {
        case .bytes(let b, _):
            b.withUnsafeBytes { src in
                if let to = dst.baseAddress, let from = src.baseAddress { outOfLineCopy(to: to, from: from, count: min(src.count, dst.count)) }
            }
        case .file(let fd, _, _):
            try preadFully(fd, into: dst, offset: 0, path: path)
        case .path(let p):
            let fd = open(p, O_RDONLY | O_CLOEXEC)
            if fd < 0 { throw BootError(path: p, .cannotRead(errno: errno)) }
            defer { close(fd) }
            try preadFully(fd, into: dst, offset: 0, path: path)
        }
    }

    /// Turn a guest-memory failure into a BootError naming the file being loaded.
    @discardableResult
    static func guarded<T>(_ path: String, _ body: () throws -> T) throws -> T {
        do { return try body() } catch let e as GuestMemoryError { throw BootError(path: path, .guestMemory(e)) }
    }
}
