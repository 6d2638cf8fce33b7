import Glibc
import KVMKit
import Synchronization

/// virtio-mmio version 2 (virtio 1.2 §4.2) in front of a `VirtioDevice`.
///
/// Threads: registers are accessed from vCPU threads, queues are processed on the
/// event-loop thread (`handleNotify`; a device may take its notifications on its own
/// threads, see `VirtioDevice.serveNotifications`), and devices with slow I/O complete requests from
/// their own threads (`VirtioActivation.complete`). One lock serialises registers and
/// the device, held only for register- and ring-sized work (never across disk I/O);
/// InterruptStatus/ACK go through atomics and never take it.
///
/// Guest errors in the queues put the device in DEVICE_NEEDS_RESET with a
/// configuration-change interrupt (§2.1.2); it then ignores notifications until the
/// driver resets it by writing 0 to Status.
public final class VirtioMMIOTransport: MMIODevice {
    /// How QueueNotify reaches `handleNotify`.
    public enum NotifyMode {
        /// One eventfd per queue (KVM_IOEVENTFD in a VM); an MMIO write signals it.
        case eventFD
        /// Process in the caller (tests, and a VM without ioeventfd).
        case inline
    }

    public let device: VirtioDevice
    public let memory: GuestMemory
    public let interrupt: VirtioInterrupt
    private let notifyFDs: [EventFD]
    let state: Mutex<TransportState>

    /// Features the transport offers on top of the device's own.
    public static let transportFeatures = VirtioFeature.version1 | VirtioFeature.eventIndex | VirtioFeature.indirectDescriptors

    public init(device: VirtioDevice, memory: GuestMemory, interrupt line: InterruptLine, notify: NotifyMode = .eventFD) throws {
        self.device = device
        self.memory = memory
        self.interrupt = VirtioInterrupt(line: line)
        self.notifyFDs = notify == .eventFD ? try device.queueMaxSizes.map { _ in try EventFD() } : []
        self.state = Mutex(TransportState(maxSizes: device.queueMaxSizes))
    }

    /// Per-queue eventfds for KVM_IOEVENTFD (register each at window base + 0x50, 4 bytes,
    /// datamatch = its index) and for the event loop to poll. Empty in `.inline` mode.
    public var notifyEventFDs: [Int32] { notifyFDs.map(\.fd) }

    public var offeredFeatures: UInt64 { device.deviceFeatures | Self.transportFeatures }
    public var status: UInt32 { state.withLock { $0.status } }
    public var metrics: VirtioTransportMetrics { state.withLock { $0.metrics } }

    /// Run `body` with the transport's lock held: the device's state is stable and no
    /// queue is being processed (metrics, state capture).
    public func withDeviceLocked<T>(_ body: (VirtioTransportMetrics, VirtioDevice) throws -> T) rethrows -> T {
        try state.withLock { s in try body(s.metrics, device) }
    }

    // MARK: event loop side

    /// The eventfd of `queue` fired (or an MMIO notify in `.inline` mode): process it.
    public func handleNotify(queue: Int) {
        if queue >= 0 && queue < notifyFDs.count { notifyFDs[queue].drain() }
        let processed = state.withLock { s -> Bool in
            s.metrics.notifications &+= 1
            if s.paused {
                if queue >= 0 && queue < 64 { s.pendingWhilePaused |= 1 << UInt64(queue) }
                return false
            }
            guard s.active, !s.broken, queue >= 0, queue < s.live.count, let q = s.live[queue] else { return false }
            q.beginBatch()
            do {
                try device.process(queue: queue)
                // One interrupt decision per batch, if the driver wants one (EVENT_IDX/flags).
                if q.hasNewUsed, try q.needsInterrupt() { interrupt.signalUsedBuffer() }
            } catch {
                enterNeedsReset(&s, "queue \(queue): \(error)")
                return true
            }
            // Come back after the event loop has served others (eventfd mode).
            if q.hasDeferredWork && queue < notifyFDs.count { notifyFDs[queue].signal() }
            return true
        }
        if processed { device.processed(queue: queue) }
    }

