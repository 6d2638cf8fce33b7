import Glibc
import KVMKit

/// The transmit queue: packets from the guest.
extension VirtioVsock {
    func drainTransmitQueue() throws {
        guard let queue = txQueue, let memory else { return }
        var any = false
        while let chain = try queue.pop() {
            try handle(chain, memory)
            try queue.complete(chain, length: 0)
            any = true
        }
        if any { scheduleRx() }  // answers (RESPONSE, RST, credit) and newly granted credit
    }

    private func handle(_ chain: DescriptorChain, _ memory: GuestMemory) throws {
        let length = chain.readableLength
        guard chain.writable.isEmpty, length >= UInt64(VsockHeader.size) else { return invalid("malformed tx chain") }
        let raw = try VsockGuestBytes.gather(chain, memory, from: 0, count: VsockHeader.size)
        guard let h = raw.withUnsafeBytes({ VsockHeader(bytes: $0) }) else { return invalid("short header") }
        // Firecracker drops what is not from this guest to the host.
        guard h.srcCID == guestCID, h.dstCID == VsockHeader.hostCID else { return invalid("packet \(h.srcCID) -> \(h.dstCID)") }
        guard h.type == VsockHeader.typeStream, h.knownOp != nil else { return answerReset(h) }
        guard UInt64(h.length) <= length - UInt64(VsockHeader.size), Int(h.length) <= Self.maxPayload else {
            invalid("payload length \(h.length) beyond the chain")
            return answerReset(h)
        }
        let key = Self.key(local: h.dstPort, peer: h.srcPort)
        guard let s = streams[key] else { return newFromGuest(h) }
        let actions = s.conn.receive(h)
        if actions.isEmpty && h.knownOp == .rw && h.length > 0 {
            let pieces = try VsockGuestBytes.slices(chain, memory, from: VsockHeader.size, count: Int(h.length))
            return forwardToHost(key, s, pieces)
        }
        apply(actions, key, s)
        passShutdown(s)
        if s.conn.finished { finish(key, s) }
    }

    /// The guest sends no more: once its bytes are out, the host client reads EOF.
    func passShutdown(_ s: VsockStream) {
        guard !s.hostWriteShut, s.conn.peerShutdown & VsockHeader.shutdownSend != 0, s.toHost.isEmpty,
              s.conn.state != .closed else { return }
        shutdown(s.fd, Int32(SHUT_WR))
        s.hostWriteShut = true
    }

    /// A packet for no connection: a REQUEST dials the host listener `<path>_<port>`;
    /// anything else but RST is answered with RST.
    private func newFromGuest(_ h: VsockHeader) {
        guard h.knownOp == .request else {
            if h.knownOp != .reset { answerReset(h) }
            return
        }
        guard streams.count < Self.maxConnections else { return answerReset(h) }
        let fd = VsockHostSocket.connect("\(udsPath)_\(h.dstPort)")
        guard fd >= 0 else {
            metricsValue.refusedConnections &+= 1
            return answerReset(h)
        }
        let s = VsockStream(conn: .guestInitiated(h, bufAlloc: Self.bufferSize), fd: fd)
        let key = Self.key(local: h.dstPort, peer: h.srcPort)
        streams[key] = s
        streamByFD[fd] = key
        order.append(key)
        watch(fd)
        metricsValue.guestConnections &+= 1
        sendControl(s, .response)
    }

    /// RST for a packet that belongs to nothing (src/dst swapped).
    func answerReset(_ h: VsockHeader) {
        control.append(VsockHeader(srcCID: VsockHeader.hostCID, dstCID: guestCID, srcPort: h.dstPort, dstPort: h.srcPort, op: .reset))
        metricsValue.resets &+= 1
    }

    private func invalid(_ why: String) {
        metricsValue.invalidPackets &+= 1
        metricsValue.lastError = why
    }

    /// Guest bytes to the host socket: straight from guest memory while nothing waits,
    /// the rest into the connection's buffer (bounded by the credit the guest had).
    private func forwardToHost(_ key: UInt64, _ s: VsockStream, _ pieces: [UnsafeRawBufferPointer]) {
        var written = 0
        for (i, p) in pieces.enumerated() {
            if !s.toHost.isEmpty { s.toHost.append(p); continue }
            let n = VsockHostSocket.write(s.fd, p)
            if n < 0 { return apply(s.conn.reset(), key, s) }
            written += n
            if n < p.count {
                s.toHost.append(UnsafeRawBufferPointer(rebasing: p[n...]))
                for rest in pieces[(i + 1)...] { s.toHost.append(rest) }
                break
            }
        }
        metricsValue.bytesToHost &+= UInt64(written)
        apply(s.conn.forwarded(UInt32(written)), key, s)
    }

    /// Write what waits for the host; credit goes back to the guest as it drains.
    func flushToHost(_ key: UInt64, _ s: VsockStream) {
        var failed = false
        let n = s.toHost.drain { bytes in
            let n = VsockHostSocket.write(s.fd, bytes)
            if n < 0 { failed = true }
            return n
        }
        if failed { return apply(s.conn.reset(), key, s) }
        metricsValue.bytesToHost &+= UInt64(n)
        if n > 0 { apply(s.conn.forwarded(UInt32(n)), key, s) }
        passShutdown(s)
        if s.conn.finished { finish(key, s) }
    }

    /// The guest closed both ways and every byte reached the host: RST ends it.
    func finish(_ key: UInt64, _ s: VsockStream) {
        sendControl(s, .reset)
        removeStream(key)
    }

    func apply(_ actions: [VsockConnection.Action], _ key: UInt64, _ s: VsockStream) {
        for a in actions {
            switch a {
            case .send(let op, let flags): sendControl(s, op, flags: flags)
            case .acceptedByGuest:
                let ok = Array("OK \(s.conn.localPort)\n".utf8)
                let n = ok.withUnsafeBytes { VsockHostSocket.write(s.fd, $0) }
                if n != ok.count { apply(s.conn.reset(), key, s) }
            case .close: removeStream(key)
            case .ignore: invalid("packet for a closed connection")
            }
        }
    }
}

/// Reading a chain's readable bytes at an offset: as host slices or copied out.
enum VsockGuestBytes {
    static func slices(_ chain: DescriptorChain, _ memory: GuestMemory, from offset: Int, count: Int) throws -> [UnsafeRawBufferPointer] {
        var out: [UnsafeRawBufferPointer] = []
        var skip = offset, left = count
        for b in chain.readable where left > 0 {
            let len = Int(b.length)
            if skip >= len { skip -= len; continue }
            let n = min(len - skip, left)
            out.append(UnsafeRawBufferPointer(try memory.slice(at: b.address + UInt64(skip), length: UInt64(n))))
            left -= n
            skip = 0
        }
        return out
    }

    static func gather(_ chain: DescriptorChain, _ memory: GuestMemory, from offset: Int, count: Int) throws -> [UInt8] {
        try slices(chain, memory, from: offset, count: count).flatMap { Array($0) }
    }
}
