/// Device status bits (virtio 1.2 §2.1).
public enum VirtioStatus {
    public static let acknowledge: UInt32 = 1
    public static let driver: UInt32 = 2
    public static let driverOK: UInt32 = 4
    public static let featuresOK: UInt32 = 8
    /// The device hit an error it cannot recover from; the driver must reset it.
    public static let deviceNeedsReset: UInt32 = 0x40
    public static let failed: UInt32 = 0x80
}

/// Transport-level feature bits (§6) that every device here offers.
public enum VirtioFeature {
    public static let indirectDescriptors: UInt64 = 1 << 28  // VIRTIO_F_INDIRECT_DESC
    public static let eventIndex: UInt64 = 1 << 29           // VIRTIO_F_EVENT_IDX
    public static let version1: UInt64 = 1 << 32             // VIRTIO_F_VERSION_1
}

/// InterruptStatus bits (§4.2.2).
public enum VirtioInterruptBit {
    public static let usedBuffer: UInt32 = 1
    public static let configChange: UInt32 = 2
}

/// Device IDs (§5).
public enum VirtioDeviceType {
    public static let net: UInt32 = 1
    public static let block: UInt32 = 2
    public static let console: UInt32 = 3
    public static let entropy: UInt32 = 4
    public static let vsock: UInt32 = 19
}

/// virtio-mmio version 2 register offsets (§4.2.2), relative to the window base.
public enum VirtioMMIORegister {
    public static let magicValue: UInt64 = 0x000        // R  "virt"
    public static let version: UInt64 = 0x004           // R  2
    public static let deviceID: UInt64 = 0x008          // R
    public static let vendorID: UInt64 = 0x00c          // R
    public static let deviceFeatures: UInt64 = 0x010    // R  32 bits selected by DeviceFeaturesSel
    public static let deviceFeaturesSel: UInt64 = 0x014 // W
    public static let driverFeatures: UInt64 = 0x020    // W  32 bits selected by DriverFeaturesSel
    public static let driverFeaturesSel: UInt64 = 0x024 // W
    public static let queueSel: UInt64 = 0x030          // W
    public static let queueNumMax: UInt64 = 0x034       // R  0 if the queue does not exist
    public static let queueNum: UInt64 = 0x038          // W
    public static let queueReady: UInt64 = 0x044        // RW
    public static let queueNotify: UInt64 = 0x050       // W  queue index (ioeventfd here)
    public static let interruptStatus: UInt64 = 0x060   // R
    public static let interruptACK: UInt64 = 0x064      // W
    public static let status: UInt64 = 0x070           // RW 0 resets
    public static let queueDescLow: UInt64 = 0x080      // W
    public static let queueDescHigh: UInt64 = 0x084     // W
    public static let queueDriverLow: UInt64 = 0x090    // W  available ring
    public static let queueDriverHigh: UInt64 = 0x094   // W
    public static let queueDeviceLow: UInt64 = 0x0a0    // W  used ring
    public static let queueDeviceHigh: UInt64 = 0x0a4   // W
    public static let shmSel: UInt64 = 0x0ac            // W  no shared memory regions here
    public static let shmLenLow: UInt64 = 0x0b0         // R  all ones: region absent
    public static let shmLenHigh: UInt64 = 0x0b4        // R
    public static let shmBaseLow: UInt64 = 0x0b8        // R
    public static let shmBaseHigh: UInt64 = 0x0bc       // R
    public static let configGeneration: UInt64 = 0x0fc  // R
    public static let config: UInt64 = 0x100            // RW device-specific

    public static let magic: UInt32 = 0x7472_6976  // "virt" little-endian
    public static let vendor: UInt32 = 0x554d_4551 // "QEMU", what Linux and Firecracker expect to see; any value works
    public static let windowSize: UInt64 = 0x1000
}
