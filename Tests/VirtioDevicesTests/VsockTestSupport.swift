import Foundation
@testable import KVMKit
@testable import VirtioDevices

/// A Unix socket listener at `path` for a host program in a test.
func listenUnix(_ path: String) -> Int32 {
    unlink(path)
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    _ = try! UnixSocketAddress.withAddress(path) { bind(fd, $0, $1) }
    listen(fd, 8)
    return fd
}

/// A blocking client connection to `path`.
func connectUnix(_ path: String) -> Int32 {
    let (fd, e) = try! UnixSocketAddress.connect(path)
    precondition(fd >= 0, "connect \(path): errno \(e)")
    return fd
}

func writeAll(_ fd: Int32, _ bytes: [UInt8]) {
    var done = 0
    while done < bytes.count {
        let n = bytes[done...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        precondition(n > 0)
        done += n
    }
}

/// Read what is there now (non-blocking after the first `wait` ms of poll).
func readAvailable(_ fd: Int32, wait: Int32 = 200) -> [UInt8] {
    var out: [UInt8] = []
    var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
    var timeout = wait
    while poll(&p, 1, timeout) > 0 {
        var buf = [UInt8](repeating: 0, count: 65536)
        let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
        if n <= 0 { break }
        out += buf[0..<n]
        timeout = 20
    }
    return out
}

/// A vsock device on a fake guest (CID 3), driven like Linux's virtio_vsock: rx (slot
/// 0), tx (slot 1), event (slot 2) queues of 16.
final class VsockBed {
    let g: FakeGuest
    let dir: String
    let vsock: VirtioVsock
    let t: VirtioMMIOTransport
    let d: MMIODriver
    /// A restored bed shares the guest and directory of the one it came from.
    private let ownsDir: Bool
    var tx: ExtraRing { ExtraRing(g: g, slot: 1) }
    private var txSent = 0
    private var rxPosted = 0
    private var rxSeen = 0
    private var rxBuffers: [UInt64] = []
    var path: String { dir + "/v.sock" }

    init() throws {
        g = FakeGuest()
        ownsDir = true
        dir = NSTemporaryDirectory() + "vsock-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        vsock = try VirtioVsock(options: VsockOptions(cid: 3, udsPath: dir + "/v.sock"))
        try vsock.listen()
        t = try VirtioMMIOTransport(device: vsock, memory: g.memory, interrupt: RecordingLine(), notify: .inline)
        d = MMIODriver(t: t)
        _ = d.negotiate(VirtioFeature.version1)
        d.setupQueue(0, size: g.queueSize, desc: g.descTable, avail: g.avail, used: g.used)
        d.setupQueue(1, size: 16, desc: tx.desc, avail: tx.avail, used: tx.used)
        let ev = ExtraRing(g: g, slot: 2)
        d.setupQueue(2, size: 16, desc: ev.desc, avail: ev.avail, used: ev.used)
        d.driverOK()
        postReceive(8)
    }

    /// The device `old` is, saved (encoded and decoded) and rebuilt on the same guest, as
    /// a restore in a new process does: `old`'s socket file is released first.
    init(restoring old: VsockBed) throws {
        let transport = try VirtioTransportState(decoding: old.t.captureState().encodedBytes, context: "test")
        let state = try VirtioVsockState(decoding: old.vsock.captureState().encodedBytes, context: "test")
        old.vsock.removeSocketFile()
        g = old.g; dir = old.dir; ownsDir = false
        txSent = old.txSent; rxPosted = old.rxPosted; rxSeen = old.rxSeen; rxBuffers = old.rxBuffers
        vsock = try VirtioVsock(state: state, options: VsockOptions(cid: state.guestCID, udsPath: state.udsPath))
        try vsock.listen()
        t = try VirtioMMIOTransport(state: transport, device: vsock, memory: g.memory, interrupt: RecordingLine(), notify: .inline)
        d = MMIODriver(t: t)
    }

    deinit { if ownsDir { try? FileManager.default.removeItem(atPath: dir) } }

    /// Post `n` receive buffers of header + 4 KiB (one descriptor each), as Linux does.
    func postReceive(_ n: Int) {
        for _ in 0..<n {
            let slot = rxPosted % Int(g.queueSize)
            if rxBuffers.count <= slot { rxBuffers.append(g.alloc(44 + 4096)) }
            g.publish(g.chain(at: slot, [(rxBuffers[slot], 44 + 4096, true)]))
            rxPosted += 1
        }
    }

    /// A packet from the guest (header, then payload in its own descriptor).
    func send(_ op: VsockHeader.Op, src: UInt32, dst: UInt32, payload: [UInt8] = [], flags: UInt32 = 0,
              bufAlloc: UInt32 = 256 * 1024, fwdCnt: UInt32 = 0, srcCID: UInt64 = 3) {
        let h = VsockHeader(srcCID: srcCID, dstCID: 2, srcPort: src, dstPort: dst, length: UInt32(payload.count), op: op,
                            flags: flags, bufAlloc: bufAlloc, fwdCnt: fwdCnt)
        var parts: [(UInt64, UInt32, Bool)] = [(g.put(h.bytes), 44, false)]
        if !payload.isEmpty { parts.append((g.put(payload), UInt32(payload.count), false)) }
        tx.publish(parts, at: (txSent * 2) % 16)
        txSent += 1
        d.notify(1)
    }

    /// Run the rx side (host events first) and return the packets the guest received,
    /// reposting their buffers.
    func receive() -> [(VsockHeader, [UInt8])] {
        vsock.ready.withLock { set in for fd in vsock.streamByFD.keys { set.insert(fd) } }
        d.notify(0)
        var out: [(VsockHeader, [UInt8])] = []
        while rxSeen != Int(g.usedIndex) {
            let e = g.usedElement(rxSeen)
            let bytes = g.bytes(at: rxBuffers[Int(e.id)], Int(e.len))
            let h = bytes.withUnsafeBytes { VsockHeader(bytes: $0) }!
            out.append((h, Array(bytes[44...])))
            rxSeen += 1
            postReceive(1)
        }
        return out
    }

    /// Note the listener ready (a host client connected), as the event loop would.
    func listenerReady() { vsock.ready.withLock { _ = $0.insert(vsock.listener) } }
}

enum UnixSocketTestRead {
    /// Everything until EOF (blocking; fails the wait after 5 s).
    static func all(_ fd: Int32) -> [UInt8] {
        var out: [UInt8] = []
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        while poll(&p, 1, 5000) > 0 {
            var buf = [UInt8](repeating: 0, count: 65536)
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { return out }
            out += buf[0..<n]
        }
        return out + Array(" (no EOF)".utf8)
    }
}
