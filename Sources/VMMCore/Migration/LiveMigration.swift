import Glibc
import KVMKit
import VirtioDevices

/// What a finished migration cost (source side).
public struct MigrationReport: Sendable, CustomStringConvertible {
    /// Copy rounds while the guest ran (the first sends all of RAM), then the final one.
    public var rounds: Int
    public var bytesSent: UInt64
    public var pagesInFinalRound: Int
    public var totalMilliseconds: Double
    /// From pausing the source to the destination reporting its guest running.
    public var downtimeMilliseconds: Double

    public var description: String {
        "\(rounds) rounds, \(bytesSent >> 10) KiB sent, \(pagesInFinalRound) pages in the final round, total "
            + "\(format(totalMilliseconds)) ms, downtime \(format(downtimeMilliseconds)) ms"
    }

    private func format(_ ms: Double) -> String { String(Double(Int(ms * 1000)) / 1000) }
}

/// The first message: what the destination must build before any page arrives.
struct MigrationHello: StateCodable {
    var configuration: SavedConfiguration
    var cpu: CPUFeatures
    var memory: [MemoryRegionLayout]

    func encode(to w: inout StateWriter) { w.write(configuration); w.write(cpu); w.write(memory) }
    init(from r: inout StateReader) throws {
        configuration = try r.read(SavedConfiguration.self)
        cpu = try r.read(CPUFeatures.self)
        memory = try r.readArray(MemoryRegionLayout.self, "memory regions", limit: 16)
    }
    init(configuration: SavedConfiguration, cpu: CPUFeatures, memory: [MemoryRegionLayout]) {
        self.configuration = configuration; self.cpu = cpu; self.memory = memory
    }
}

/// Pages go in batches: count (u32), the guest-physical address of each (u64), then the
/// pages themselves.
enum PageBatch {
    static let maxPages = 256

    static func send(_ pages: [(address: UInt64, bytes: UnsafeRawBufferPointer)], on channel: MigrationChannel) throws {
        var header = StateWriter()
        header.write(UInt32(pages.count))
        for p in pages { header.write(p.address) }
        try header.bytes.withUnsafeBytes { h in
            try channel.send(.pages, parts: [h] + pages.map(\.bytes))
        }
    }

    /// Write a received batch into guest memory (every address is checked there).
    static func apply(_ payload: [UInt8], to memory: GuestMemory) throws {
        var r = StateReader(payload, context: "page batch")
        let count = Int(try r.read(UInt32.self, "page count"))
        let page = Int(GuestMemory.pageSize)
        guard count <= maxPages, payload.count == 4 + count * (8 + page) else {
            throw MigrationError.protocolError("a page batch of \(payload.count) bytes claims \(count) pages")
        }
        let addresses = try (0..<count).map { _ in try r.read(UInt64.self, "page address") }
        try payload.withUnsafeBytes { raw in
            for (i, a) in addresses.enumerated() {
                let start = 4 + count * 8 + i * page
                do { try memory.write(at: a, from: UnsafeRawBufferPointer(rebasing: raw[start..<start + page])) } catch {
                    throw MigrationError.protocolError("page at \(a): \(error)")
                }
            }
        }
    }
}

extension VMRuntime {
    /// Send the pages of `dirty` (or, with nil, every page that is not zero); returns bytes sent.
    func sendPages(_ dirty: DirtyPages?, on channel: MigrationChannel) throws -> UInt64 {
        let memory = machine.memory
        var batch: [(address: UInt64, bytes: UnsafeRawBufferPointer)] = []
        var sent: UInt64 = 0
        func add(_ region: Int, _ page: UInt64) throws {
            let r = memory.regions[region]
            let offset = page * GuestMemory.pageSize
            guard offset + GuestMemory.pageSize <= r.size else { return }
            let bytes = UnsafeRawBufferPointer(start: r.host + Int(offset), count: Int(GuestMemory.pageSize))
            if dirty == nil && MemoryFile.isZero(bytes) { return }  // the destination's RAM starts zeroed
            batch.append((r.guestAddress + offset, bytes))
            if batch.count == PageBatch.maxPages { try flush() }
        }
        func flush() throws {
            guard !batch.isEmpty else { return }
            try PageBatch.send(batch, on: channel)
            sent += UInt64(batch.count) * (GuestMemory.pageSize + 8)
            batch.removeAll(keepingCapacity: true)
        }
        if let dirty {
            try dirty.forEachPage(add)
        } else {
            for (i, r) in memory.regions.enumerated() {
                for p in 0..<(r.size / GuestMemory.pageSize) { try add(i, p) }
            }
        }
        try flush()
        return sent
    }
}

extension MicroVM {
    /// The pause a migration aims for unless told otherwise (the budget for an idle
    /// guest; Cloud Hypervisor's default is 300 ms).
    public static let defaultMigrationDowntimeMillis: UInt64 = 50

