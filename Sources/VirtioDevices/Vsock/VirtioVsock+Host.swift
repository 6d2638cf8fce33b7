import Glibc
import KVMKit

/// The host side and the receive queue: accept clients, read CONNECT lines, move host
/// bytes and control packets into the guest's receive buffers.
extension VirtioVsock {
    func serviceHost() {
        let fds = ready.withLock { set -> Set<Int32> in defer { set.removeAll() }; return set }
        for fd in fds {
            if fd == listener { acceptClients() }
            else if handshakes[fd] != nil { readHandshake(fd) }
            else if let key = streamByFD[fd], let s = streams[key] {
                s.hostReadable = true
                flushToHost(key, s)
            }
        }
    }

    private func acceptClients() {
        while true {
            let fd = VsockHostSocket.accept(listener)
            if fd < 0 { return }
            handshakes[fd] = []
            watch(fd)
            readHandshake(fd)
        }
    }

    /// `CONNECT <port>\n`, read a byte at a time so nothing after the line is consumed.
    private func readHandshake(_ fd: Int32) {
        guard var line = handshakes[fd] else { return }
        var byte: UInt8 = 0
        while true {
            let r = withUnsafeMutableBytes(of: &byte) { VsockHostSocket.read(fd, into: $0) }
            guard let n = r else { handshakes[fd] = line; return }
            if n <= 0 { return dropClient(fd, bad: false) }
            if byte == UInt8(ascii: "\n") { break }
            line.append(byte)
            if line.count > 32 { return dropClient(fd, bad: true) }
        }
        handshakes[fd] = nil
        while line.last == UInt8(ascii: "\r") || line.last == UInt8(ascii: " ") { line.removeLast() }
        let text = String(decoding: line, as: UTF8.self)
        guard text.hasPrefix("CONNECT "), let port = UInt32(text.dropFirst(8)),
              streams.count < Self.maxConnections else { return dropClient(fd, bad: true) }
        var local = nextLocalPort
        while streams[Self.key(local: local, peer: port)] != nil { local &+= 1 }
        nextLocalPort = local &+ 1 < (1 << 30) ? 1 << 30 : local &+ 1
        let s = VsockStream(conn: .hostInitiated(localPort: local, peerPort: port, bufAlloc: Self.bufferSize), fd: fd)
        let key = Self.key(local: local, peer: port)
        streams[key] = s
        streamByFD[fd] = key
        order.append(key)
        metricsValue.hostConnections &+= 1
        sendControl(s, .request)
    }

    private func dropClient(_ fd: Int32, bad: Bool) {
        if bad { metricsValue.badHandshakes &+= 1 }
        handshakes[fd] = nil
        unwatch(fd)
        close(fd)
    }

    func fillReceiveQueue() throws {
        guard let queue = rxQueue, let memory else { return }
        while let chain = try queue.pop() {
            let room = chain.writableLength
            guard chain.readable.isEmpty, room >= UInt64(VsockHeader.size) else {
                metricsValue.invalidPackets &+= 1
                try queue.complete(chain, length: 0)
                continue
            }
            let maxData = Int(min(room - UInt64(VsockHeader.size), UInt64(Self.maxPayload)))
            guard let (header, count) = nextPacket(maxData: maxData) else {
                queue.undoPop()
                return
            }
            let written = try write(header.bytes, data: count, into: chain, memory)
            try queue.complete(chain, length: written)
        }
    }

    /// The next packet for the guest: a control packet, else host data (read into
    /// `scratch`) from the next ready stream, round-robin so no stream starves others.
    private func nextPacket(maxData: Int) -> (VsockHeader, Int)? {
        while true {
            if !control.isEmpty { return (control.removeFirst(), 0) }
            guard maxData > 0, !order.isEmpty else { return nil }
            var progressed = false
            for step in 0..<order.count {
                let key = order[(roundRobin + step) % order.count]
                guard let s = streams[key], s.hostReadable, s.conn.canSendToGuest else { continue }
                let limit = min(maxData, Int(s.conn.peerFree))
                let r = VsockHostSocket.read(s.fd, into: UnsafeMutableRawBufferPointer(rebasing: scratch[0..<limit]))
                guard let n = r else { s.hostReadable = false; continue }
                roundRobin = (roundRobin + step + 1) % max(1, order.count)
                if n > 0 {
                    let h = s.conn.header(.rw, guestCID: guestCID, length: UInt32(n))
                    s.conn.sentToGuest(UInt32(n))
                    metricsValue.bytesToGuest &+= UInt64(n)
                    return (h, n)
                }
                s.hostReadable = false
                apply(n == 0 ? s.conn.hostClosed() : s.conn.reset(), key, s)
                progressed = true
                break
            }
            if !progressed { return nil }
        }
    }

    /// Header then `data` bytes of scratch into the chain's writable buffers.
    private func write(_ header: [UInt8], data: Int, into chain: DescriptorChain, _ memory: GuestMemory) throws -> UInt32 {
        var offset = 0
        let total = header.count + data
        for b in chain.writable where offset < total {
            let n = min(Int(b.length), total - offset)
            let dst = try memory.slice(at: b.address, length: UInt64(n))
            var done = 0
            if offset < header.count {
                let h = min(n, header.count - offset)
                header.withUnsafeBytes { dst.baseAddress!.copyMemory(from: $0.baseAddress! + offset, byteCount: h) }
                done = h
            }
            if done < n {
                let from = offset + done - header.count
                (dst.baseAddress! + done).copyMemory(from: scratch.baseAddress! + from, byteCount: n - done)
            }
            offset += n
        }
        return UInt32(offset)
    }
}
