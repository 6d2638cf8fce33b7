/// The state file: every non-memory part of a saved VM (vCPUs, in-kernel devices,
/// device models), as named sections behind a header that says what can read it.
///
///     offset  size  field
///     0       8     magic "SWVMSTAT"
///     8       4     format version (little-endian)
///     12      8     payload length
///     20      4     CRC-32 of the payload
///     24      …     payload: CPU features, then a counted list of (name, bytes) sections
///
/// Reading checks, in order: magic, version, length, checksum, then decodes the payload
/// with bounds checks everywhere, so a truncated, flipped or foreign file is one clear
/// error and never a crash.
public struct SnapshotFile: Equatable, Sendable {
    public static let magic: [UInt8] = Array("SWVMSTAT".utf8)
    /// 2: virtio-blk states say how the disk was opened (raw or qcow2).
    public static let formatVersion: UInt32 = 2
    public static let headerSize = 24
    /// No state file is anywhere near this (memory lives in its own file).
    public static let maximumPayload = 256 << 20

    public struct Section: Equatable, Sendable, StateCodable {
        public var name: String
        public var bytes: [UInt8]

        public init(name: String, bytes: [UInt8]) { self.name = name; self.bytes = bytes }
        public func encode(to w: inout StateWriter) { w.write(name); w.write(bytes: bytes) }
        public init(from r: inout StateReader) throws {
            name = try r.readString("section name")
            bytes = try r.readBytes("section \(name)")
        }
    }

    public var cpu: CPUFeatures
    public var sections: [Section]

    public init(cpu: CPUFeatures, sections: [Section] = []) {
        self.cpu = cpu
        self.sections = sections
    }

    public mutating func append(_ name: String, _ value: some StateCodable) {
        sections.append(Section(name: name, bytes: value.encodedBytes))
    }

    /// The bytes of section `name`.
    public func section(_ name: String) throws -> [UInt8] {
        guard let s = sections.first(where: { $0.name == name }) else { throw SnapshotFileError.missingSection(name) }
        return s.bytes
    }

    /// Decode section `name` as a `T`, which must fill it exactly.
    public func decode<T: StateCodable>(_ type: T.Type, section name: String) throws -> T {
        do { return try T(decoding: try section(name), context: "section \(name)") } catch let e as StateDecodingError {
            throw SnapshotFileError.malformed(e)
        }
    }

    public func encoded() -> [UInt8] {
        var payload = StateWriter()
        payload.write(cpu)
        payload.write(sections)
        var w = StateWriter()
        var out = SnapshotFile.magic
        w.write(SnapshotFile.formatVersion)
        w.write(UInt64(payload.bytes.count))
        w.write(CRC32.checksum(payload.bytes))
        out += w.bytes
        out += payload.bytes
        return out
    }

    public init(decoding bytes: [UInt8]) throws {
        guard bytes.count >= SnapshotFile.magic.count, Array(bytes.prefix(SnapshotFile.magic.count)) == SnapshotFile.magic else {
            throw SnapshotFileError.notAStateFile
        }
        guard bytes.count >= SnapshotFile.headerSize else { throw SnapshotFileError.truncated(expected: SnapshotFile.headerSize, actual: bytes.count) }
        var header = StateReader(Array(bytes[8..<SnapshotFile.headerSize]), context: "header")
        let version = try header.read(UInt32.self)
        guard version == SnapshotFile.formatVersion else {
            throw SnapshotFileError.unsupportedVersion(found: version, supported: SnapshotFile.formatVersion)
        }
        let length = try header.read(UInt64.self)
        let crc = try header.read(UInt32.self)
        guard length <= UInt64(SnapshotFile.maximumPayload) else { throw SnapshotFileError.payloadTooLarge(length) }
        let expected = SnapshotFile.headerSize + Int(length)
        guard bytes.count >= expected else { throw SnapshotFileError.truncated(expected: expected, actual: bytes.count) }
        guard bytes.count == expected else { throw SnapshotFileError.trailingBytes(expected: expected, actual: bytes.count) }
        let payload = Array(bytes[SnapshotFile.headerSize...])
        let actual = CRC32.checksum(payload)
        guard actual == crc else { throw SnapshotFileError.checksumMismatch(stored: crc, computed: actual) }
        do {
            var r = StateReader(payload, context: "state file")
            cpu = try r.read(CPUFeatures.self)
            sections = try r.readArray(Section.self, "sections", limit: 4096)
            try r.expectEnd()
        } catch let e as StateDecodingError {
            throw SnapshotFileError.malformed(e)
        }
    }
}

/// Why a state file cannot be used. Each case is one line for the user.
public enum SnapshotFileError: Error, Equatable, CustomStringConvertible {
    case notAStateFile
    case unsupportedVersion(found: UInt32, supported: UInt32)
    case payloadTooLarge(UInt64)
    case truncated(expected: Int, actual: Int)
    case trailingBytes(expected: Int, actual: Int)
    case checksumMismatch(stored: UInt32, computed: UInt32)
    case malformed(StateDecodingError)
    case missingSection(String)
    case incompatibleHost(String)

    public var description: String {
        switch self {
        case .notAStateFile: return "not a swiftvmm state file (bad magic)"
        case let .unsupportedVersion(found, supported):
            return "state file format version \(found) is not supported (this swiftvmm reads version \(supported))"
        case let .payloadTooLarge(n): return "state file claims a \(n)-byte payload, more than any swiftvmm writes"
        case let .truncated(expected, actual): return "state file is truncated: \(actual) bytes, expected \(expected)"
        case let .trailingBytes(expected, actual): return "state file has \(actual - expected) bytes after its end (expected \(expected))"
        case let .checksumMismatch(stored, computed):
            return "state file is corrupted: checksum \(hex(computed)) does not match the stored \(hex(stored))"
        case let .malformed(e): return "state file is malformed: \(e)"
        case let .missingSection(name): return "state file has no \(name) section"
        case let .incompatibleHost(why): return "state cannot run on this host: \(why)"
        }
    }
}
