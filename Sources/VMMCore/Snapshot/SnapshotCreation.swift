import Glibc
import KVMKit
import VirtioDevices

/// Firecracker's `snapshot_type`: every page, or the pages written since the last snapshot.
public enum SnapshotType: String, Sendable { case full = "Full", diff = "Diff" }

/// What a snapshot cost, for the CLI and the benchmarks.
public struct SnapshotReport: Sendable {
    public var stateBytes: Int
    public var memoryBytesWritten: UInt64
    public var dirtyPages: Int?
    public var milliseconds: Double
}

/// The memory file a state file goes with: its token (see `MemoryFile`) and RAM size.
struct MemoryFileReference: StateCodable {
    var token: UInt64
    var ramBytes: UInt64
    func encode(to w: inout StateWriter) { w.write(token); w.write(ramBytes) }
    init(from r: inout StateReader) throws {
        token = try r.read(UInt64.self, "memory token")
        ramBytes = try r.read(UInt64.self, "RAM size")
    }
    init(token: UInt64, ramBytes: UInt64) { self.token = token; self.ramBytes = ramBytes }
}

extension VMRuntime {
    /// Everything but RAM, as a state file; the VM must be paused.
    func captureStateFile(configuration: VMConfiguration) throws -> SnapshotFile {
        let state = try machine.captureState()
        // The features KVM offered (the guest's CPUID is built from them); comparing the
        // vCPU's own CPUID instead fails on PVM, whose KVM_GET_CPUID2 shows host bits.
        var file = SnapshotFile(cpu: CPUFeatures(cpuid: try machine.kvm.supportedCPUID().map(CPUIDEntry.init)))
        file.append(SnapshotSections.configuration, SavedConfiguration(configuration))
        file.append(SnapshotSections.machine, state)
        for e in registry.entries {
            if let v = try VirtioDeviceSnapshot.capture(e) { file.append(SnapshotSections.device(e.id), v) }
        }
        return file
    }

    /// The block devices' images, raw or qcow2 (flushed and handed over in a migration).
    var diskBackends: [BlockBackend] {
        registry.entries.compactMap { (($0.device as? VirtioMMIOTransport)?.device as? VirtioBlock)?.backend }
    }

    /// Taps and vsock sockets: a destination on this host attaches them after hand-over.
    var hostHandOvers: [HostHandOver] {
        registry.entries.compactMap { ($0.device as? VirtioMMIOTransport)?.device as? HostHandOver }
    }

    /// Save the (paused) VM: disks flushed, state file and memory file written so that a
    /// crash at any point leaves the previous snapshot usable.
    func createSnapshot(snapshotPath: String, memPath: String, type: SnapshotType, configuration: VMConfiguration) throws -> SnapshotReport {
        let started = monotonicNanoseconds()
        for e in registry.entries {
            if let t = e.device as? VirtioMMIOTransport, let block = t.device as? VirtioBlock { try block.backend.flush() }
        }
        var file = try captureStateFile(configuration: configuration)
        let token = UInt64.random(in: 1...UInt64.max)
        let ram = machine.memory.totalSize
        file.append(SnapshotSections.memory, MemoryFileReference(token: token, ramBytes: ram))

        let memoryTmp: String
        var dirtyCount: Int?
        var written = ram
        switch type {
        case .full:
            memoryTmp = try MemoryFile.writeFull(machine.memory, to: memPath, token: token)
        case .diff:
            guard let tracker = dirtyTracker, let base = lastMemoryFile else { throw SnapshotError.noBaseForDiff }
            let dirty = try tracker.harvest()
            dirtyCount = dirty.count
            written = UInt64(dirty.count) * GuestMemory.pageSize
            memoryTmp = try MemoryFile.writeDiff(machine.memory, base: base, dirty: dirty, to: memPath, token: token)
        }
        let bytes = file.encoded()
        let stateTmp = MemoryFile.temporaryName(snapshotPath)
        do {
            let fd = try MemoryFile.create(stateTmp)
            defer { close(fd) }
            try bytes.withUnsafeBytes { try MemoryFile.writeAll(fd, $0, at: 0, path: stateTmp) }
            if fsync(fd) != 0 { throw SnapshotError.io("fsync \(stateTmp)", errno) }
        } catch {
            unlink(memoryTmp); unlink(stateTmp)
            throw error
        }
        try MemoryFile.install(memoryTmp, at: memPath)
        if rename(stateTmp, snapshotPath) != 0 { throw SnapshotError.io("rename \(stateTmp) to \(snapshotPath)", errno) }
        MemoryFile.syncDirectory(of: snapshotPath)
        unlink(memPath + ".prev")

        // Diff snapshots count from here: start (or clear) the dirty log.
        if configuration.machine.trackDirtyPages {
            if let t = dirtyTracker { if type == .full { _ = try t.harvest() } } else {
                let t = DirtyPageTracker(vm: machine.vm, memory: machine.memory)
                try t.start()
                dirtyTracker = t
            }
        }
        lastMemoryFile = memPath
        return SnapshotReport(stateBytes: bytes.count, memoryBytesWritten: written, dirtyPages: dirtyCount,
                              milliseconds: Double(monotonicNanoseconds() - started) / 1e6)
    }
}

