import Foundation
import TestSupport
import XCTest

/// The swiftvmm executable built next to this test bundle (or $SWIFTVMM_BIN).
func swiftvmmExecutable() -> URL {
    if let p = ProcessInfo.processInfo.environment["SWIFTVMM_BIN"] { return URL(fileURLWithPath: p) }
    return URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("swiftvmm")
}

/// The repository root (Tests/swiftvmmTests/<this file> → ../..).
func repositoryRoot() -> URL {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
}

struct ProcessResult {
    let status: Int32
    let stdout: String
    let stderr: String
}

/// Run a program to completion with optional stdin bytes and a timeout (then SIGKILL).
@discardableResult
func runProcess(_ executable: URL, _ arguments: [String], stdin: Data? = nil, timeout: TimeInterval = 60,
                environment: [String: String]? = nil, currentDirectory: URL? = nil) throws -> ProcessResult {
    let p = Process()
    p.executableURL = executable
    p.arguments = arguments
    if let env = environment { p.environment = env }
    if let dir = currentDirectory { p.currentDirectoryURL = dir }
    let out = Pipe(), err = Pipe(), inp = Pipe()
    p.standardOutput = out
    p.standardError = err
    p.standardInput = stdin == nil ? FileHandle.nullDevice : inp
    final class Collected: @unchecked Sendable { var data = Data() }
    let outBox = Collected(), errBox = Collected()
    let group = DispatchGroup()
    group.enter()
    DispatchQueue.global().async { outBox.data = out.fileHandleForReading.readDataToEndOfFile(); group.leave() }
    group.enter()
    DispatchQueue.global().async { errBox.data = err.fileHandleForReading.readDataToEndOfFile(); group.leave() }
    try p.run()
    if let s = stdin {
        inp.fileHandleForWriting.write(s)
        try? inp.fileHandleForWriting.close()
    }
    let deadline = Date().addingTimeInterval(timeout)
    while p.isRunning && Date() < deadline { usleep(20_000) }
    if p.isRunning {
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        group.wait()
        let outData = outBox.data, errData = errBox.data
        throw NSError(domain: "swiftvmm-tests", code: 124, userInfo: [NSLocalizedDescriptionKey:
            "\(executable.lastPathComponent) \(arguments) timed out after \(timeout) s; output so far:\n\(String(decoding: outData, as: UTF8.self))\n\(String(decoding: errData, as: UTF8.self))"])
    }
    p.waitUntilExit()
    group.wait()
    return ProcessResult(status: p.terminationStatus, stdout: String(decoding: outBox.data, as: UTF8.self),
                         stderr: String(decoding: errBox.data, as: UTF8.self))
}

/// Skip visibly without /dev/kvm, but fail under CI=true.
func requireKVMDevice() throws {
    if FileManager.default.isReadableFile(atPath: "/dev/kvm") && FileManager.default.isWritableFile(atPath: "/dev/kvm") { return }
    throw missingPrerequisite("/dev/kvm is not usable (not readable and writable)")
}
