import KVMKit

/// virtio-blk request types and status values (§5.2.6).
public enum BlockRequestType {
    public static let read: UInt32 = 0          // VIRTIO_BLK_T_IN
    public static let write: UInt32 = 1         // VIRTIO_BLK_T_OUT
    public static let flush: UInt32 = 4
    public static let getID: UInt32 = 8
    public static let discard: UInt32 = 11
    public static let writeZeroes: UInt32 = 13
}

public enum BlockStatus {
    public static let ok: UInt8 = 0
    public static let ioError: UInt8 = 1
    public static let unsupported: UInt8 = 2
}

/// One range of a DISCARD or WRITE_ZEROES request, in 512-byte sectors.
public struct BlockRange: Equatable {
    public var sector: UInt64
    public var sectors: UInt32
    /// WRITE_ZEROES: the device may deallocate the range.
    public var unmap: Bool
}

/// Why a request cannot be executed. Each maps to the status byte the guest gets.
public enum BlockRequestError: Error, Equatable, CustomStringConvertible {
    case headerTooShort(readable: UInt64)
    /// Data in the wrong direction for the type (a write-only buffer where the device
    /// must read, or the reverse).
    case wrongDirection(type: UInt32)
    case lengthNotMultipleOf512(UInt64)
    case outOfRange(sector: UInt64, sectors: UInt64, capacity: UInt64)
    case readOnly(type: UInt32)
    case unsupported(type: UInt32)
    case invalidSegments(length: UInt64)
    case tooManySegments(UInt64, max: UInt32)
    case rangeTooLarge(sectors: UInt32, max: UInt32)
    case reservedFlags(UInt32)
    case missingData(type: UInt32)

    public var status: UInt8 {
        switch self {
        case .unsupported, .reservedFlags: return BlockStatus.unsupported
        default: return BlockStatus.ioError
        }
    }

    public var description: String {
        switch self {
        case .headerTooShort(let n): return "request header needs 16 readable bytes, chain has \(n)"
        case .wrongDirection(let t): return "request type \(t) has data in the wrong direction"
        case .lengthNotMultipleOf512(let n): return "data length \(n) is not a multiple of 512"
        case .outOfRange(let s, let n, let c): return "sectors \(s)+\(n) are beyond the capacity of \(c) sectors"
        case .readOnly(let t): return "request type \(t) on a read-only disk"
        case .unsupported(let t): return "unsupported request type \(t)"
        case .invalidSegments(let n): return "range list of \(n) bytes is not a non-zero multiple of 16"
        case .tooManySegments(let n, let m): return "\(n) ranges, at most \(m) allowed"
        case .rangeTooLarge(let n, let m): return "range of \(n) sectors, at most \(m) allowed"
        case .reservedFlags(let f): return "range flags \(hex(f)) are not supported"
        case .missingData(let t): return "request type \(t) has no data buffer"
        }
    }
}

/// Limits the parser enforces, which the device also advertises in its config space.
public struct BlockLimits: Equatable {
    public var capacitySectors: UInt64
    public var readOnly: Bool
    public var maxDiscardSectors: UInt32 = 1 << 22
    public var maxDiscardSegments: UInt32 = 1
    public var maxWriteZeroesSectors: UInt32 = 1 << 22
    public var maxWriteZeroesSegments: UInt32 = 1

    public init(capacitySectors: UInt64, readOnly: Bool) {
        self.capacitySectors = capacitySectors; self.readOnly = readOnly
    }
}

/// A virtio-blk request parsed from a descriptor chain and validated against the
/// disk before anything is done with it. The chain is taken as the spec frames it
/// (§5.2.6.4: no assumption on descriptor boundaries): the first 16 readable bytes
/// are the header, the last writable byte is the status, the rest is the data.
public struct BlockRequest: Equatable {
    public enum Kind: Equatable {
        case read(sector: UInt64, into: [GuestBuffer])
        case write(sector: UInt64, from: [GuestBuffer])
        case flush
        case getID(into: [GuestBuffer])
        case discard([BlockRange])
        case writeZeroes([BlockRange])
    }

    public var kind: Kind
    /// Guest address of the status byte.
    public var status: UInt64

    /// The guest address of the status byte: the last byte of the writable part.
    /// nil if the chain has no writable byte, so no answer is possible.
    public static func statusAddress(of chain: DescriptorChain) -> UInt64? {
        guard let last = chain.buffers.last, last.isWritable else { return nil }
        return last.address + UInt64(last.length) - 1
    }

