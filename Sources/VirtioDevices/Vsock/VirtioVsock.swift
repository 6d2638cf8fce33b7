import Glibc
import KVMKit
import Synchronization

/// virtio-vsock (§5.10) with Firecracker's hybrid host side: the host connects to a Unix
/// socket and writes `CONNECT <port>\n` (answered `OK <host_port>\n` once the guest
/// accepts), and a guest connecting to host port P reaches the socket `<path>_P`.
///
/// Queues: 0 rx (to the guest), 1 tx (from the guest), 2 event (only the transport
/// reset a restored device posts: host connections do not survive a new process).
/// All work runs in `process` on the event-loop thread: the listener and host streams
/// only mark themselves ready and kick the rx queue. Each connection buffers at most
/// its credit (`bufferSize`), so a host client that stops reading stalls only its own
/// guest sender, never the device.
public final class VirtioVsock: VirtioDevice {
    public static let rxQueue = 0, txQueue = 1, eventQueue = 2
    public static let queueSize: UInt16 = 256
    /// Per-connection receive buffer offered to the guest (buf_alloc).
    public static let bufferSize: UInt32 = 256 * 1024
    /// The largest payload either way (VIRTIO_VSOCK_MAX_PKT_BUF_SIZE).
    public static let maxPayload = 64 * 1024
    public static let maxConnections = 1024

    public let guestCID: UInt64
    public let udsPath: String
    /// The listening socket, from `listen()` on (-1 before).
    var listener: Int32 = -1

    // State below is touched in process/activate/reset (the transport's lock), under `activity`.
    var streams: [UInt64: VsockStream] = [:]
    var streamByFD: [Int32: UInt64] = [:]
    /// Round-robin order of streams for host → guest data.
    var order: [UInt64] = []
    var roundRobin = 0
    /// Accepted host clients still sending their CONNECT line.
    var handshakes: [Int32: [UInt8]] = [:]
    /// Control packets for the guest, in order.
    var control: [VsockHeader] = []
    var nextLocalPort: UInt32 = 1 << 30
    var metricsValue = VsockMetrics()
    var rxQueue: Virtqueue?
    var txQueue: Virtqueue?
    var eventQueue: Virtqueue?
    var memory: GuestMemory?
    /// A restored device owes the guest one transport-reset event (`VirtioVsock+Event`).
    var transportResetPending = false
    let scratch: UnsafeMutableRawBufferPointer

    let activity = Mutex<Bool>(false)
    let kick = Mutex<((Int) -> Void)?>(nil)
    /// fds the event loop saw ready (listener, handshakes, streams), for the next rx batch.
    let ready = Mutex<Set<Int32>>([])
    /// Hooks the event-loop wiring installs (no-ops in unit tests, which drive `hostReady`).
    var watch: (Int32) -> Void = { _ in }
    var unwatch: (Int32) -> Void = { _ in }
    var scheduleRx: () -> Void = {}
    var watchListener: (Int32) throws -> Void = { _ in }
    /// The socket path was handed to a migration's destination (`HostHandOver`).
    var handedOver = false

    /// Checks that the socket path is free (something live there is `inUse`); the
    /// socket itself is created by `listen()`, once nothing else can fail.
    public init(options: VsockOptions) throws(VsockError) {
        try VsockHostSocket.checkFree(options.udsPath)
        guestCID = options.cid
        udsPath = options.udsPath
        scratch = .allocate(byteCount: Self.maxPayload, alignment: 64)
    }

    deinit {
        for fd in Array(streamByFD.keys) + Array(handshakes.keys) { close(fd) }
        if listener >= 0 { close(listener); removeSocketFile() }
        scratch.deallocate()
    }

    /// Create the socket hosts connect to (mode 0600), replacing a stale one.
    public func listen() throws(VsockError) {
        guard listener < 0 else { return }
        listener = try VsockHostSocket.listen(at: udsPath)
        ready.withLock { _ = $0.insert(listener) }
    }

