import KVMKit

/// One queue as the driver programmed it and where the device is in its rings.
public struct VirtioQueueState: Equatable, Sendable, StateCodable {
    public var maxSize: UInt16
    public var size: UInt16
    public var ready: Bool
    public var descriptorTable: UInt64
    public var availRing: UInt64
    public var usedRing: UInt64
    /// Ring positions; nil unless the device was active with this queue.
    public var positions: Virtqueue.Positions?

    public func encode(to w: inout StateWriter) {
        w.write(maxSize); w.write(size); w.write(ready)
        w.write(descriptorTable); w.write(availRing); w.write(usedRing)
        w.write(positions != nil)
        if let p = positions {
            w.write(p.nextAvail); w.write(p.nextUsed)
            w.write(p.signalledUsed != nil); w.write(p.signalledUsed ?? 0)
        }
    }

    public init(from r: inout StateReader) throws {
        maxSize = try r.read(UInt16.self, "queue max size")
        size = try r.read(UInt16.self, "queue size")
        ready = try r.readBool("queue ready")
        descriptorTable = try r.read(UInt64.self, "descriptor table")
        availRing = try r.read(UInt64.self, "available ring")
        usedRing = try r.read(UInt64.self, "used ring")
        if try r.readBool("queue positions present") {
            let avail = try r.read(UInt16.self, "next available")
            let used = try r.read(UInt16.self, "next used")
            let hasSignalled = try r.readBool("signalled flag")
            let signalled = try r.read(UInt16.self, "signalled used")
            positions = Virtqueue.Positions(nextAvail: avail, nextUsed: used, signalledUsed: hasSignalled ? signalled : nil)
        } else {
            positions = nil
        }
    }

    init(config c: QueueConfig, positions: Virtqueue.Positions?) {
        maxSize = c.maxSize; size = c.size; ready = c.ready
        descriptorTable = c.descriptorTable; availRing = c.availRing; usedRing = c.usedRing
        self.positions = positions
    }

    var config: QueueConfig {
        var c = QueueConfig(maxSize: maxSize)
        c.size = size; c.ready = ready
        c.descriptorTable = descriptorTable; c.availRing = availRing; c.usedRing = usedRing
        return c
    }
}

/// A virtio-mmio transport's registers, queues and pending interrupt bits.
public struct VirtioTransportState: Equatable, Sendable, StateCodable {
    public var deviceType: UInt32
    public var deviceFeaturesSel: UInt32
    public var driverFeaturesSel: UInt32
    public var driverFeatures: UInt64
    public var queueSel: UInt32
    public var status: UInt32
    public var configGeneration: UInt32
    public var active: Bool
    public var broken: Bool
    /// InterruptStatus bits the driver has not acknowledged.
    public var interruptStatus: UInt32
    public var queues: [VirtioQueueState]

    public func encode(to w: inout StateWriter) {
        w.write(deviceType); w.write(deviceFeaturesSel); w.write(driverFeaturesSel); w.write(driverFeatures)
        w.write(queueSel); w.write(status); w.write(configGeneration); w.write(active); w.write(broken)
        w.write(interruptStatus)
        w.write(queues)
    }

    public init(from r: inout StateReader) throws {
        deviceType = try r.read(UInt32.self, "device type")
        deviceFeaturesSel = try r.read(UInt32.self, "DeviceFeaturesSel")
        driverFeaturesSel = try r.read(UInt32.self, "DriverFeaturesSel")
        driverFeatures = try r.read(UInt64.self, "driver features")
        queueSel = try r.read(UInt32.self, "QueueSel")
        status = try r.read(UInt32.self, "status")
        configGeneration = try r.read(UInt32.self, "config generation")
        active = try r.readBool("active")
        broken = try r.readBool("needs reset")
        interruptStatus = try r.read(UInt32.self, "interrupt status")
        queues = try r.readArray(VirtioQueueState.self, "queues", limit: 64)
    }

