import KVMKit
import Synchronization

/// virtio-net (§5.1) with one queue pair (0 receiveq, 1 transmitq) on a `NetBackend`.
///
/// All packet work runs in `process(queue:)`, i.e. on the event-loop thread under the
/// transport's lock, never on a vCPU thread: the tap's readiness, the guest's
/// notifications and the rate-limit timers all just kick a queue (`VirtioNet+EventLoop`).
/// Nothing here waits: a frame the guest has no buffers for stays in `rxFrame` (the tap
/// queues the rest and drops when full), a frame the tap cannot take goes back to the
/// ring until the tap is writable.
public final class VirtioNet: VirtioDevice {
    public static let receiveQueue = 0
    public static let transmitQueue = 1
    public static let queueSize: UInt16 = 256
    public static let defaultMTU: UInt16 = 1500

    public let backend: NetBackend
    public let mac: MACAddress
    public let mtu: UInt16
    /// Called once with a one-line message when the backend goes away (link down).
    let report: (String) -> Void
    let clock: () -> UInt64

    // State below is touched only in process/activate/reset (the transport's lock) and
    // under `activity`, which pause() takes to wait out a running batch.
    var linkUp = true
    var metricsValue = NetMetrics()
    var rxLimiter: RateLimiter
    var txLimiter: RateLimiter
    private var rxQueue: Virtqueue?
    private var txQueue: Virtqueue?
    private var memory: GuestMemory?
    private var interrupt: VirtioInterrupt?
    private var mergeable = false
    /// Header + frame read from the backend, not yet delivered; `rxLength` bytes of it.
    private let rxFrame: UnsafeMutableRawBufferPointer
    private var rxLength: Int?

    /// paused: `process` does nothing (touches no guest memory) until resume.
    let activity = Mutex<Bool>(false)
    /// The transport's kick while active; read from the event-loop handlers.
    let kick = Mutex<((Int) -> Void)?>(nil)
    /// Limits to apply at the next batch (the API's PATCH), set from any thread.
    let pendingLimits = Mutex<(rx: RateLimiterConfig?, tx: RateLimiterConfig?)>((nil, nil))
    /// Hooks the event-loop wiring installs: arm a limiter timer, watch tap writability,
    /// stop watching a dead tap.
    var armTimer: (_ queue: Int, _ nanoseconds: UInt64) -> Void = { _, _ in }
    var watchWritable: (Bool) -> Void = { _ in }
    var backendGone: () -> Void = {}
    var watchBackend: () throws -> Void = {}
    /// The tap was handed to a migration's destination (`HostHandOver`).
    var handedOver = false

    public init(backend: NetBackend, mac: MACAddress, mtu: UInt16 = defaultMTU,
                rxLimit: RateLimiterConfig = RateLimiterConfig(), txLimit: RateLimiterConfig = RateLimiterConfig(),
                rxLevels: RateLimiterLevels = RateLimiterLevels(), txLevels: RateLimiterLevels = RateLimiterLevels(),
                clock: @escaping () -> UInt64 = { UInt64(monotonicNanoseconds()) }, report: @escaping (String) -> Void = { _ in }) {
        self.backend = backend
        self.mac = mac
        self.mtu = mtu
        self.clock = clock
        self.report = report
        let now = clock()
        rxLimiter = RateLimiter(rxLimit, levels: rxLevels, now: now)
        txLimiter = RateLimiter(txLimit, levels: txLevels, now: now)
        rxFrame = .allocate(byteCount: NetHeader.size + NetHeader.maxFrame, alignment: 64)
    }

    deinit { rxFrame.deallocate() }

    public var metrics: NetMetrics {
        activity.withLock { _ in
            var m = metricsValue
            m.rxRateLimited = rxLimiter.metrics.throttled
            m.txRateLimited = txLimiter.metrics.throttled
            return m
        }
    }

    public var deviceType: UInt32 { VirtioDeviceType.net }
    public var deviceFeatures: UInt64 { NetFeature.offered }
    public var queueMaxSizes: [UInt16] { [Self.queueSize, Self.queueSize] }

    public func readConfig(offset: Int, into buffer: UnsafeMutableRawBufferPointer) {
        let bytes = NetConfigSpace(mac: mac, linkUp: linkUp, mtu: mtu).bytes
        for i in 0..<buffer.count { buffer[i] = offset + i < bytes.count ? bytes[offset + i] : 0 }
    }
    public func writeConfig(offset: Int, bytes: UnsafeRawBufferPointer) {}  // mac is read-only (no CTRL_MAC_ADDR)