    /// Move this running VM to a destination `swiftvmm run --migrate-from ADDRESS`:
    /// pre-copy (all of RAM while the guest runs, then what it dirtied, round after round,
    /// until the rest fits `downtimeTargetMillis` or `maxRounds` is reached), then pause,
    /// send the last pages and the state, and hand over: the destination resumes the
    /// guest and this VM stops (`hostRequest("migrated to ADDRESS: REPORT")`, so whoever
    /// waits for the stop sees the figures). On any failure the guest
    /// here keeps running as if nothing happened, and the error is thrown.
    public func migrate(to address: MigrationAddress, downtimeTargetMillis: UInt64 = MicroVM.defaultMigrationDowntimeMillis,
                        maxRounds: Int = 30) throws -> MigrationReport {
        try core.withLock { c in
            try check(.migrate, c.lifecycle)
            guard let r = c.runtime else { throw VMError.illegal(.migrate, state: c.lifecycle) }
            let started = monotonicNanoseconds()
            let channel = try MigrationChannel.connect(address)
            let memory = r.machine.memory
            let hello = MigrationHello(
                configuration: SavedConfiguration(c.configuration),
                cpu: CPUFeatures(cpuid: try r.machine.kvm.supportedCPUID().map(CPUIDEntry.init)),
                memory: memory.regions.map { MemoryRegionLayout(guestAddress: $0.guestAddress, size: $0.size) })
            try channel.send(.hello, hello.encodedBytes)
            try expect(.ready, from: channel)

            let ownTracker = r.dirtyTracker == nil
            let tracker = r.dirtyTracker ?? DirtyPageTracker(vm: r.machine.vm, memory: memory)
            if ownTracker { try tracker.start() } else { _ = try tracker.harvest() }
            defer { if ownTracker { try? tracker.stop() } }

            // Pre-copy while the guest runs.
            var bytes: UInt64 = 0
            var rounds = 1
            var t = monotonicNanoseconds()
            var sent = try r.sendPages(nil, on: channel)
            bytes += sent
            var pending = try tracker.harvest()
            while rounds < maxRounds {
                let elapsed = max(1, monotonicNanoseconds() - t)
                let bytesPerMs = max(1, Double(sent) / (Double(elapsed) / 1e6))
                if Double(pending.count) * Double(GuestMemory.pageSize) / bytesPerMs <= Double(downtimeTargetMillis) { break }
                t = monotonicNanoseconds()
                sent = try r.sendPages(pending, on: channel)
                bytes += sent
                rounds += 1
                pending = try tracker.harvest()
            }

            // Stop and copy: the last pages, the state, the disks.
            try r.pause()
            c.lifecycle = .paused
            let pausedAt = monotonicNanoseconds()
            let disks = r.diskBackends
            let endpoints = r.hostHandOvers
            do {
                for d in disks { try d.flush() }
                var last = try tracker.harvest()
                last.formUnion(pending.bitmaps)
                bytes += try r.sendPages(last, on: channel)
                let file = try r.captureStateFile(configuration: c.configuration).encoded()
                for d in disks { try d.handOver() }
                for e in endpoints { try e.handOver() }
                try channel.send(.state, file)
                bytes += UInt64(file.count)
                try expect(.running, from: channel)
                let done = monotonicNanoseconds()
                let report = MigrationReport(rounds: rounds + 1, bytesSent: bytes, pagesInFinalRound: last.count,
                                             totalMilliseconds: Double(done - started) / 1e6,
                                             downtimeMilliseconds: Double(done - pausedAt) / 1e6)
                control.requestStop(.hostRequest("migrated to \(address): \(report)"))
                return report
            } catch {
                for d in disks { try? d.takeBack() }
                for e in endpoints {
                    do { try e.takeBack() } catch { StandardError.write("swiftvmm: migration failed; taking back a device: \(error)\n") }
                }
                r.resume()
                c.lifecycle = .running
                throw error
            }
        }
    }

    /// Become the destination of a migration: listen on `address`, take one source, build
    /// the VM from what it sends and run it. Returns once the guest runs here.
    public func receiveMigration(from address: MigrationAddress) throws {
        try core.withLock { c in
            try check(.receiveMigration, c.lifecycle)
            let kvm = try c.makeKVM()
            let channel = try MigrationChannel.accept(address)
            do {
                let (kind, payload) = try channel.receive()
                guard kind == .hello else { throw MigrationError.protocolError("expected hello, got \(kind)") }
                let hello = try MigrationHello(decoding: payload, context: "migration hello")
                let host = CPUFeatures(cpuid: try kvm.supportedCPUID().map(CPUIDEntry.init))
                if let why = host.cannotRun(hello.cpu) { throw SnapshotFileError.incompatibleHost(why) }
                let memory = try GuestMemory(layout: hello.memory.map { (guestAddress: $0.guestAddress, size: $0.size) })
                try channel.send(.ready, [])
                var stateBytes: [UInt8]?
                while stateBytes == nil {
                    let (kind, payload) = try channel.receive()
                    switch kind {
                    case .pages: try PageBatch.apply(payload, to: memory)
                    case .state: stateBytes = payload
                    default: throw MigrationError.protocolError("unexpected \(kind) during the copy")
                    }
                }
                let file = try SnapshotFile(decoding: stateBytes ?? [])
                var config = try file.decode(SavedConfiguration.self, section: SnapshotSections.configuration).configuration
                config.console.mode = c.configuration.console.mode
                let state = try file.decode(MachineState.self, section: SnapshotSections.machine)
                _ = try restoreRuntime(&c, kvm: kvm, file: file, config: config, state: state, memory: memory, resume: true)
            } catch {
                try? channel.send(.error, Array("\(error)".utf8))
                if let r = c.runtime {
                    c.runtime = nil
                    control.requestStop(.vmmError("incoming migration failed: \(error)"))
                    r.teardown()
                }
                throw error
            }
            // The guest runs here now. If the source is gone already it cannot resume its
            // copy (it waits for this message), so this side carries on either way.
            try? channel.send(.running, [])
        }
    }

    private func expect(_ kind: MigrationChannel.Kind, from channel: MigrationChannel) throws {
        let (got, payload) = try channel.receive()
        if got == .error { throw MigrationError.refused(String(decoding: payload, as: UTF8.self)) }
        guard got == kind else { throw MigrationError.protocolError("expected \(kind), got \(got)") }
    }
}
