import Glibc
import KVMKit
import VMMCore

/// The control API for a person: `swiftvmm info|pause|resume|stop|metrics|config|migrate
/// --api-sock PATH`, and `swiftvmm api METHOD PATH [BODY]` for any endpoint. Each prints
/// the answer (JSON, pretty) and exits 0 on success, 1 with the API's fault message on
/// stderr when the request was refused or the socket cannot be reached.
func callAPI(_ socket: String, _ method: String, _ path: String, _ body: String? = nil) throws {
    let response: APIClient.Response
    do {
        response = try APIClient.send(socketPath: socket, method: method, path: path, body: body,
                                      timeoutSeconds: responseTimeoutSeconds(method: method, path: path))
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

/// How long a client waits for the answer. The requests that answer when a long operation
/// is over wait an hour: a migration (sent or received: the receiver answers once the VM
/// has arrived, however late the source starts), and a snapshot written or loaded (it grows
/// with the guest). Every other request is answered at once, so 30 s means a stuck VMM.
func responseTimeoutSeconds(method: String, path: String) -> Int {
    let long = ["/vm.send-migration", "/vm.receive-migration", "/snapshot/create", "/snapshot/load"]
    return method == "PUT" && long.contains(path) ? 3600 : 30
}

/// One client subcommand: its table, and the request it sends.
struct ClientCommand {
    /// What every client subcommand parses: the socket, and for `api` the request.
    struct Options {
        var socket: String? = nil
        var method = ""
        var path = ""
        var body: [String] = []
        /// `migrate`: where to, and the pause to aim for.
        var destination: String? = nil
        var downtimeMillis: UInt64? = nil
    }

    let spec: CommandSpec<Options>
    /// The request from the parsed options: (method, path, body).
    let request: (Options) throws -> (String, String, String?)
    static let socketOption = CommandOption<Options>.value(
        "api-sock", "PATH", "The VM's API socket (swiftvmm run --api-sock, or Firecracker's --api-sock).") { $0.socket = $1 }

    static func fixed(_ name: String, _ abstract: String, discussion: String = "", _ method: String, _ path: String,
                      _ body: String? = nil) -> ClientCommand {
        ClientCommand(spec: CommandSpec(name: name, abstract: abstract, discussion: discussion, options: [socketOption]),
                      request: { _ in (method, path, body) })
    }

    static let all: [ClientCommand] = [
        fixed("info", "Show a VM's id and state (GET /).", "GET", "/"),
        fixed("pause", "Pause a running VM (PATCH /vm Paused).", "PATCH", "/vm", #"{"state": "Paused"}"#),
        fixed("resume", "Resume a paused VM (PATCH /vm Resumed).", "PATCH", "/vm", #"{"state": "Resumed"}"#),
        fixed("stop", "Ask the guest to shut down: Ctrl-Alt-Del on its keyboard (PUT /actions SendCtrlAltDel).",
              discussion: "Linux reboots on Ctrl-Alt-Del; with reboot=k (the default command line) the VM then stops.",
              "PUT", "/actions", #"{"action_type": "SendCtrlAltDel"}"#),
        fixed("metrics", "Show every device's counters (GET /metrics).", "GET", "/metrics"),
        fixed("config", "Show the VM's configuration (GET /vm/config).", "GET", "/vm/config"),
        ClientCommand(
            spec: CommandSpec(
                name: "migrate", abstract: "Live-migrate a running VM to another swiftvmm (PUT /vm.send-migration).",
                discussion: """
                    The destination is a `swiftvmm run --migrate-from URL`, or a VM never started that was told \
                    PUT /vm.receive-migration. Prints what the source reports: rounds, bytes sent, total time and \
                    downtime; the source's process then exits 0. On failure the VM keeps running where it was (exit 1).
                    """,
                options: [
                    socketOption,
                    .value("to", "URL", "The destination: unix:PATH or tcp:HOST:PORT.") { $0.destination = $1 },
                    .value("downtime", "MS", "The pause to aim for (default \(MicroVM.defaultMigrationDowntimeMillis)).") {
                        $0.downtimeMillis = try integerValue($1, option: "downtime")
                    },
                ]),
            request: { o in
                guard let to = o.destination else { throw ValidationError("migrate: --to URL is required (swiftvmm migrate --help)") }
                var body: JSONObject = ["destination_url": .string(to)]
                if let d = o.downtimeMillis { body["downtime_ms"] = JSONValue(d) }
                return ("PUT", "/vm.send-migration", JSONValue.object(body).encoded())
            }),
        ClientCommand(
            spec: CommandSpec(
                name: "api", abstract: "Send any request to a VM's API.",
                discussion: """
                    The body is one JSON argument, or fields in httpie's style: NAME=TEXT for a string,                     NAME:=JSON for any other value. For example:                     swiftvmm api --api-sock S PUT /machine-config vcpu_count:=2 mem_size_mib:=256
                    """,
                options: [socketOption],
                arguments: [
                    CommandArgument(name: "METHOD", help: "GET, PUT or PATCH.") { $0.method = $1 },
                    CommandArgument(name: "PATH", help: "The path, e.g. /machine-config.") { $0.path = $1 },
                    CommandArgument(name: "BODY", help: "A JSON body, or NAME=TEXT / NAME:=JSON fields.", variadic: true) { $0.body.append($1) },
                ]),
            request: { o in
                guard ["GET", "PUT", "PATCH"].contains(o.method.uppercased()) else { throw ValidationError("\(o.method): use GET, PUT or PATCH") }
                return (o.method.uppercased(), o.path, try makeBody(o.body))
            }),
    ]

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

extension ClientCommand.Options {
    func run(_ command: ClientCommand) throws {
        guard let socket else { throw ValidationError("\(command.spec.name): --api-sock PATH is required (swiftvmm \(command.spec.name) --help)") }
        let (method, path, body) = try command.request(self)
        try callAPI(socket, method, path, body)
    }
}
