import ArgumentParser
import Glibc
import KVMKit
import VMMCore

/// The control API for a person: `swiftvmm info|pause|resume|stop|metrics|config
/// --api-sock PATH`, and `swiftvmm api METHOD PATH [BODY]` for any endpoint. Each prints
/// the answer (JSON, pretty) and exits 0 on success, 1 with the API's fault message on
/// stderr when the request was refused or the socket cannot be reached.
struct APISocketOption: ParsableArguments {
    @Option(name: .customLong("api-sock"), help: "The VM's API socket (swiftvmm run --api-sock, or Firecracker's --api-sock).")
    var path: String
}

func callAPI(_ socket: String, _ method: String, _ path: String, _ body: String? = nil) throws {
    let response: APIClient.Response
    do {
        response = try APIClient.send(socketPath: socket, method: method, path: path, body: body)
    } catch {
        throw RuntimeFailure("\(error)")
    }
    let text: String
    if let json = try? JSONParser.parse(response.body) {
        if (200..<300).contains(response.status) {
            print(json.encoded(pretty: true))
            return
        }
        if case .object(let o) = json, case .string(let m)? = o["fault_message"] { text = m } else { text = json.encoded() }
    } else {
        if (200..<300).contains(response.status) {
            if !response.body.isEmpty { print(response.text) }
            return
        }
        text = response.text
    }
    throw RuntimeFailure("\(method) \(path): \(response.status) \(text)")
}

struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "info", abstract: "Show a VM's id and state (GET /).")
    @OptionGroup var socket: APISocketOption
    func run() throws { try callAPI(socket.path, "GET", "/") }
}

struct PauseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "pause", abstract: "Pause a running VM (PATCH /vm Paused).")
    @OptionGroup var socket: APISocketOption
    func run() throws { try callAPI(socket.path, "PATCH", "/vm", #"{"state": "Paused"}"#) }
}

struct ResumeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "resume", abstract: "Resume a paused VM (PATCH /vm Resumed).")
    @OptionGroup var socket: APISocketOption
    func run() throws { try callAPI(socket.path, "PATCH", "/vm", #"{"state": "Resumed"}"#) }
}

struct StopCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stop", abstract: "Ask the guest to shut down: Ctrl-Alt-Del on its keyboard (PUT /actions SendCtrlAltDel).",
        discussion: "Linux reboots on Ctrl-Alt-Del; with reboot=k (the default command line) the VM then stops.")
    @OptionGroup var socket: APISocketOption
    func run() throws { try callAPI(socket.path, "PUT", "/actions", #"{"action_type": "SendCtrlAltDel"}"#) }
}

struct MetricsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "metrics", abstract: "Show every device's counters (GET /metrics).")
    @OptionGroup var socket: APISocketOption
    func run() throws { try callAPI(socket.path, "GET", "/metrics") }
}

struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "config", abstract: "Show the VM's configuration (GET /vm/config).")
    @OptionGroup var socket: APISocketOption
    func run() throws { try callAPI(socket.path, "GET", "/vm/config") }
}

struct APICommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "api", abstract: "Send any request to a VM's API.",
        discussion: """
            The body is one JSON argument, or fields in httpie's style: NAME=TEXT for a string,             NAME:=JSON for any other value. For example:
              swiftvmm api --api-sock S PUT /machine-config vcpu_count:=2 mem_size_mib:=256
              swiftvmm api --api-sock S PUT /boot-source kernel_image_path=vmlinuz 'boot_args=console=ttyS0'
              swiftvmm api --api-sock S PATCH /vm '{"state": "Paused"}'
            """)
    @OptionGroup var socket: APISocketOption
    @Argument(help: "GET, PUT or PATCH.") var method: String
    @Argument(help: "The path, e.g. /machine-config.") var path: String
    @Argument(help: "A JSON body, or NAME=TEXT / NAME:=JSON fields.") var body: [String] = []

    func run() throws {
        guard ["GET", "PUT", "PATCH"].contains(method.uppercased()) else { throw ValidationError("\(method): use GET, PUT or PATCH") }
        try callAPI(socket.path, method.uppercased(), path, try Self.makeBody(body))
    }

    /// nil (no body), the one JSON argument, or an object built from NAME=… fields.
    static func makeBody(_ words: [String]) throws -> String? {
        if words.isEmpty { return nil }
        if words.count == 1, let first = words[0].first, first == "{" || first == "[" { return words[0] }
        var object = JSONObject()
        for w in words {
            // The first "=" splits name and value; ":=" (a colon just before it) means JSON.
            guard let eq = w.firstIndex(of: "="), eq != w.startIndex else {
                throw ValidationError("\(w): expected NAME=TEXT or NAME:=JSON (or a single JSON body)")
            }
            let before = w.index(before: eq)
            let value = String(w[w.index(after: eq)...])
            if w[before] == ":" {
                do { object[String(w[..<before])] = try JSONParser.parse(value) } catch {
                    throw ValidationError("\(w): the value after := is not JSON (\(error))")
                }
            } else {
                object[String(w[..<eq])] = .string(value)
            }
        }
        return JSONValue.object(object).encoded()
    }
}
