import Glibc

/// A failed system call or ioctl, named, with the errno text.
public struct KVMError: Error, CustomStringConvertible, Equatable {
    /// The ioctl or syscall, e.g. "KVM_CREATE_VM" or "open /dev/kvm".
    public let operation: String
    public let errno: Int32

    public init(_ operation: String, errno: Int32) {
        self.operation = operation
        self.errno = errno
    }

    public var description: String { "\(operation) failed: \(errnoText(errno))" }
}

/// Call a CKVM function that returns the result or -errno.
@inline(__always)
func check(_ operation: @autoclosure () -> String, _ result: Int32) throws -> Int32 {
    if result < 0 { throw KVMError(operation(), errno: -result) }
    return result
}