    public init(deviceType: UInt32, deviceFeaturesSel: UInt32, driverFeaturesSel: UInt32, driverFeatures: UInt64,
                queueSel: UInt32, status: UInt32, configGeneration: UInt32, active: Bool, broken: Bool,
                interruptStatus: UInt32, queues: [VirtioQueueState]) {
        self.deviceType = deviceType; self.deviceFeaturesSel = deviceFeaturesSel; self.driverFeaturesSel = driverFeaturesSel
        self.driverFeatures = driverFeatures; self.queueSel = queueSel; self.status = status
        self.configGeneration = configGeneration; self.active = active; self.broken = broken
        self.interruptStatus = interruptStatus; self.queues = queues
    }
}

/// Why a saved virtio state does not fit the device it is restored onto.
public enum VirtioStateError: Error, Equatable, CustomStringConvertible {
    case deviceTypeMismatch(saved: UInt32, device: UInt32)
    case queueMismatch(String)
    case featuresNotOffered(UInt64)
    case activationFailed(String)
    case deviceMismatch(String)

    public var description: String {
        switch self {
        case let .deviceTypeMismatch(saved, device): return "virtio state is for device type \(saved), the device is type \(device)"
        case let .queueMismatch(why): return "virtio state: \(why)"
        case let .featuresNotOffered(f): return "virtio state: driver features \(hex(f)) are not offered by this device"
        case let .activationFailed(why): return "virtio state: the saved queues do not activate: \(why)"
        case let .deviceMismatch(why): return "virtio device state: \(why)"
        }
    }
}

extension VirtioMMIOTransport: Snapshottable {
    /// The transport's state; call while the device is paused (no queue processing).
    public func captureState() -> VirtioTransportState {
        state.withLock { s in
            let queues = s.queues.enumerated().map { i, c in
                VirtioQueueState(config: c, positions: i < s.live.count ? s.live[i]?.positions : nil)
            }
            return VirtioTransportState(
                deviceType: device.deviceType, deviceFeaturesSel: s.deviceFeaturesSel, driverFeaturesSel: s.driverFeaturesSel,
                driverFeatures: s.driverFeatures, queueSel: s.queueSel, status: s.status, configGeneration: s.configGeneration,
                active: s.active, broken: s.broken, interruptStatus: interrupt.status, queues: queues)
        }
    }

    /// A transport already in `saved`, in front of `device` (itself built from its own
    /// state): an active device is activated again on the saved queues, at the saved ring
    /// positions. It starts paused (as the VM it belongs to): `resume()` lets it run.
    /// Throws, naming what does not fit, instead of restoring half a device.
    public convenience init(state saved: VirtioTransportState, device: VirtioDevice, memory: GuestMemory,
                            interrupt line: InterruptLine, notify: NotifyMode = .eventFD) throws {
        guard saved.deviceType == device.deviceType else {
            throw VirtioStateError.deviceTypeMismatch(saved: saved.deviceType, device: device.deviceType)
        }
        let sizes = device.queueMaxSizes
        guard saved.queues.map(\.maxSize) == sizes else {
            throw VirtioStateError.queueMismatch("queue sizes \(saved.queues.map(\.maxSize)), the device has \(sizes)")
        }
        try self.init(device: device, memory: memory, interrupt: line, notify: notify)
        guard saved.driverFeatures & ~offeredFeatures == 0 else {
            throw VirtioStateError.featuresNotOffered(saved.driverFeatures & ~offeredFeatures)
        }
        try state.withLock { s in
            // Born paused, with every queue due for a look on resume: a notification the
            // guest sent just before the snapshot may not have been processed.
            s.paused = true
            s.pendingWhilePaused = saved.queues.count >= 64 ? .max : (UInt64(1) << UInt64(saved.queues.count)) - 1
            s.deviceFeaturesSel = saved.deviceFeaturesSel
            s.driverFeaturesSel = saved.driverFeaturesSel
            s.driverFeatures = saved.driverFeatures
            s.queueSel = saved.queueSel
            s.status = saved.status
            s.configGeneration = saved.configGeneration
            s.queues = saved.queues.map(\.config)
            s.broken = saved.broken
            if saved.active && !saved.broken {
                activate(&s)
                if s.broken { throw VirtioStateError.activationFailed(s.metrics.lastError ?? "unknown") }
                for (i, q) in saved.queues.enumerated() {
                    guard let p = q.positions, i < s.live.count, let live = s.live[i] else { continue }
                    live.positions = p
                }
            }
        }
        interrupt.restoreStatus(saved.interruptStatus)
    }
}