extension MicroVM {
    /// Save this paused VM to `snapshotPath` (state) and `memPath` (guest RAM), as
    /// Firecracker's `PUT /snapshot/create`. Diff needs `track_dirty_pages` and a Full
    /// snapshot taken earlier by this process; its memory file is complete on its own
    /// (the previous one with the dirtied pages replaced).
    @discardableResult
    public func createSnapshot(snapshotPath: String, memPath: String, type: SnapshotType = .full) throws -> SnapshotReport {
        try core.withLock { c in
            try check(.createSnapshot, c.lifecycle)
            guard let r = c.runtime else { throw VMError.illegal(.createSnapshot, state: c.lifecycle) }
            if type == .diff && !c.configuration.machine.trackDirtyPages {
                throw VMError.invalidConfiguration("Diff snapshots need track_dirty_pages in the machine configuration")
            }
            return try r.createSnapshot(snapshotPath: snapshotPath, memPath: memPath, type: type, configuration: c.configuration)
        }
    }

    /// Build this (not started) VM from a snapshot, as Firecracker's `PUT /snapshot/load`:
    /// guest RAM is a private mapping of `memPath`, so loading costs the same for any
    /// guest size. The VM is Paused afterwards, or Running with `resume`. The disks must
    /// be the ones the snapshot was taken with (same paths and sizes). On any error
    /// nothing is left half-built and the VM stays Not started.
    /// `trackDirtyPages`: log dirty pages from here on (for Diff snapshots) even if the
    /// saved VM did not.
    public func loadSnapshot(snapshotPath: String, memPath: String, resume: Bool, trackDirtyPages: Bool = false) throws {
        try core.withLock { c in
            try check(.loadSnapshot, c.lifecycle)
            let kvm = try c.makeKVM()
            let file = try SnapshotFile(decoding: try readStateFile(snapshotPath))
            let host = CPUFeatures(cpuid: try kvm.supportedCPUID().map(CPUIDEntry.init))
            if let why = host.cannotRun(file.cpu) { throw SnapshotFileError.incompatibleHost(why) }
            var config = try file.decode(SavedConfiguration.self, section: SnapshotSections.configuration).configuration
            config.console.mode = c.configuration.console.mode
            if trackDirtyPages { config.machine.trackDirtyPages = true }
            let state = try file.decode(MachineState.self, section: SnapshotSections.machine)
            let reference = try file.decode(MemoryFileReference.self, section: SnapshotSections.memory)
            let layout = state.memory.map { (guestAddress: $0.guestAddress, size: $0.size) }
            guard layout.reduce(UInt64(0), { $0 &+ $1.size }) == reference.ramBytes else {
                throw SnapshotFileError.incompatibleHost("the state's memory layout and memory size disagree")
            }
            // A crash between the two renames of a snapshot leaves the old state file with
            // the new memory file; the memory that goes with it is then MEM.prev.
            var memoryPath = memPath
            if try MemoryFile.token(of: memPath, ramBytes: reference.ramBytes) != reference.token {
                let previous = memPath + ".prev"
                guard access(previous, R_OK) == 0,
                      (try? MemoryFile.token(of: previous, ramBytes: reference.ramBytes)) == reference.token else {
                    throw SnapshotError.mismatchedFiles(state: snapshotPath, memory: memPath)
                }
                memoryPath = previous
            }
            let memory = try GuestMemory(mappingFile: memoryPath, layout: layout, fileSize: reference.ramBytes + MemoryFile.trailerSize)
            let runtime = try restoreRuntime(&c, kvm: kvm, file: file, config: config, state: state, memory: memory, resume: resume)
            runtime.lastMemoryFile = memoryPath
        }
    }

    /// Build and start (running with `resume`, else paused) the runtime of a saved VM whose
    /// RAM is `memory`; snapshot load and incoming migration end here. Starting it running
    /// rather than paused-then-resumed spares two thread hand-overs (vCPU parked → main,
    /// main → vCPU) before the first KVM_RUN, which a loaded host makes milliseconds each.
    func restoreRuntime(_ c: inout Core, kvm: KVM, file: SnapshotFile, config: VMConfiguration, state: MachineState,
                        memory: GuestMemory, resume: Bool) throws -> VMRuntime {
        let runtime = try VMRuntime(configuration: config, control: control, kvm: kvm,
                                    restoring: RuntimeRestore(machine: MachineRestore(memory: memory, state: state), file: file))
        // With track_dirty_pages, a Diff snapshot can follow at once: the loaded memory
        // file is its base and the log starts before any vCPU runs.
        if config.machine.trackDirtyPages {
            let t = DirtyPageTracker(vm: runtime.machine.vm, memory: memory)
            try t.start()
            runtime.dirtyTracker = t
        }
        try runtime.start(paused: !resume, restored: true)
        c.runtime = runtime
        c.configuration = config
        c.lifecycle = resume ? .running : .paused
        return runtime
    }
}

/// The whole state file, refusing anything larger than a state file can be.
func readStateFile(_ path: String) throws -> [UInt8] {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    if fd < 0 { throw SnapshotError.io("open the state file \(path)", errno) }
    defer { close(fd) }
    var st = stat()
    guard fstat(fd, &st) == 0 else { throw SnapshotError.io("stat the state file \(path)", errno) }
    let size = Int(st.st_size)
    guard size <= SnapshotFile.maximumPayload + SnapshotFile.headerSize else {
        throw SnapshotFileError.payloadTooLarge(UInt64(size))
    }
    var bytes = [UInt8](repeating: 0, count: size)
    var done = 0
    while done < size {
        let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, size - done, off_t(done)) }
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { throw SnapshotError.io("read the state file \(path)", n == 0 ? EIO : errno) }
        done += n
    }
    return bytes
}
