/// One stream between a host socket and a guest port, as a pure value: the state
/// machine of virtio-vsock (§5.10.6.6) and both directions' credit (§5.10.6.3).
///
/// Host → guest bytes may be sent while the guest has room: `peerFree` =
/// peer buf_alloc − (bytes sent − peer fwd_cnt). Guest → host bytes are taken into a
/// buffer of `bufAlloc` bytes per connection; `fwdCnt` counts those handed to the host
/// socket, and the guest learns it from every header (and from CREDIT_UPDATEs), so a
/// host client that stops reading stops only its own guest sender.
public struct VsockConnection: Equatable, Sendable {
    public enum State: Equatable, Sendable {
        /// Host-initiated: REQUEST sent, waiting for the guest's RESPONSE.
        case connecting
        case established
        /// Closed both ways by the guest, or reset: waiting to be removed once the bytes
        /// still buffered for the host are written (or dropped on reset).
        case closing
        case closed
    }

    /// What the caller must do after an event.
    public enum Action: Equatable, Sendable {
        /// Send a control packet of this op to the guest (flags for SHUTDOWN).
        case send(VsockHeader.Op, flags: UInt32)
        /// Tell the host client "OK <localPort>\n" (host-initiated connection accepted).
        case acceptedByGuest
        /// Close the host socket and forget the connection.
        case close
        /// Drop the packet: it does not fit the state (counted by the caller).
        case ignore
    }

    public let localPort: UInt32
    public let peerPort: UInt32
    public let bufAlloc: UInt32
    public private(set) var state: State
    /// Guest → host: bytes received (wrapping) and bytes forwarded to the host.
    public private(set) var receivedCount: UInt32 = 0
    public private(set) var fwdCnt: UInt32 = 0
    /// fwd_cnt as last told to the guest (any packet's header carries it).
    public private(set) var advertisedFwdCnt: UInt32 = 0
    /// Host → guest: bytes sent (wrapping) and the guest's buffer as it last said.
    public private(set) var sentCount: UInt32 = 0
    public private(set) var peerBufAlloc: UInt32 = 0
    public private(set) var peerFwdCnt: UInt32 = 0
    /// SHUTDOWN flags the guest sent, and those we sent.
    public private(set) var peerShutdown: UInt32 = 0
    public private(set) var localShutdown: UInt32 = 0

    /// A connection the host asked for (CONNECT): starts `connecting`.
    public static func hostInitiated(localPort: UInt32, peerPort: UInt32, bufAlloc: UInt32) -> VsockConnection {
        VsockConnection(localPort: localPort, peerPort: peerPort, bufAlloc: bufAlloc, state: .connecting)
    }

    /// A guest REQUEST whose host listener accepted: established at once (RESPONSE goes out).
    public static func guestInitiated(_ request: VsockHeader, bufAlloc: UInt32) -> VsockConnection {
        var c = VsockConnection(localPort: request.dstPort, peerPort: request.srcPort, bufAlloc: bufAlloc, state: .established)
        c.updateCredit(request)
        return c
    }

    init(localPort: UInt32, peerPort: UInt32, bufAlloc: UInt32, state: State) {
        self.localPort = localPort; self.peerPort = peerPort; self.bufAlloc = bufAlloc; self.state = state
    }

    /// Bytes received from the guest and not yet forwarded to the host.
    public var buffered: UInt32 { receivedCount &- fwdCnt }

    /// How many bytes the guest can take now.
    public var peerFree: UInt32 {
        let inFlight = sentCount &- peerFwdCnt
        return inFlight >= peerBufAlloc ? 0 : peerBufAlloc - inFlight
    }

    /// Whether host data may go to the guest now.
    public var canSendToGuest: Bool {
        state == .established && peerShutdown & VsockHeader.shutdownReceive == 0 && localShutdown == 0 && peerFree > 0
    }

    /// A header from this connection's side (src = host), carrying our credit.
    public mutating func header(_ op: VsockHeader.Op, guestCID: UInt64, length: UInt32 = 0, flags: UInt32 = 0) -> VsockHeader {
        advertisedFwdCnt = fwdCnt
        return VsockHeader(srcCID: VsockHeader.hostCID, dstCID: guestCID, srcPort: localPort, dstPort: peerPort,
                           length: length, op: op, flags: flags, bufAlloc: bufAlloc, fwdCnt: fwdCnt)
    }

    private mutating func updateCredit(_ h: VsockHeader) {
        peerBufAlloc = h.bufAlloc
        peerFwdCnt = h.fwdCnt
    }

    /// A packet from the guest for this connection (its payload, for RW, is `h.length`
    /// bytes the caller takes into the host buffer when the answer is empty).
    public mutating func receive(_ h: VsockHeader) -> [Action] {
        guard state != .closed else { return [.ignore] }
        updateCredit(h)
        switch h.knownOp {
        case .response?:
            guard state == .connecting else { return reset() }
            state = .established
            return [.acceptedByGuest]
        case .rw?:
            guard state == .established, peerShutdown & VsockHeader.shutdownSend == 0 else { return reset() }
            // §5.10.6.3.1: the guest must not send more than our free space.
            guard UInt64(buffered) + UInt64(h.length) <= UInt64(bufAlloc) else { return reset() }
            receivedCount &+= h.length
            return []
        case .creditUpdate?:
            return []
        case .creditRequest?:
            return [.send(.creditUpdate, flags: 0)]
        case .shutdown?:
            peerShutdown |= h.flags & VsockHeader.shutdownBoth
            if peerShutdown == VsockHeader.shutdownBoth { state = .closing }
            return []
        case .reset?:
            state = .closed
            return [.close]
        case .request?, nil:
            return reset()
        }
    }

    /// Bytes of the buffer reached the host socket. A CREDIT_UPDATE goes out when the
    /// guest's view of our free space (from the fwd_cnt it last heard) is below a
    /// quarter of the buffer, so a sender about to stall hears of the room at once and
    /// a steady stream does not get an update per packet.
    public mutating func forwarded(_ n: UInt32) -> [Action] {
        fwdCnt &+= min(n, buffered)
        let guestViewFree = bufAlloc &- min(bufAlloc, receivedCount &- advertisedFwdCnt)
        if fwdCnt != advertisedFwdCnt && guestViewFree < bufAlloc / 4 && state == .established {
            return [.send(.creditUpdate, flags: 0)]
        }
        return []
    }

    /// Bytes sent to the guest in RW packets.
    public mutating func sentToGuest(_ n: UInt32) { sentCount &+= n }

    /// The host client sent EOF: the guest hears "no more data" (SHUTDOWN, send) and
    /// may still send to the host (a half-closed client reads the answer).
    public mutating func hostClosed() -> [Action] {
        switch state {
        case .connecting: return reset()
        case .established:
            guard localShutdown == 0 else { return [] }
            localShutdown = VsockHeader.shutdownSend
            return [.send(.shutdown, flags: VsockHeader.shutdownSend)]
        case .closing, .closed: return []
        }
    }

    /// The guest shut down both ways and every byte reached the host: finish with RST.
    public var finished: Bool { state == .closing && peerShutdown == VsockHeader.shutdownBoth && buffered == 0 }

    /// Give up on the connection: RST to the guest, close the host side.
    public mutating func reset() -> [Action] {
        state = .closed
        return [.send(.reset, flags: 0), .close]
    }
}