    public func activate(_ a: VirtioActivation) throws {
        rxQueue = a.queues.first ?? nil
        txQueue = a.queues.count > 1 ? a.queues[1] : nil
        memory = a.memory
        interrupt = a.interrupt
        mergeable = a.features & NetFeature.mergeableRxBuffers != 0
        do { try backend.setOffloads(NetFeature.tapOffloads(accepted: a.features)) }
        catch { metricsValue.lastError = "\(error)" }
        kick.withLock { $0 = a.kick }
    }

    public func reset() {
        rxQueue = nil; txQueue = nil; memory = nil; interrupt = nil
        kick.withLock { $0 = nil }
    }

    public func process(queue index: Int) throws {
        try activity.withLock { paused in
            if paused { return }
            applyPendingLimits()
            if index == Self.receiveQueue { try receive() } else if index == Self.transmitQueue { try transmit() }
        }
    }

    // MARK: receive (backend → guest)

    private func receive() throws {
        guard let queue = rxQueue, let memory, linkUp else { return }
        if !limiterReady(&rxLimiter) { return }
        while true {
            let length: Int
            if let l = rxLength { length = l } else {
                do {
                    guard let n = try backend.receive(into: rxFrame) else { return }
                    length = n
                } catch { return linkDown(error) }
                if length < NetHeader.size + NetHeader.minFrame { metricsValue.lastError = "short frame from the tap"; continue }
                rxLength = length
            }
            let frame = UnsafeMutableRawBufferPointer(rebasing: rxFrame[0..<length])
            let admitted = { self.rxLimiter.consume(bytes: UInt64(length - NetHeader.size), now: self.clock()) }
            switch try NetReceive.deliver(frame, queue: queue, memory: memory, mergeable: mergeable, admit: admitted) {
            case .delivered:
                rxLength = nil
                metricsValue.rxFrames &+= 1
                metricsValue.rxBytes &+= UInt64(length - NetHeader.size)
            case .noBuffers:
                metricsValue.rxNoBuffers &+= 1
                return
            case .refused:
                return armLimiter(rxLimiter, Self.receiveQueue)
            case .dropped(let why):
                rxLength = nil
                metricsValue.drop(why)
            }
            if rxLimiter.isBlocked { return armLimiter(rxLimiter, Self.receiveQueue) }
        }
    }

    // MARK: transmit (guest → backend)

    private func transmit() throws {
        guard let queue = txQueue, let memory else { return }
        if !limiterReady(&txLimiter) { return }
        while let chain = try queue.pop() {
            let pieces: [UnsafeRawBufferPointer]
            switch try NetTransmit.pieces(of: chain, memory: memory) {
            case .failure(let why):
                metricsValue.drop(why)
                try queue.complete(chain, length: 0)
                continue
            case .success(let p): pieces = p
            }
            let bytes = chain.readableLength - UInt64(NetHeader.size)
            if !linkUp {
                metricsValue.drop(.tapRefused)
                try queue.complete(chain, length: 0)
                continue
            }
            if !txLimiter.consume(bytes: bytes, now: clock()) {
                queue.undoPop()
                return armLimiter(txLimiter, Self.transmitQueue)
            }
            let sent: Bool
            do throws(NetBackendError) {
                sent = try pieces.withUnsafeBufferPointer { (p) throws(NetBackendError) in try backend.send(p) }
            } catch {
                if case .gone = error { linkDown(error) } else { metricsValue.lastError = "\(error)" }
                metricsValue.drop(.tapRefused)
                try queue.complete(chain, length: 0)
                continue
            }
            if !sent {
                // The tap's queue is full: retry this chain when it is writable again.
                queue.undoPop()
                metricsValue.txTapFull &+= 1
                return watchWritable(true)
            }
            metricsValue.txFrames &+= 1
            metricsValue.txBytes &+= bytes
            try queue.complete(chain, length: 0)
            if txLimiter.isBlocked { return armLimiter(txLimiter, Self.transmitQueue) }
        }
    }

    // MARK: helpers

    /// A blocked limiter whose time has come is unblocked; still blocked means wait.
    private func limiterReady(_ l: inout RateLimiter) -> Bool {
        guard l.isBlocked else { return true }
        return l.timerFired(now: clock())
    }

    private func armLimiter(_ l: RateLimiter, _ queue: Int) {
        guard let w = l.wakeTime else { return }
        let now = clock()
        armTimer(queue, w > now ? w - now : 1)
    }

    private func applyPendingLimits() {
        let p = pendingLimits.withLock { p in defer { p = (nil, nil) }; return p }
        let now = clock()
        if let rx = p.rx { rxLimiter.update(rx, now: now) }
        if let tx = p.tx { txLimiter.update(tx, now: now) }
    }

    private func linkDown(_ error: NetBackendError) {
        guard linkUp else { return }
        linkUp = false
        metricsValue.linkDownEvents &+= 1
        metricsValue.lastError = "\(error)"
        backendGone()
        interrupt?.signalConfigChange()
        report("\(error); the guest's link is down")
    }
}
