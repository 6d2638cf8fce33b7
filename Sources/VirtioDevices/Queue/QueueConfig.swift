/// One queue's registers as the driver programs them through the transport
/// (QueueNum, QueueReady, QueueDesc/Driver/Device). Nothing here is validated yet;
/// `Virtqueue.init` does that when the driver sets DRIVER_OK.
public struct QueueConfig: Equatable {
    public var maxSize: UInt16
    public var size: UInt16
    public var ready = false
    public var descriptorTable: UInt64 = 0
    public var availRing: UInt64 = 0
    public var usedRing: UInt64 = 0

    public init(maxSize: UInt16) {
        self.maxSize = maxSize
        self.size = maxSize  // §4.2.2: QueueNum's reset value is the maximum... drivers write it anyway
    }

    public init(maxSize: UInt16, size: UInt16, descriptorTable: UInt64, availRing: UInt64, usedRing: UInt64) {
        self.maxSize = maxSize; self.size = size; self.ready = true
        self.descriptorTable = descriptorTable; self.availRing = availRing; self.usedRing = usedRing
    }
}
