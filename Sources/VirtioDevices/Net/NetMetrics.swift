/// Why a frame or a chain did not make it (counted in `NetMetrics.drops`).
public enum NetDropReason: Int, Error, CaseIterable, Sendable, CustomStringConvertible {
    /// A transmit chain shorter than the 12-byte header plus an Ethernet header.
    case transmitTooShort
    /// A transmit chain longer than the largest frame (64 KiB GSO plus headers).
    case transmitTooLarge
    /// A transmit chain with device-writable buffers (it must be read-only).
    case transmitWritable
    /// A receive chain with device-readable buffers or one too small for the header.
    case receiveChainInvalid
    /// A received frame that no set of receive buffers the guest can post would hold.
    case receiveTooLarge
    /// The tap refused a frame (its errno is in `lastError`).
    case tapRefused

    public var description: String {
        switch self {
        case .transmitTooShort: return "transmit chain shorter than header + Ethernet header"
        case .transmitTooLarge: return "transmit chain longer than 64 KiB + headers"
        case .transmitWritable: return "transmit chain with device-writable buffers"
        case .receiveChainInvalid: return "receive chain with readable buffers or smaller than the header"
        case .receiveTooLarge: return "received frame larger than the guest's receive buffers"
        case .tapRefused: return "the tap refused a frame"
        }
    }
}

/// Counters of one virtio-net device.
public struct NetMetrics: Equatable, Sendable {
    public var rxFrames: UInt64 = 0
    public var rxBytes: UInt64 = 0
    public var txFrames: UInt64 = 0
    public var txBytes: UInt64 = 0
    /// Drops by reason (index: `NetDropReason.rawValue`).
    public var drops = [UInt64](repeating: 0, count: NetDropReason.allCases.count)
    /// Times the receive path found no guest buffer for a waiting frame.
    public var rxNoBuffers: UInt64 = 0
    /// Times the tap could not take a frame right now (the frame waited).
    public var txTapFull: UInt64 = 0
    public var rxRateLimited: UInt64 = 0
    public var txRateLimited: UInt64 = 0
    /// The tap went away (deleted, or a read failed): the link is down.
    public var linkDownEvents: UInt64 = 0
    public var lastError: String?

    public func drops(_ r: NetDropReason) -> UInt64 { drops[r.rawValue] }
    mutating func drop(_ r: NetDropReason) { drops[r.rawValue] &+= 1 }
    public var totalDrops: UInt64 { drops.reduce(0, &+) }
}