    /// A device thread completes requests on `expected` (see `VirtioActivation.complete`).
    private func complete(queue: Int, expected: Virtqueue, _ body: (Virtqueue) throws -> Void) {
        state.withLock { s in
            guard s.active, !s.broken, queue < s.live.count, let q = s.live[queue], q === expected else { return }
            do {
                try body(q)
                if q.hasNewUsed, try q.needsInterrupt() { interrupt.signalUsedBuffer() }
            } catch { enterNeedsReset(&s, "queue \(queue): \(error)") }
        }
    }

    /// The device changed its configuration space (e.g. a resized disk).
    public func configChanged() {
        state.withLock { $0.configGeneration &+= 1 }
        interrupt.signalConfigChange()
    }

    private func enterNeedsReset(_ s: inout TransportState, _ reason: String) {
        s.broken = true
        s.metrics.needsReset &+= 1
        s.metrics.lastError = reason
        s.status |= VirtioStatus.deviceNeedsReset
        // §2.1.2: with DRIVER_OK set, tell the driver through a config-change interrupt.
        if s.status & VirtioStatus.driverOK != 0 { interrupt.signalConfigChange() }
    }

    // MARK: MMIODevice

    public func read(offset: UInt64, size: Int) -> UInt64 {
        if offset >= VirtioMMIORegister.config { return readConfig(offset - VirtioMMIORegister.config, size) }
        guard size == 4, offset % 4 == 0 else { return invalid(0) }
        typealias R = VirtioMMIORegister
        switch offset {
        case R.magicValue: return UInt64(R.magic)
        case R.version: return 2
        case R.deviceID: return UInt64(device.deviceType)
        case R.vendorID: return UInt64(R.vendor)
        case R.interruptStatus: return UInt64(interrupt.status)
        case R.shmLenLow, R.shmLenHigh, R.shmBaseLow, R.shmBaseHigh: return 0xffff_ffff
        default: break
        }
        return state.withLock { s -> UInt64 in
            switch offset {
            case R.deviceFeatures:
                let f = offeredFeatures
                return s.deviceFeaturesSel == 0 ? f & 0xffff_ffff : s.deviceFeaturesSel == 1 ? f >> 32 : 0
            case R.queueNumMax: return UInt64(s.selectedQueue?.maxSize ?? 0)
            case R.queueReady: return s.selectedQueue?.ready == true ? 1 : 0
            case R.status: return UInt64(s.status)
            case R.configGeneration: return UInt64(s.configGeneration)
            default:
                s.metrics.invalidAccesses &+= 1
                return 0
            }
        }
    }

    public func write(offset: UInt64, size: Int, value: UInt64) {
        if offset >= VirtioMMIORegister.config { return writeConfig(offset - VirtioMMIORegister.config, size, value) }
        guard size == 4, offset % 4 == 0 else { return invalid(()) }
        let v = UInt32(truncatingIfNeeded: value)
        typealias R = VirtioMMIORegister
        switch offset {
        case R.interruptACK: return interrupt.acknowledge(v)
        case R.queueNotify: return notify(queue: Int(v))
        default: break
        }
        state.withLock { s in
            switch offset {
            case R.deviceFeaturesSel: s.deviceFeaturesSel = v
            case R.driverFeaturesSel: s.driverFeaturesSel = v
            case R.driverFeatures:
                // Only between DRIVER and FEATURES_OK (§3.1.1 steps 4-5).
                guard s.status & VirtioStatus.driver != 0, s.status & VirtioStatus.featuresOK == 0, s.driverFeaturesSel < 2 else {
                    s.metrics.invalidAccesses &+= 1; return
                }
                let shift = UInt64(s.driverFeaturesSel) * 32
                s.driverFeatures = (s.driverFeatures & ~(0xffff_ffff << shift)) | (UInt64(v) << shift)
            case R.queueSel: s.queueSel = v
            case R.status: writeStatus(&s, v)
            case R.queueNum, R.queueReady, R.queueDescLow, R.queueDescHigh, R.queueDriverLow, R.queueDriverHigh,
                 R.queueDeviceLow, R.queueDeviceHigh:
                writeQueueRegister(&s, offset, v)
            case R.shmSel: break
            default: s.metrics.invalidAccesses &+= 1
            }
        }
    }

