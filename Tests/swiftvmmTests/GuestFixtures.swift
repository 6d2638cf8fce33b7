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

/// The same probe kernel as an ELF with a PVH note (guests/out/probe.elf).
func probeELF(file: StaticString = #filePath, line: UInt = #line) throws -> String {
    let path = repositoryRoot().appendingPathComponent("guests/out/probe.elf").path
    guard FileManager.default.fileExists(atPath: path) else {
        throw missingPrerequisite("guests/out/probe.elf is missing: run make -C guests probe (make test does)", file: file, line: line)
    }
    return path
}

/// `text` plus the probe's `probe.cmdline_crc32=` token: the CRC32 of `text`, which the
/// probe's `cmdline` self-test recomputes over what it received before the token.
func probeCommandLine(_ text: String) -> String {
    text + " probe.cmdline_crc32=" + crc32Hex(Array(text.utf8))
}

/// CRC32 as 8 lowercase hex digits, as the probe prints and parses it.
func crc32Hex(_ data: [UInt8]) -> String {
    let h = String(crc32(data), radix: 16)
    return String(repeating: "0", count: 8 - h.count) + h
}

/// The 8 hex digits after `prefix` on the line that starts with it, as the probe printed them.
func printedValue(_ output: String, after prefix: String) -> String? {
    output.split(whereSeparator: { $0.isNewline }).first { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count).prefix(8)) }
}

/// IEEE CRC32 (zlib's), bit by bit from the polynomial, independent of the probe's
/// slice-by-4 tables (checked against the standard check value in GuestFixtureTests).
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
