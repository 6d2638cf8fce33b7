/// The identity swiftvmm writes into every ACPI table header, and the header itself.
enum ACPIIdentity {
    static let oemID = "SWFTVM"  // 6 bytes
    static let oemTableID = "SWIFTVMM"  // 8 bytes
    static let oemRevision: UInt32 = 1
    static let creatorID = "SVMM"  // 4 bytes: the "compiler" that made the table
    static let creatorRevision: UInt32 = 1
}

/// A System Description Table: the 36-byte header (ACPI 6.5 §5.2.6) around `body`, with
/// Length and Checksum (offset 9, over the whole table) filled in.
func systemDescriptionTable(signature: String, revision: UInt8, body: [UInt8]) -> [UInt8] {
    var t = TableBytes()
    t.ascii(signature, length: 4)
    t.u32(UInt32(36 + body.count))  // Length
    t.u8(revision)
    t.u8(0)  // Checksum, fixed below
    t.ascii(ACPIIdentity.oemID, length: 6)
    t.ascii(ACPIIdentity.oemTableID, length: 8)
    t.u32(ACPIIdentity.oemRevision)
    t.ascii(ACPIIdentity.creatorID, length: 4)
    t.u32(ACPIIdentity.creatorRevision)
    t.append(body)
    t.fixChecksum(at: 9, over: 0..<t.count)
    return t.bytes
}

/// A Generic Address Structure (ACPI 6.5 §5.2.3.2), 12 bytes.
struct GenericAddress {
    enum Space: UInt8 {
        case systemMemory = 0
        case systemIO = 1
    }
    /// Access size field: 1 = byte, 2 = word, 3 = dword, 4 = qword.
    enum AccessSize: UInt8 {
        case undefined = 0, byte = 1, word = 2, dword = 3, qword = 4
    }

    var space: Space
    var bitWidth: UInt8
    var bitOffset: UInt8 = 0
    var accessSize: AccessSize
    var address: UInt64

    /// An 8-bit register at an I/O port, accessed as a byte.
    static func ioPort8(_ port: UInt16) -> GenericAddress {
        GenericAddress(space: .systemIO, bitWidth: 8, accessSize: .byte, address: UInt64(port))
    }

    /// The all-zero GAS meaning "not present".
    static let none = GenericAddress(space: .systemMemory, bitWidth: 0, accessSize: .undefined, address: 0)

    func append(to t: inout TableBytes) {
        t.u8(space.rawValue)
        t.u8(bitWidth)
        t.u8(bitOffset)
        t.u8(accessSize.rawValue)
        t.u64(address)
    }
}