    /// Remove the listening socket's file (at VM exit; the process may never run deinit).
    public func removeSocketFile() {
        if listener >= 0 && UnixSocketAddress.fileType(udsPath) == S_IFSOCK { unlink(udsPath) }
    }

    public var metrics: VsockMetrics { activity.withLock { _ in metricsValue } }
    public var connectionCount: Int { activity.withLock { _ in streams.count } }

    public var deviceType: UInt32 { VirtioDeviceType.vsock }
    public var deviceFeatures: UInt64 { 0 }  // stream sockets only (no SEQPACKET)
    public var queueMaxSizes: [UInt16] { [Self.queueSize, Self.queueSize, 64] }

    /// guest_cid (u64): the only config field.
    public func readConfig(offset: Int, into buffer: UnsafeMutableRawBufferPointer) {
        for i in 0..<buffer.count {
            let at = offset + i
            buffer[i] = at < 8 ? UInt8(truncatingIfNeeded: guestCID >> (8 * UInt64(at))) : 0
        }
    }
    public func writeConfig(offset: Int, bytes: UnsafeRawBufferPointer) {}

    public func activate(_ a: VirtioActivation) throws {
        rxQueue = a.queues.first ?? nil
        txQueue = a.queues.count > 1 ? a.queues[1] : nil
        eventQueue = a.queues.count > 2 ? a.queues[2] : nil
        memory = a.memory
        kick.withLock { $0 = a.kick }
    }

    /// A driver reset forgets every connection (the guest's sockets are gone).
    public func reset() {
        rxQueue = nil; txQueue = nil; eventQueue = nil; memory = nil
        transportResetPending = false  // a reset driver has no connections to drop
        kick.withLock { $0 = nil }
        for key in Array(streams.keys) { removeStream(key) }
        control.removeAll()
    }

    public func process(queue index: Int) throws {
        try activity.withLock { paused in
            if paused { return }
            if index == Self.rxQueue {
                serviceHost()
                try fillReceiveQueue()
            } else if index == Self.txQueue {
                try drainTransmitQueue()
            } else if index == Self.eventQueue {
                try postTransportReset()
            }
        }
    }

    /// The event loop saw `fd` ready: note it and run the rx side.
    public func hostReady(_ fd: Int32) {
        ready.withLock { _ = $0.insert(fd) }
        let k = kick.withLock { $0 }
        k?(Self.rxQueue)
    }

    public func pause() { activity.withLock { $0 = true } }

    public func resume() {
        let owed = activity.withLock { paused in paused = false; return transportResetPending }
        let k = kick.withLock { $0 }
        k?(Self.rxQueue)
        k?(Self.txQueue)
        if owed { k?(Self.eventQueue) }
    }

    static func key(local: UInt32, peer: UInt32) -> UInt64 { UInt64(local) << 32 | UInt64(peer) }

    func removeStream(_ key: UInt64) {
        guard let s = streams.removeValue(forKey: key) else { return }
        streamByFD[s.fd] = nil
        order.removeAll { $0 == key }
        unwatch(s.fd)
        close(s.fd)
    }

    /// Queue a control packet for a connection's guest side.
    func sendControl(_ s: VsockStream, _ op: VsockHeader.Op, flags: UInt32 = 0) {
        control.append(s.conn.header(op, guestCID: guestCID, flags: flags))
        if op == .reset { metricsValue.resets &+= 1 }
    }
}

/// A connection and its host socket.
final class VsockStream {
    var conn: VsockConnection
    let fd: Int32
    var toHost = ByteQueue()
    /// The host socket may have data (edge-triggered: until a read says EAGAIN).
    var hostReadable = true
    /// The guest's SHUTDOWN(send) reached the host as shutdown(SHUT_WR).
    var hostWriteShut = false

    init(conn: VsockConnection, fd: Int32) { self.conn = conn; self.fd = fd }
}
