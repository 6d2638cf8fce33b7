import ArgumentParser
import Glibc
import KVMKit
import VMMCore

/// `run --snapshot-on-signal STATE,MEM[,diff][,exit]`: each SIGUSR1 takes a snapshot (Full,
/// or Diff with `diff`), with the VM paused for the time it takes and resumed after — or,
/// with `exit`, the VM stops there (suspend to disk: the process ends 0, holding nothing).
/// A thread waits for the signal (blocked everywhere else), so a snapshot never runs in a
/// signal handler. (SIGUSR2 is the vCPU kick, so it cannot be used here.)
final class SnapshotSignals: @unchecked Sendable {
    let statePath: String
    let memoryPath: String
    let exitAfter: Bool
    let type: SnapshotType
    let vm: MicroVM

    init(parsing text: String, vm: MicroVM) throws {
        var parts = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        let flags = parts.count > 2 ? Array(parts[2...]) : []
        parts = Array(parts.prefix(2))
        guard flags.allSatisfy({ $0 == "diff" || $0 == "exit" }) else {
            throw ValidationError("--snapshot-on-signal \(text): use STATE,MEM[,diff][,exit]")
        }
        exitAfter = flags.contains("exit")
        type = flags.contains("diff") ? .diff : .full
        (statePath, memoryPath) = try snapshotPaths(parts.joined(separator: ","), option: "--snapshot-on-signal")
        self.vm = vm
        // Block before any VM thread exists, so every thread inherits it.
        var set = SnapshotSignals.signals
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
            let me = Unmanaged<SnapshotSignals>.fromOpaque(arg!).takeRetainedValue()
            me.loop()
            return nil
        }, box.toOpaque())
        if r != 0 { box.release(); throw RuntimeFailure("cannot start the snapshot signal thread: \(errnoText(r))") }
        pthread_detach(t)
    }

    private func loop() {
        var set = SnapshotSignals.signals
        while true {
            var signal: Int32 = 0
            guard sigwait(&set, &signal) == 0 else { continue }
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
