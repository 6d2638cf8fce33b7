import ArgumentParser
import Glibc
import KVMKit

/// `swiftvmm attach PATH`: connect this terminal to a VM started with --serial socket:PATH.
struct AttachCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "attach",
        abstract: "Attach this terminal to a VM's console socket (run --serial socket:PATH).",
        discussion: """
            Keys: Ctrl-A d detach (the VM keeps running), Ctrl-A x stop the VM, Ctrl-A h help, \
            Ctrl-A Ctrl-A a literal Ctrl-A. Exit status: 0 after a detach or when the VM stops; \
            1 when the socket cannot be reached or is busy.
            """)

    @Argument(help: "The console socket path.")
    var path: String

    func run() throws {
        let client = ConsoleAttachClient(path: path)
        do {
            switch try client.run() {
            case .detached:
                fputs("\r\nswiftvmm: detached from \(path); the VM keeps running\r\n", stderr)
            case .closedByServer:
                break
            }
        } catch let e as ConsoleError {
            throw RuntimeFailure("\(e)")
        }
    }
}
