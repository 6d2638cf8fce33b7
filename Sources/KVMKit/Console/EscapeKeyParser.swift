/// The console escape key, as in QEMU: Ctrl-A followed by a command key. A pure state
/// machine over the bytes typed on the host terminal; what to do with a command is the
/// caller's business (the VMM quits, the attach client detaches, ...).
///
///     Ctrl-A x        quit (the VMM stops the VM and exits 0)
///     Ctrl-A d        detach (attach client: disconnect, the VM keeps running)
///     Ctrl-A h or ?   print help on the host terminal (never sent to the guest)
///     Ctrl-A Ctrl-A   send one literal Ctrl-A (0x01) to the guest
///     Ctrl-A other    swallowed, like QEMU
public struct EscapeKeyParser: Equatable, Sendable {
    public static let escapeByte: UInt8 = 0x01  // Ctrl-A

    public enum Command: Equatable, Sendable {
        case quit
        case detach
        case help
        /// Ctrl-A Ctrl-A: the guest should receive one 0x01.
        case literalEscape
        /// Ctrl-A then a key with no meaning: dropped.
        case unknown
    }

    public enum Output: Equatable, Sendable {
        /// An ordinary byte for the guest.
        case byte(UInt8)
        /// Nothing yet: Ctrl-A was typed, waiting for the command key.
        case pending
        /// Ctrl-A `key` was typed; `key` is the raw byte (for forwarding it verbatim).
        case command(Command, key: UInt8)
    }

    public private(set) var awaitingCommand = false

    public init() {}

    public mutating func feed(_ byte: UInt8) -> Output {
        if !awaitingCommand {
            if byte == Self.escapeByte {
                awaitingCommand = true
                return .pending
            }
            return .byte(byte)
        }
        awaitingCommand = false
        return .command(Self.command(forKey: byte), key: byte)
    }

    public static func command(forKey key: UInt8) -> Command {
        switch key {
        case UInt8(ascii: "x"), UInt8(ascii: "X"): return .quit
        case UInt8(ascii: "d"), UInt8(ascii: "D"): return .detach
        case UInt8(ascii: "h"), UInt8(ascii: "H"), UInt8(ascii: "?"): return .help
        case escapeByte: return .literalEscape
        default: return .unknown
        }
    }

    /// Help for the console's terminal; "\r\n" because the terminal is in raw mode.
    public static func helpText(detachAvailable: Bool) -> String {
        var lines = [
            "",
            "swiftvmm console escape keys:",
            "  Ctrl-A x        quit (stop the VM)",
        ]
        if detachAvailable { lines.append("  Ctrl-A d        detach (the VM keeps running)") }
        lines += [
            "  Ctrl-A h        this help",
            "  Ctrl-A Ctrl-A   send Ctrl-A to the guest",
            "",
        ]
        return lines.joined(separator: "\r\n")
    }
}