    private func invalid<T>(_ result: T) -> T {
        state.withLock { $0.metrics.invalidAccesses &+= 1 }
        return result
    }

    /// QueueNotify by MMIO exit, or a device asking to be run again (e.g. console input
    /// arrived): wake the event loop through the eventfd, or process here in `.inline`.
    public func kick(queue: Int) {
        if queue >= 0 && queue < notifyFDs.count { notifyFDs[queue].signal() }
        else if notifyFDs.isEmpty { handleNotify(queue: queue) }
    }

    private func notify(queue: Int) {
        if queue < 0 || queue >= device.queueMaxSizes.count { return invalid(()) }
        state.withLock { $0.metrics.mmioNotifies &+= 1 }
        kick(queue: queue)
    }

    /// Queue registers are writable while the driver sets up (before DRIVER_OK) and
    /// only for a queue that is not yet ready (§4.2.3.2).
    private func writeQueueRegister(_ s: inout TransportState, _ offset: UInt64, _ v: UInt32) {
        let i = Int(s.queueSel)
        guard i < s.queues.count, s.status & VirtioStatus.driverOK == 0 else { s.metrics.invalidAccesses &+= 1; return }
        typealias R = VirtioMMIORegister
        if offset == R.queueReady { s.queues[i].ready = v & 1 == 1; return }
        guard !s.queues[i].ready else { s.metrics.invalidAccesses &+= 1; return }
        func low(_ x: UInt64) -> UInt64 { (x & ~0xffff_ffff) | UInt64(v) }
        func high(_ x: UInt64) -> UInt64 { (x & 0xffff_ffff) | (UInt64(v) << 32) }
        switch offset {
        case R.queueNum: s.queues[i].size = UInt16(truncatingIfNeeded: min(v, 0xffff))
        case R.queueDescLow: s.queues[i].descriptorTable = low(s.queues[i].descriptorTable)
        case R.queueDescHigh: s.queues[i].descriptorTable = high(s.queues[i].descriptorTable)
        case R.queueDriverLow: s.queues[i].availRing = low(s.queues[i].availRing)
        case R.queueDriverHigh: s.queues[i].availRing = high(s.queues[i].availRing)
        case R.queueDeviceLow: s.queues[i].usedRing = low(s.queues[i].usedRing)
        case R.queueDeviceHigh: s.queues[i].usedRing = high(s.queues[i].usedRing)
        default: break
        }
    }

    /// The §3.1.1 initialisation sequence: 0 resets; otherwise bits are only added, in
    /// order ACKNOWLEDGE, DRIVER, FEATURES_OK, DRIVER_OK; FAILED may come at any time.
    /// FEATURES_OK is refused (left clear, so the driver reads it back and gives up)
    /// unless the driver accepted VERSION_1 and nothing the device did not offer.
    private func writeStatus(_ s: inout TransportState, _ value: UInt32) {
        if value == 0 { return reset(&s) }
        let deviceBits = s.status & VirtioStatus.deviceNeedsReset
        let wanted = value & ~VirtioStatus.deviceNeedsReset
        let current = s.status & ~VirtioStatus.deviceNeedsReset
        if wanted & VirtioStatus.failed != 0 {
            s.status |= VirtioStatus.failed
            return
        }
        let added = wanted & ~current
        let known = VirtioStatus.acknowledge | VirtioStatus.driver | VirtioStatus.featuresOK | VirtioStatus.driverOK
        func has(_ bit: UInt32) -> Bool { wanted & bit != 0 }
        guard wanted & current == current, wanted & ~known == 0,
              !has(VirtioStatus.driver) || has(VirtioStatus.acknowledge),
              !has(VirtioStatus.featuresOK) || has(VirtioStatus.driver),
              !has(VirtioStatus.driverOK) || has(VirtioStatus.featuresOK)
        else {
            s.metrics.invalidStatusTransitions &+= 1
            return
        }
        var next = wanted
        if added & VirtioStatus.featuresOK != 0 {
            let f = s.driverFeatures
            if f & VirtioFeature.version1 == 0 || f & ~offeredFeatures != 0 {
                next &= ~VirtioStatus.featuresOK
                s.metrics.invalidStatusTransitions &+= 1
            }
        }
        s.status = next | deviceBits
        if added & VirtioStatus.driverOK != 0 && next & VirtioStatus.driverOK != 0 { activate(&s) }
    }

