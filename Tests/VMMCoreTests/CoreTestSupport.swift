import Foundation
import KVMKit
import TestSupport
import VMMCore
import XCTest

/// The repository root (this file is Tests/VMMCoreTests/CoreTestSupport.swift).
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path

/// A prerequisite of a test is missing: skip visibly, or fail under CI=true.
func requirePrerequisite(_ ok: Bool, _ what: String, file: StaticString = #filePath, line: UInt = #line) throws {
    guard !ok else { return }
    throw missingPrerequisite(what, file: file, line: line)
}

/// /dev/kvm and the probe kernel, or a visible skip (a failure under CI=true).
func probeKernel() throws -> String {
    try requirePrerequisite((try? KVM()) != nil, "no usable /dev/kvm")
    let path = repositoryRoot + "/guests/out/probe.bzImage"
    try requirePrerequisite(FileManager.default.fileExists(atPath: path), "no probe kernel (make -C guests probe)")
    return path
}

/// A probe VM whose console goes to a file the test reads.
func probeVM(commandLine: String, memoryMiB: UInt64 = 64, cpus: Int = 1) throws -> (MicroVM, consoleFile: String) {
    let kernel = try probeKernel()
    let file = NSTemporaryDirectory() + "swiftvmm-core-\(UUID().uuidString).log"
    var c = VMConfiguration()
    c.bootSource = .init(kernelPath: kernel, bootArgs: commandLine)
    c.machine.memSizeMiB = memoryMiB
    c.machine.vcpuCount = cpus
    c.console.mode = .file(path: file)
    return (try MicroVM(configuration: c), file)
}

func readText(_ path: String) -> String {
    guard let data = FileManager.default.contents(atPath: path) else { return "" }
    return String(decoding: data, as: UTF8.self)
}

/// Poll `condition` every 10 ms until it holds or `seconds` pass.
@discardableResult
func waitUntil(_ seconds: Double, _ condition: () -> Bool) -> Bool {
    let end = Date().addingTimeInterval(seconds)
    while Date() < end {
        if condition() { return true }
        usleep(10_000)
    }
    return condition()
}

/// The last `count N` line the probe printed.
func lastCount(_ text: String) -> Int? {
    text.split(whereSeparator: \.isNewline).reversed().lazy.compactMap { line -> Int? in
        guard line.hasPrefix("count ") else { return nil }
        return Int(line.dropFirst(6))
    }.first
}

/// Every `count N` number in order, from complete lines only (a VM stopped by the host may
/// stop in the middle of a line).
func counts(_ text: String) -> [Int] {
    var lines = text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline)
    lines.removeLast()  // the unterminated rest ("" when the text ends with a newline)
    return lines.compactMap { $0.hasPrefix("count ") ? Int($0.dropFirst(6)) : nil }
}

/// CPU time (user + system) this process used so far, in seconds.
func processCPUSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
        + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
}

func openFileDescriptorCount() -> Int {
    (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? -1
}

func threadCount() -> Int {
    (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task").count) ?? -1
}
