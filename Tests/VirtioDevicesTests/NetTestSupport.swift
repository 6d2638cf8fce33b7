import Foundation
@testable import KVMKit
@testable import VirtioDevices

/// A backend in memory: frames queued for the guest, frames the guest sent.
final class FakeNetBackend: NetBackend {
    var inbound: [[UInt8]] = []
    var sent: [[UInt8]] = []
    var full = false
    var gone = false
    var offloads: UInt32?
    var pollFD: Int32 { -1 }

    func receive(into buffer: UnsafeMutableRawBufferPointer) throws(NetBackendError) -> Int? {
        if gone { throw .gone(name: "fake0") }
        guard !inbound.isEmpty else { return nil }
        let f = inbound.removeFirst()
        let n = min(f.count, buffer.count)
        for i in 0..<n { buffer[i] = f[i] }
        return n
    }

    func send(_ pieces: UnsafeBufferPointer<UnsafeRawBufferPointer>) throws(NetBackendError) -> Bool {
        if gone { throw .gone(name: "fake0") }
        if full { return false }
        sent.append(pieces.flatMap { Array($0) })
        return true
    }

    func setOffloads(_ flags: UInt32) throws(NetBackendError) { offloads = flags }
}

/// Another ring in a FakeGuest's memory (queue slot 1 by default: 64 KiB further).
struct ExtraRing {
    let g: FakeGuest
    var slot = 1
    let size: UInt16 = 16
    var base: UInt64 { FakeGuest.base + 0x10000 * UInt64(slot) }
    var desc: UInt64 { base }
    var avail: UInt64 { base + 0x4000 }
    var used: UInt64 { base + 0x8000 }

    func publish(_ parts: [(UInt64, UInt32, Bool)], at first: Int) {
        g.chain(at: first, parts, table: desc)
        let idx: UInt16 = try! g.memory.load(at: avail + 2)
        try! g.memory.store(UInt16(first), at: avail + 4 + 2 * UInt64(idx % size))
        try! g.memory.store(idx &+ 1, at: avail + 2)
    }
    var usedIndex: UInt16 { try! g.memory.load(at: used + 2) }
    func usedElement(_ i: Int) -> (id: UInt32, len: UInt32) {
        let at = used + 4 + 8 * UInt64(i % Int(size))
        return (try! g.memory.load(at: at), try! g.memory.load(at: at + 4))
    }
}

/// A frame with a zeroed virtio-net header in front: `count` bytes after the header.
func netFrame(_ count: Int, seed: UInt8 = 1) -> [UInt8] {
    [UInt8](repeating: 0, count: NetHeader.size) + (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ Int(seed)) }
}

/// A virtio-net device on a fake guest, started like Linux does it.
final class NetBed {
    let g = FakeGuest()
    let backend = FakeNetBackend()
    let net: VirtioNet
    let t: VirtioMMIOTransport
    let d: MMIODriver
    let line = RecordingLine()
    var tx: ExtraRing { ExtraRing(g: g) }
    var now: UInt64 = 0
    var reports: [String] = []
    var armed: [(Int, UInt64)] = []

    init(features: UInt64 = VirtioFeature.version1 | NetFeature.mergeableRxBuffers | NetFeature.mac,
         rxLimit: RateLimiterConfig = .init(), txLimit: RateLimiterConfig = .init()) {
        var clockBox: NetBed?
        var reportBox: NetBed?
        net = VirtioNet(backend: backend, mac: MACAddress("52:54:00:12:34:56")!, rxLimit: rxLimit, txLimit: txLimit,
                        clock: { clockBox?.now ?? 0 }, report: { reportBox?.reports.append($0) })
        t = try! VirtioMMIOTransport(device: net, memory: g.memory, interrupt: line, notify: .inline)
        d = MMIODriver(t: t)
        clockBox = self
        reportBox = self
        net.armTimer = { [unowned self] q, ns in self.armed.append((q, ns)) }
        _ = d.negotiate(features)
        d.setupQueue(0, size: g.queueSize, desc: g.descTable, avail: g.avail, used: g.used)
        d.setupQueue(1, size: 16, desc: tx.desc, avail: tx.avail, used: tx.used)
        d.driverOK()
    }

    /// Post a receive chain of writable buffers of these sizes at descriptor `first`.
    @discardableResult
    func postReceive(_ sizes: [UInt32], at first: Int) -> [UInt64] {
        let addrs = sizes.map { g.alloc(Int($0)) }
        g.publish(g.chain(at: first, zip(addrs, sizes).map { ($0, $1, true) }))
        return addrs
    }

    /// Put `frame` (header included) on the transmit ring in pieces of these sizes.
    func transmit(_ frame: [UInt8], pieces: [Int], at first: Int) {
        var parts: [(UInt64, UInt32, Bool)] = []
        var offset = 0
        for p in pieces {
            parts.append((g.put(Array(frame[offset..<offset + p])), UInt32(p), false))
            offset += p
        }
        tx.publish(parts, at: first)
    }
}
