import Foundation
import XCTest

/// A swiftvmm process serving the control API, with its console (stdout) in a file, driven
/// by Debian's curl over the Unix socket as any Firecracker client would.
final class ManagedVMProcess {
    let process = Process()
    let socket: String
    let consoleFile: String
    let stderrFile: String
    let directory: String

    /// `arguments` are swiftvmm's; `executable` defaults to the swiftvmm binary.
    init(arguments: (String) -> [String], executable: URL = swiftvmmExecutable()) throws {
        directory = NSTemporaryDirectory() + "swiftvmm-api-\(getpid())-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        socket = directory + "/api.sock"
        consoleFile = directory + "/console.log"
        stderrFile = directory + "/stderr.log"
        precondition(FileManager.default.createFile(atPath: consoleFile, contents: nil), "cannot create \(consoleFile)")
        precondition(FileManager.default.createFile(atPath: stderrFile, contents: nil), "cannot create \(stderrFile)")
        process.executableURL = executable
        process.arguments = arguments(socket)
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle(forWritingAtPath: consoleFile)
        process.standardError = FileHandle(forWritingAtPath: stderrFile)
        try process.run()
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
        try? FileManager.default.removeItem(atPath: directory)
    }

    var console: String { String(decoding: FileManager.default.contents(atPath: consoleFile) ?? Data(), as: UTF8.self) }
    var stderr: String { String(decoding: FileManager.default.contents(atPath: stderrFile) ?? Data(), as: UTF8.self) }

    /// Wait until the socket accepts requests (GET / answers).
    func waitForSocket(seconds: Double = 20) throws {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if FileManager.default.fileExists(atPath: socket), (try? curl("GET", "/"))?.status == 200 { return }
            if !process.isRunning { break }
            usleep(20_000)
        }
        XCTFail("the API socket never answered; stderr:\n\(stderr)")
        throw XCTSkip("no API socket")
    }

    /// One request through `curl --unix-socket`; the status and the body.
    @discardableResult
    func curl(_ method: String, _ path: String, _ body: String? = nil, maxTime: Int = 20) throws -> (status: Int, body: String) {
        var args = ["-sS", "--max-time", String(maxTime), "--unix-socket", socket, "-X", method, "-o", "-", "-w", "\n%{http_code}"]
        if let body { args += ["-H", "Content-Type: application/json", "--data-binary", body] }
        args.append("http://localhost\(path)")
        let r = try runProcess(URL(fileURLWithPath: "/usr/bin/curl"), args, timeout: TimeInterval(maxTime + 10))
        guard r.status == 0, let last = r.stdout.split(separator: "\n").last, let code = Int(last) else {
            throw NSError(domain: "curl", code: Int(r.status), userInfo: [NSLocalizedDescriptionKey: "curl failed: \(r.stderr)"])
        }
        let text = String(r.stdout.dropLast(last.count + 1))
        return (code, text)
    }

    /// The JSON object an answer carries.
    func json(_ method: String, _ path: String) throws -> [String: Any] {
        let r = try curl(method, path)
        XCTAssertEqual(r.status, 200, r.body)
        return (try JSONSerialization.jsonObject(with: Data(r.body.utf8)) as? [String: Any]) ?? [:]
    }

    /// Wait for the process to end and return its exit status.
    func waitForExit(seconds: Double = 30) -> Int32? {
        let end = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < end { usleep(20_000) }
        if process.isRunning { return nil }
        return process.terminationStatus
    }

    /// CPU seconds (user + system) the process has used, from /proc/PID/stat.
    var cpuSeconds: Double {
        guard let text = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")") else { return -1 }
        let fields = text[text.index(after: close)...].split(separator: " ")
        // After the command: state(0) … utime(11) stime(12), in clock ticks.
        guard fields.count > 12, let u = Double(fields[11]), let s = Double(fields[12]) else { return -1 }
        return (u + s) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    var openFileDescriptors: Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(process.processIdentifier)/fd").count) ?? -1
    }

    var threads: Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(process.processIdentifier)/task").count) ?? -1
    }
}

/// The `fault_message` of an error answer ("" when there is none).
func faultMessage(_ body: String) -> String {
    (try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: String])?["fault_message"] ?? ""
}

/// Every `count N` of complete console lines, in order.
func consoleCounts(_ text: String) -> [Int] {
    var lines = text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline)
    lines.removeLast()
    return lines.compactMap { $0.hasPrefix("count ") ? Int($0.dropFirst(6)) : nil }
}

func waitFor(_ seconds: Double, _ condition: () -> Bool) -> Bool {
    let end = Date().addingTimeInterval(seconds)
    while Date() < end {
        if condition() { return true }
        usleep(20_000)
    }
    return condition()
}
