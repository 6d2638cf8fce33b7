/// struct virtio_net_hdr_v1 (§5.1.6): 12 bytes in front of every frame, both ways.
/// With VIRTIO_F_VERSION_1 it is always 12 bytes (num_buffers included), and the tap is
/// set to the same size (TUNSETVNETHDRSZ), so the header passes through unchanged apart
/// from `num_buffers`, which only the device fills in.
public enum NetHeader {
    public static let size = 12
    /// Offset of num_buffers (u16): how many receive chains this frame spans.
    public static let numBuffersOffset = 10
    /// The largest frame (header excluded) either way: a 64 KiB GSO packet plus its
    /// Ethernet and VLAN headers, as Linux's tap and virtio_net use.
    public static let maxFrame = 65_562
    /// The smallest frame worth passing: an Ethernet header.
    public static let minFrame = 14

    /// Set num_buffers in a host buffer that holds a header.
    static func setNumBuffers(_ n: UInt16, in header: UnsafeMutableRawBufferPointer) {
        header[numBuffersOffset] = UInt8(n & 0xff)
        header[numBuffersOffset + 1] = UInt8(n >> 8)
    }
}
