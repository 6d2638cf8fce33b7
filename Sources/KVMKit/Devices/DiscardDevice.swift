/// A device that ignores writes and reads as all ones — the POST diagnostic port 0x80 that
/// firmware and Linux's `io_delay` write to, or any placeholder window. Stateless, lock-free.
public final class DiscardDevice: PortIODevice, MMIODevice, @unchecked Sendable {
    /// The POST code port.
    public static let postPort: UInt16 = 0x80

    public init() {}

    public func read(offset: UInt16, size: Int) -> UInt32 {
        switch size {
        case 1: return 0xFF
        case 2: return 0xFFFF
        default: return 0xFFFF_FFFF
        }
    }

    public func write(offset: UInt16, size: Int, value: UInt32) {}

    public func read(offset: UInt64, size: Int) -> UInt64 {
        switch size {
        case 1: return 0xFF
        case 2: return 0xFFFF
        case 4: return 0xFFFF_FFFF
        default: return .max
        }
    }

    public func write(offset: UInt64, size: Int, value: UInt64) {}
}

/// Port 0x80 by its usual name.
public typealias PostPort = DiscardDevice