    /// Parse and validate `chain`; throws `BlockRequestError` (the guest gets its status)
    /// or `GuestMemoryError` for a header the walker validated but memory then refused.
    public static func parse(_ chain: DescriptorChain, memory: GuestMemory, limits: BlockLimits) throws -> BlockRequest {
        guard let status = statusAddress(of: chain) else { throw BlockRequestError.missingData(type: 0) }
        let readable = Array(chain.readable)
        var writable = Array(chain.writable)
        // Drop the status byte from the writable data.
        writable[writable.count - 1].length -= 1
        if writable[writable.count - 1].length == 0 { writable.removeLast() }

        let readableLength = readable.reduce(UInt64(0)) { $0 + UInt64($1.length) }
        guard readableLength >= 16 else { throw BlockRequestError.headerTooShort(readable: readableLength) }
        let (headerParts, readData) = split(readable, at: 16)
        let header = try gather(headerParts, memory: memory)
        let type = load(UInt32.self, header, 0)
        let sector = load(UInt64.self, header, 8)
        let readLength = readData.reduce(UInt64(0)) { $0 + UInt64($1.length) }
        let writeLength = writable.reduce(UInt64(0)) { $0 + UInt64($1.length) }

        switch type {
        case BlockRequestType.read, BlockRequestType.write:
            let isWrite = type == BlockRequestType.write
            guard (isWrite ? writeLength : readLength) == 0 else { throw BlockRequestError.wrongDirection(type: type) }
            let data = isWrite ? readData : writable
            let length = isWrite ? readLength : writeLength
            guard length % 512 == 0 else { throw BlockRequestError.lengthNotMultipleOf512(length) }
            try checkRange(sector, length / 512, limits)
            if isWrite && limits.readOnly { throw BlockRequestError.readOnly(type: type) }
            return BlockRequest(kind: isWrite ? .write(sector: sector, from: data) : .read(sector: sector, into: data), status: status)
        case BlockRequestType.flush:
            guard readLength == 0, writeLength == 0 else { throw BlockRequestError.wrongDirection(type: type) }
            return BlockRequest(kind: .flush, status: status)
        case BlockRequestType.getID:
            guard readLength == 0 else { throw BlockRequestError.wrongDirection(type: type) }
            guard writeLength > 0 else { throw BlockRequestError.missingData(type: type) }
            return BlockRequest(kind: .getID(into: writable), status: status)
        case BlockRequestType.discard, BlockRequestType.writeZeroes:
            let isDiscard = type == BlockRequestType.discard
            guard writeLength == 0 else { throw BlockRequestError.wrongDirection(type: type) }
            guard readLength > 0, readLength % 16 == 0 else { throw BlockRequestError.invalidSegments(length: readLength) }
            let maxSegments = isDiscard ? limits.maxDiscardSegments : limits.maxWriteZeroesSegments
            guard readLength / 16 <= UInt64(maxSegments) else {
                throw BlockRequestError.tooManySegments(readLength / 16, max: maxSegments)
            }
            let bytes = try gather(readData, memory: memory)
            var ranges: [BlockRange] = []
            for i in 0..<bytes.count / 16 {
                let r = BlockRange(sector: load(UInt64.self, bytes, 16 * i), sectors: load(UInt32.self, bytes, 16 * i + 8),
                                   unmap: load(UInt32.self, bytes, 16 * i + 12) & 1 != 0)
                let flags = load(UInt32.self, bytes, 16 * i + 12)
                // Discard has no flags; WRITE_ZEROES has only unmap (bit 0).
                if flags & (isDiscard ? ~0 : ~1) != 0 { throw BlockRequestError.reservedFlags(flags) }
                let max = isDiscard ? limits.maxDiscardSectors : limits.maxWriteZeroesSectors
                if r.sectors > max { throw BlockRequestError.rangeTooLarge(sectors: r.sectors, max: max) }
                try checkRange(r.sector, UInt64(r.sectors), limits)
                ranges.append(r)
            }
            if limits.readOnly { throw BlockRequestError.readOnly(type: type) }
            return BlockRequest(kind: isDiscard ? .discard(ranges) : .writeZeroes(ranges), status: status)
        default:
            throw BlockRequestError.unsupported(type: type)
        }
    }

    private static func checkRange(_ sector: UInt64, _ sectors: UInt64, _ limits: BlockLimits) throws {
        let (end, over) = sector.addingReportingOverflow(sectors)
        if over || end > limits.capacitySectors {
            throw BlockRequestError.outOfRange(sector: sector, sectors: sectors, capacity: limits.capacitySectors)
        }
    }

    /// Split buffers into the first `count` bytes and the rest.
    static func split(_ buffers: [GuestBuffer], at count: UInt64) -> ([GuestBuffer], [GuestBuffer]) {
        var head: [GuestBuffer] = [], tail: [GuestBuffer] = []
        var left = count
        for b in buffers {
            if left == 0 { tail.append(b); continue }
            if UInt64(b.length) <= left {
                head.append(b); left -= UInt64(b.length)
            } else {
                let n = UInt32(left)
                head.append(GuestBuffer(address: b.address, length: n, isWritable: b.isWritable))
                tail.append(GuestBuffer(address: b.address + UInt64(n), length: b.length - n, isWritable: b.isWritable))
                left = 0
            }
        }
        return (head, tail)
    }

    /// Copy guest buffers into host bytes (small: headers and range lists only).
    static func gather(_ buffers: [GuestBuffer], memory: GuestMemory) throws -> [UInt8] {
        var out: [UInt8] = []
        for b in buffers { out += try memory.readBytes(at: b.address, count: Int(b.length)) }
        return out
    }

    static func load<T: FixedWidthInteger>(_: T.Type, _ bytes: [UInt8], _ at: Int) -> T {
        var v: T = 0
        for i in 0..<MemoryLayout<T>.size { v |= T(bytes[at + i]) << (8 * i) }
        return v
    }
}
