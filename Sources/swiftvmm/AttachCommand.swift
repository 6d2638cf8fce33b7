import Glibc
import KVMKit

/// `swiftvmm attach PATH`: connect this terminal to a VM started with --serial socket:PATH.
struct AttachCommand {
    var path = ""

    static let command = CommandSpec<AttachCommand>(
        name: "attach",
        abstract: "Attach this terminal to a VM's console socket (run --serial socket:PATH).",
        discussion: """
            Keys: Ctrl-A d detach (the VM keeps running), Ctrl-A x stop the VM, Ctrl-A h help, \
            Ctrl-A Ctrl-A a literal Ctrl-A. Exit status: 0 after a detach or when the VM stops; \
            1 when the socket cannot be reached or is busy; 2 on a usage error.
            """,
        arguments: [CommandArgument(name: "PATH", help: "The console socket path.") { $0.path = $1 }])

    func run() throws {
        let client = ConsoleAttachClient(path: path)
        do {
            switch try client.run() {
            case .detached:
                StandardError.write("\r\nswiftvmm: detached from \(path); the VM keeps running\r\n")
            case .closedByServer:
                break
            }
        } catch let e as ConsoleError {
            throw RuntimeFailure("\(e)")
        }
    }
}
