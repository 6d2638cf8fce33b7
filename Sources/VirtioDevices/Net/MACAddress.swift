/// A 48-bit Ethernet address.
public struct MACAddress: Equatable, Hashable, Sendable, CustomStringConvertible {
    public let bytes: [UInt8]

    /// `aa:bb:cc:dd:ee:ff` (hex pairs, `:` or `-` separated); nil when malformed.
    public init?(_ text: String) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        let pieces = parts.count == 6 ? parts : text.split(separator: "-", omittingEmptySubsequences: false)
        guard pieces.count == 6 else { return nil }
        var b: [UInt8] = []
        for p in pieces {
            guard p.count == 2, let v = UInt8(p, radix: 16) else { return nil }
            b.append(v)
        }
        bytes = b
    }

    public init(bytes: [UInt8]) {
        var b = Array(bytes.prefix(6))
        b += [UInt8](repeating: 0, count: 6 - b.count)
        self.bytes = b
    }

    public var isMulticast: Bool { bytes[0] & 1 != 0 }

    /// A locally administered unicast address (02:…) derived from `seed` (e.g. the
    /// device index and the process id), so VMs started together differ.
    public static func local(seed: UInt64) -> MACAddress {
        var x = seed &* 0x9E37_79B9_7F4A_7C15
        x ^= x >> 29
        return MACAddress(bytes: [0x02, 0x5f] + (0..<4).map { UInt8(truncatingIfNeeded: x >> (8 * UInt64($0))) })
    }

    public var description: String {
        bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined(separator: ":")
    }
}
