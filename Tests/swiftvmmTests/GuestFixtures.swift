import Foundation
import TestSupport
import XCTest

/// The probe kernel built by `make -C guests probe` (make test builds it first).
func probeKernel(file: StaticString = #filePath, line: UInt = #line) throws -> String {
    let path = repositoryRoot().appendingPathComponent("guests/out/probe.bzImage").path
    guard FileManager.default.fileExists(atPath: path) else {
        throw missingPrerequisite("guests/out/probe.bzImage is missing: run make -C guests probe (make test does)",
                                  file: file, line: line)
    }
    return path
}

/// IEEE CRC32 (zlib's), as the probe computes it.
func crc32(_ data: [UInt8]) -> UInt32 {
    var table = [UInt32](repeating: 0, count: 256)
    for i in 0..<256 {
        var c = UInt32(i)
        for _ in 0..<8 { c = (c & 1) != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        table[i] = c
    }
    var crc: UInt32 = 0xFFFF_FFFF
    for b in data { crc = table[Int((crc ^ UInt32(b)) & 0xFF)] ^ (crc >> 8) }
    return crc ^ 0xFFFF_FFFF
}

/// A file in a fresh temporary directory, removed with the test case's temp dir.
func temporaryFile(_ name: String, bytes: [UInt8]) throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("swiftvmm-tests-\(getpid())-\(UUID().uuidString.prefix(8))")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let url = dir.appendingPathComponent(name)
    try Data(bytes).write(to: url)
    return url.path
}