    func activate(_ s: inout TransportState) {
        let eventIndex = s.driverFeatures & VirtioFeature.eventIndex != 0
        var queues: [Virtqueue?] = []
        do {
            for q in s.queues {
                queues.append(q.ready ? try Virtqueue(config: q, memory: memory, eventIndex: eventIndex) : nil)
            }
            try device.activate(VirtioActivation(queues: queues, memory: memory, interrupt: interrupt, features: s.driverFeatures,
                                                 kick: { [weak self] in self?.kick(queue: $0) },
                                                 complete: { [weak self] i, body in
                                                     guard i >= 0, i < queues.count, let q = queues[i] else { return }
                                                     self?.complete(queue: i, expected: q, body)
                                                 }))
            s.active = true
            s.live = queues
            s.metrics.activations &+= 1
        } catch {
            enterNeedsReset(&s, "activation: \(error)")
        }
    }

    private func reset(_ s: inout TransportState) {
        if s.active || s.broken { device.reset() }
        let metrics = s.metrics
        let generation = s.configGeneration
        let paused = s.paused
        s = TransportState(maxSizes: device.queueMaxSizes)
        s.paused = paused
        s.metrics = metrics
        s.metrics.resets &+= 1
        s.configGeneration = generation
        interrupt.clear()
    }

    // MARK: config space

    private func readConfig(_ offset: UInt64, _ size: Int) -> UInt64 {
        guard [1, 2, 4, 8].contains(size), offset < VirtioMMIORegister.windowSize else { return invalid(0) }
        var value: UInt64 = 0
        state.withLock { _ in
            withUnsafeMutableBytes(of: &value) { device.readConfig(offset: Int(offset), into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<size])) }
        }
        return UInt64(littleEndian: value)
    }

    private func writeConfig(_ offset: UInt64, _ size: Int, _ value: UInt64) {
        guard [1, 2, 4, 8].contains(size), offset < VirtioMMIORegister.windowSize else { return invalid(()) }
        var v = value.littleEndian
        state.withLock { _ in
            withUnsafeBytes(of: &v) { device.writeConfig(offset: Int(offset), bytes: UnsafeRawBufferPointer(rebasing: $0[0..<size])) }
        }
    }
}

/// Register state of one transport, guarded by its lock.
struct TransportState {
    var deviceFeaturesSel: UInt32 = 0
    var driverFeaturesSel: UInt32 = 0
    var driverFeatures: UInt64 = 0
    var queueSel: UInt32 = 0
    var queues: [QueueConfig]
    /// The validated queues handed to the device at DRIVER_OK.
    var live: [Virtqueue?] = []
    var status: UInt32 = 0
    var configGeneration: UInt32 = 0
    /// DRIVER_OK was accepted and the device activated.
    var active = false
    /// DEVICE_NEEDS_RESET is set; notifications are ignored until reset.
    var broken = false
    /// The VM is paused: notifications are remembered (one bit per queue), not processed.
    var paused = false
    var pendingWhilePaused: UInt64 = 0
    var metrics = VirtioTransportMetrics()

    init(maxSizes: [UInt16]) { queues = maxSizes.map { QueueConfig(maxSize: $0) } }

    var selectedQueue: QueueConfig? { Int(queueSel) < queues.count ? queues[Int(queueSel)] : nil }
}

extension VirtioMMIOTransport: Pausable {
    /// Queue processing runs under the transport's lock, so once the flag is set under it
    /// no batch is in flight; a device with work of its own (I/O threads) quiesces too.
    public func pause() {
        state.withLock { $0.paused = true }
        (device as? Pausable)?.pause()
    }

    public func resume() {
        (device as? Pausable)?.resume()
        let pending = state.withLock { s -> UInt64 in
            s.paused = false
            defer { s.pendingWhilePaused = 0 }
            return s.pendingWhilePaused
        }
        for q in 0..<64 where pending & (1 << UInt64(q)) != 0 { kick(queue: q) }
    }
}
