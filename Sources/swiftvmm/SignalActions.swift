import Glibc
import KVMKit
import VMMCore

/// What SIGUSR1 does to a running `swiftvmm run` (until the control API takes over):
///
/// - `--snapshot-on-signal STATE,MEM[,diff][,exit]`: pause, write a snapshot (Full, or
///   Diff with `diff`), resume — or with `exit` stop the VM there (suspend to disk).
/// - `--migrate-on-signal ADDRESS`: live-migrate to a `run --migrate-from ADDRESS`; on
///   success this process ends 0, on failure the VM carries on here.
///
/// A thread waits for the signal (blocked in every other thread), so the work never runs
/// in a signal handler. (SIGUSR2 is the vCPU kick and cannot be used.)
final class SignalActions: @unchecked Sendable {
    enum Action {
        case snapshot(state: String, memory: String, type: SnapshotType, exit: Bool)
        case migrate(MigrationAddress)
    }

    let action: Action
    let vm: MicroVM

    init(snapshot text: String, vm: MicroVM) throws {
        var parts = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        let flags = parts.count > 2 ? Array(parts[2...]) : []
        parts = Array(parts.prefix(2))
        guard flags.allSatisfy({ $0 == "diff" || $0 == "exit" }) else {
            throw ValidationError("--snapshot-on-signal \(text): use STATE,MEM[,diff][,exit]")
        }
        let (state, memory) = try snapshotPaths(parts.joined(separator: ","), option: "--snapshot-on-signal")
        action = .snapshot(state: state, memory: memory, type: flags.contains("diff") ? .diff : .full, exit: flags.contains("exit"))
        self.vm = vm
        SignalActions.block()
    }

    init(migrate text: String, vm: MicroVM) throws {
        do { action = .migrate(try MigrationAddress(parsing: text)) } catch { throw ValidationError("--migrate-on-signal: \(error)") }
        self.vm = vm
        SignalActions.block()
    }

    /// Block before any VM thread exists, so every thread inherits it.
    private static func block() {
        var set = signals
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    static var signals: sigset_t {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGUSR1)
        return set
    }

    func start() throws {
        let box = Unmanaged.passRetained(self)
        var t = pthread_t()
        let r = pthread_create(&t, nil, { arg in
            let me = Unmanaged<SignalActions>.fromOpaque(arg!).takeRetainedValue()
            me.loop()
            return nil
        }, box.toOpaque())
        if r != 0 { box.release(); throw RuntimeFailure("cannot start the signal thread: \(errnoText(r))") }
        pthread_detach(t)
    }

    private func loop() {
        var set = SignalActions.signals
        while true {
            var signal: Int32 = 0
            guard sigwait(&set, &signal) == 0 else { continue }
            switch action {
            case let .snapshot(state, memory, type, exit): snapshot(state, memory, type, exit)
            case let .migrate(address): migrate(address)
            }
        }
    }

    private func snapshot(_ statePath: String, _ memoryPath: String, _ type: SnapshotType, _ exitAfter: Bool) {
        do {
            try vm.pause()
            defer { if !exitAfter { try? vm.resume() } }
            let r = try vm.createSnapshot(snapshotPath: statePath, memPath: memoryPath, type: type)
            let dirty = r.dirtyPages.map { ", \($0) dirty pages" } ?? ""
            warn("snapshot (\(type.rawValue)) written to \(statePath) and \(memoryPath) in "
                 + "\(milliseconds(Int64(r.milliseconds * 1e6))) ms\(dirty)")
            if exitAfter { vm.requestStop(.hostRequest("suspended to \(statePath)")) }
        } catch {
            warn("snapshot failed: \(error)")
            if exitAfter { vm.requestStop(.vmmError("snapshot failed: \(error)")) }
        }
    }

    private func migrate(_ address: MigrationAddress) {
        do {
            // The report is in the stop reason, which the main thread prints: this thread
            // may not get to run again before the process exits.
            _ = try vm.migrate(to: address)
        } catch {
            warn("migration to \(address) failed, the VM keeps running here: \(error)")
        }
    }
}

/// "STATE,MEM" → the two paths.
func snapshotPaths(_ text: String, option: String) throws -> (String, String) {
    let parts = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
    guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
        throw ValidationError("\(option) \(text): use STATE,MEM (the state file and the memory file)")
    }
    return (parts[0], parts[1])
}
