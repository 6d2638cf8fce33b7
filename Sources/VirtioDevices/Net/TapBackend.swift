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
    /// The TUN_F_* flags last set (re-applied after `takeBack`).
    private var offloads: UInt32 = 0
    private var handedOver = false

    public init(name: String) throws(NetBackendError) {
        guard !name.isEmpty, name.utf8.count < 16, !name.contains(where: { $0 == "/" || $0 == ":" || $0 == " " || $0 == "," })
        else { throw .invalidName(name) }
        let existed = if_nametoindex(name) != 0
        fd = try Self.attach(name, existed: existed)
        self.name = name
        self.created = !existed
        iov = .allocate(capacity: Self.maxPieces)
    }

    /// A new fd on the tap, set up for virtio-net headers, no offloads yet.
    private static func attach(_ name: String, existed: Bool) throws(NetBackendError) -> Int32 {
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
        return fd
    }

    /// A tap without IFF_MULTI_QUEUE takes one process at a time (TUNSETIFF elsewhere
    /// fails with EBUSY while this fd holds it), so a migration on one host lets it go:
    /// /dev/null takes the fd's number (nothing else can get it), which closes the tap.
    /// A tap this process created goes away with it; the destination creates it again.
    public func handOver() throws(NetBackendError) {
        guard !handedOver else { return }
        let null = open("/dev/null", O_RDWR | O_CLOEXEC)
        if null < 0 { throw .setup(name: name, operation: "open /dev/null", errno: errno) }
        defer { close(null) }
        try Self.replace(fd, with: null, name)
        handedOver = true
    }

    /// `target` now refers to what `source` does (close-on-exec, as every fd here).
    private static func replace(_ target: Int32, with source: Int32, _ name: String) throws(NetBackendError) {
        let r = ckvm_dup3_cloexec(source, target)
        if r < 0 { throw .setup(name: name, operation: "dup3", errno: -r) }
    }

    /// Attach the tap again on the same fd number, with the offloads the guest had.
    public func takeBack() throws(NetBackendError) {
        guard handedOver else { return }
        let fresh = try Self.attach(name, existed: !created)  // no if_nametoindex: its ioctl is not in the control list
        defer { close(fresh) }
        try Self.replace(fd, with: fresh, name)
        handedOver = false
        try setOffloads(offloads)
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
        offloads = flags
    }

    /// EBADFD: the tap was deleted under us (the fd is detached from any device).
    private func classify(_ e: Int32, _ op: String) -> NetBackendError {
        e == EBADFD || e == ENODEV || e == ENXIO ? .gone(name: name) : .io(name: name, operation: op, errno: e)
    }
}
