import ArgumentParser
import KVMKit
import VMMCore

/// `swiftvmm snapshot --api-sock PATH STATE MEM`: snapshot a VM through its control API —
/// pause it if it runs, PUT /snapshot/create, resume it (unless --leave-paused).
/// Restore with `swiftvmm run --restore STATE,MEM` or PUT /snapshot/load.
struct SnapshotCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "snapshot", abstract: "Snapshot a VM through its API socket (pause, PUT /snapshot/create, resume).")
    @OptionGroup var socket: APISocketOption

    @Argument(help: "The state file to write.")
    var state: String

    @Argument(help: "The memory file to write.")
    var memory: String

    @Flag(help: "A Diff snapshot (the VM needs track_dirty_pages).")
    var diff = false

    @Flag(name: .customLong("leave-paused"), help: "Do not resume the VM afterwards.")
    var leavePaused = false

    func run() throws {
        let info: APIClient.Response
        do { info = try APIClient.send(socketPath: socket.path, method: "GET", path: "/") } catch { throw RuntimeFailure("\(error)") }
        let running = info.text.contains(#""Running""#)
        if running { try callAPI(socket.path, "PATCH", "/vm", #"{"state": "Paused"}"#) }
        let body = JSONValue.object(["snapshot_path": .string(state), "mem_file_path": .string(memory),
                                     "snapshot_type": .string(diff ? "Diff" : "Full")])
        defer { if running && !leavePaused { try? callAPI(socket.path, "PATCH", "/vm", #"{"state": "Resumed"}"#) } }
        try callAPI(socket.path, "PUT", "/snapshot/create", body.encoded())
    }
}
