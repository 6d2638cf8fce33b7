/// One entry of a thread kind's seccomp allow-list: a system call by name, why the thread
/// needs it, and optionally the values one argument may take (ioctl request numbers,
/// fcntl commands). The reasons are what docs/sandbox.md lists.
public struct SyscallRule: Sendable, Equatable {
    public let name: String
    public let reason: String
    /// When set, the call is allowed only if this argument's low 32 bits (the kernel reads
    /// ioctl and fcntl commands as 32-bit) equal one of `allowedValues`.
    public let argumentIndex: Int?
    public let allowedValues: [NamedValue]

    public struct NamedValue: Sendable, Equatable {
        public let name: String
        public let value: UInt32
    }

    public init(_ name: String, _ reason: String) {
        self.name = name
        self.reason = reason
        argumentIndex = nil
        allowedValues = []
    }

    init(_ name: String, _ reason: String, argument: Int, allowed: [NamedValue]) {
        self.name = name
        self.reason = reason
        argumentIndex = argument
        allowedValues = allowed
    }
}
