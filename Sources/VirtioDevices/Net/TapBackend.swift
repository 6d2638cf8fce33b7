import CKVM
import Glibc

/// A tap device (`/dev/net/tun`, IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, 12-byte vnet
/// header), attached by name; created for this process when it does not exist and the
/// process may (CAP_NET_ADMIN); a created tap goes away with the process.
public final class TapBackend: NetBackend {
    public let name: String
    /// The tap did not exist; this process created it.
    public let created: Bool
    private let fd: Int32
    /// iovecs for `send`, reused (a chain has at most a queue's worth of buffers).
    private let iov: UnsafeMutablePointer<iovec>
    private static let maxPieces = 1024

    public init(name: String) throws(NetBackendError) {
        guard !name.isEmpty, name.utf8.count < 16, !name.contains(where: { $0 == "/" || $0 == ":" || $0 == " " || $0 == "," })
        else { throw .invalidName(name) }
        let existed = if_nametoindex(name) != 0
        let fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC)
        if fd < 0 { throw .openTun(errno: errno) }
        var r = ckvm_tap_set_iff(fd, name)
        if r < 0 {
            close(fd)
            switch -r {
            case EBUSY: throw .busy(name: name)
            case EPERM, EACCES: throw existed ? .notPermitted(name: name) : .missing(name: name)
            default: throw .setup(name: name, operation: "TUNSETIFF", errno: -r)
            }
        }
        r = ckvm_tap_set_vnet_hdr_size(fd, Int32(NetHeader.size))
        if r == 0 { r = ckvm_tap_set_offload(fd, 0) }
        if r < 0 {
            close(fd)
            throw .setup(name: name, operation: "TUNSETVNETHDRSZ/TUNSETOFFLOAD", errno: -r)
        }
        self.fd = fd
        self.name = name
        self.created = !existed
        iov = .allocate(capacity: Self.maxPieces)
    }

    deinit {
        close(fd)
        iov.deallocate()
    }

    public var pollFD: Int32 { fd }

    public func receive(into buffer: UnsafeMutableRawBufferPointer) throws(NetBackendError) -> Int? {
        while true {
            let n = read(fd, buffer.baseAddress, buffer.count)
            if n >= 0 { return n }
            switch errno {
            case EINTR: continue
            case EAGAIN: return nil
            default: throw classify(errno, "read")
            }
        }
    }

    public func send(_ pieces: UnsafeBufferPointer<UnsafeRawBufferPointer>) throws(NetBackendError) -> Bool {
        let n = min(pieces.count, Self.maxPieces)
        for i in 0..<n {
            iov[i] = iovec(iov_base: UnsafeMutableRawPointer(mutating: pieces[i].baseAddress), iov_len: pieces[i].count)
        }
        while true {
            if writev(fd, iov, Int32(n)) >= 0 { return true }
            switch errno {
            case EINTR: continue
            case EAGAIN, ENOBUFS: return false
            default: throw classify(errno, "write")
            }
        }
    }

    public func setOffloads(_ flags: UInt32) throws(NetBackendError) {
        var r = ckvm_tap_set_offload(fd, flags)
        // Kernels without UFO on taps refuse the bit; take the rest.
        if r == -EINVAL && flags & CKVM_TUN_F_UFO != 0 { r = ckvm_tap_set_offload(fd, flags & ~CKVM_TUN_F_UFO) }
        if r < 0 { throw .setup(name: name, operation: "TUNSETOFFLOAD", errno: -r) }
    }

    /// EBADFD: the tap was deleted under us (the fd is detached from any device).
    private func classify(_ e: Int32, _ op: String) -> NetBackendError {
        e == EBADFD || e == ENODEV || e == ENXIO ? .gone(name: name) : .io(name: name, operation: op, errno: e)
    }
}
