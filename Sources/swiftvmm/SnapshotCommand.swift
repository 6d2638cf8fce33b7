import KVMKit
import VMMCore

/// `swiftvmm snapshot --api-sock PATH STATE MEM`: snapshot a VM through its control API —
/// pause it if it runs, PUT /snapshot/create, resume it (unless --leave-paused).
/// Restore with `swiftvmm run --restore STATE,MEM` or PUT /snapshot/load.
struct SnapshotCommand {
    var socket: String?
    var state = ""
    var memory = ""
    var diff = false
    var leavePaused = false

    static let command = CommandSpec<SnapshotCommand>(
        name: "snapshot",
        abstract: "Snapshot a VM through its API socket (pause, PUT /snapshot/create, resume).",
        options: [
            .value("api-sock", "PATH", "The VM's API socket.") { $0.socket = $1 },
            .flag("diff", "A Diff snapshot (the VM needs track_dirty_pages).") { $0.diff = true },
            .flag("leave-paused", "Do not resume the VM afterwards.") { $0.leavePaused = true },
        ],
        arguments: [
            CommandArgument(name: "STATE", help: "The state file to write.") { $0.state = $1 },
            CommandArgument(name: "MEM", help: "The memory file to write.") { $0.memory = $1 },
        ])

    func run() throws {
        guard let socket else { throw ValidationError("snapshot: --api-sock PATH is required (swiftvmm snapshot --help)") }
        let info: APIClient.Response
        do { info = try APIClient.send(socketPath: socket, method: "GET", path: "/") } catch { throw RuntimeFailure("\(error)") }
        let running = info.text.contains(#""Running""#)
        if running { try callAPI(socket, "PATCH", "/vm", #"{"state": "Paused"}"#) }
        let body = JSONValue.object(["snapshot_path": .string(state), "mem_file_path": .string(memory),
                                     "snapshot_type": .string(diff ? "Diff" : "Full")])
        defer { if running && !leavePaused { try? callAPI(socket, "PATCH", "/vm", #"{"state": "Resumed"}"#) } }
        try callAPI(socket, "PUT", "/snapshot/create", body.encoded())
    }
}
