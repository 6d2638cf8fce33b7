/// virtio-net feature bits (virtio 1.2 §5.1.3).
public enum NetFeature {
    public static let csum: UInt64 = 1 << 0        // the guest may send partially checksummed packets
    public static let guestCSUM: UInt64 = 1 << 1   // the guest takes partially checksummed packets
    public static let mtu: UInt64 = 1 << 3         // config mtu is valid
    public static let mac: UInt64 = 1 << 5         // config mac is valid
    public static let guestTSO4: UInt64 = 1 << 7   // the guest takes TSOv4 packets
    public static let guestTSO6: UInt64 = 1 << 8
    public static let guestUFO: UInt64 = 1 << 10
    public static let hostTSO4: UInt64 = 1 << 11   // the device takes TSOv4 packets from the guest
    public static let hostTSO6: UInt64 = 1 << 12
    public static let hostUFO: UInt64 = 1 << 14
    public static let mergeableRxBuffers: UInt64 = 1 << 15
    public static let status: UInt64 = 1 << 16     // config status is valid

    /// What this device offers: the header passes to and from the tap unchanged, so every
    /// offload the tap understands is offered both ways.
    public static let offered: UInt64 = csum | guestCSUM | mtu | mac | guestTSO4 | guestTSO6 | guestUFO
        | hostTSO4 | hostTSO6 | hostUFO | mergeableRxBuffers | status

    /// TUNSETOFFLOAD bits for the guest's receive offloads: what the tap may hand us.
    public static func tapOffloads(accepted f: UInt64) -> UInt32 {
        guard f & guestCSUM != 0 else { return 0 }  // every GSO kind needs partial checksums
        var o: UInt32 = 0x01  // TUN_F_CSUM
        if f & guestTSO4 != 0 { o |= 0x02 }
        if f & guestTSO6 != 0 { o |= 0x04 }
        if f & guestUFO != 0 { o |= 0x10 }
        return o
    }
}

/// struct virtio_net_config (§5.1.4), little-endian: mac[6], status u16,
/// max_virtqueue_pairs u16, mtu u16.
struct NetConfigSpace {
    static let linkUp: UInt16 = 1  // VIRTIO_NET_S_LINK_UP
    var mac: MACAddress
    var linkUp: Bool
    var mtu: UInt16

    var bytes: [UInt8] {
        var b = mac.bytes
        let status: UInt16 = linkUp ? Self.linkUp : 0
        b += [UInt8(status & 0xff), UInt8(status >> 8), 1, 0, UInt8(mtu & 0xff), UInt8(mtu >> 8)]
        return b
    }
}
