import KVMKit

/// virtio-blk keeps no guest-visible state of its own beyond the transport's; what is
/// saved identifies the disk, so a restore onto a different image is refused, and says
/// how it was opened, so a restore reads it the same way (a raw disk whose guest wrote a
/// qcow2 header stays raw), and what its rate limiter had left.
public struct VirtioBlockState: Equatable, Sendable, StateCodable {
    public var capacitySectors: UInt64
    public var readOnly: Bool
    public var serial: [UInt8]
    public var format: DiskFormat
    public var rateLimit: RateLimiterLevels

    public func encode(to w: inout StateWriter) {
        w.write(capacitySectors); w.write(readOnly); w.write(bytes: serial); w.write(format == .qcow2)
        w.write(rateLimit)
    }
    public init(from r: inout StateReader) throws {
        capacitySectors = try r.read(UInt64.self, "disk capacity")
        readOnly = try r.readBool("disk read-only")
        serial = try r.readBytes("disk serial", limit: VirtioBlock.idBytes)
        format = try r.readBool("disk format is qcow2") ? .qcow2 : .raw
        // Appended later: a state that ends here was saved before the levels were.
        rateLimit = try r.remaining > 0 ? r.read(RateLimiterLevels.self) : RateLimiterLevels()
    }
    public init(capacitySectors: UInt64, readOnly: Bool, serial: [UInt8], format: DiskFormat,
                rateLimit: RateLimiterLevels = RateLimiterLevels()) {
        self.capacitySectors = capacitySectors; self.readOnly = readOnly; self.serial = serial; self.format = format
        self.rateLimit = rateLimit
    }
}

extension VirtioBlock: Snapshottable {
    /// Call while the transport is paused (no request is being admitted).
    public func captureState() -> VirtioBlockState {
        VirtioBlockState(capacitySectors: limits.capacitySectors, readOnly: limits.readOnly, serial: serial, format: backend.format,
                         rateLimit: limiter.levels(now: clock()))
    }

    /// A block device on `backend` that must be the disk the state was saved with
    /// (same size, mode and format; its contents are the user's, as in Firecracker),
    /// limited by `rateLimit` (the saved configuration's) from the saved levels.
    public convenience init(state: VirtioBlockState, backend: BlockBackend, offersFlush: Bool = true,
                            rateLimit: RateLimiterConfig = RateLimiterConfig()) throws {
        guard backend.size / 512 == state.capacitySectors else {
            throw VirtioStateError.deviceMismatch("disk has \(backend.size / 512) sectors, the snapshot's had \(state.capacitySectors)")
        }
        guard backend.isReadOnly == state.readOnly else {
            throw VirtioStateError.deviceMismatch("disk is \(backend.isReadOnly ? "read-only" : "writable"), the snapshot's was not")
        }
        guard backend.format == state.format else {
            throw VirtioStateError.deviceMismatch("disk is \(backend.format.rawValue), the snapshot's was \(state.format.rawValue)")
        }
        try self.init(backend: backend, serial: String(decoding: state.serial.prefix { $0 != 0 }, as: UTF8.self), offersFlush: offersFlush,
                      rateLimit: rateLimit, rateLimitLevels: state.rateLimit)
    }
}

/// virtio-rng has no state beyond its transport.
public struct VirtioRngState: Equatable, Sendable, StateCodable {
    public init() {}
    public func encode(to w: inout StateWriter) {}
    public init(from r: inout StateReader) throws {}
}

extension VirtioRng: Snapshottable {
    public func captureState() -> VirtioRngState { VirtioRngState() }
    public convenience init(state: VirtioRngState) { self.init() }
}

/// virtio-console: host input not yet delivered, and a transmit chain the host output
/// could take only part of (its head and how far it got).
public struct VirtioConsoleState: Equatable, Sendable, StateCodable {
    public var pendingInput: [UInt8]
    public var pendingTransmitHead: UInt16?
    public var pendingTransmitOffset: UInt64

    public func encode(to w: inout StateWriter) {
        w.write(bytes: pendingInput)
        w.write(pendingTransmitHead != nil)
        w.write(pendingTransmitHead ?? 0)
        w.write(pendingTransmitOffset)
    }
    public init(from r: inout StateReader) throws {
        pendingInput = try r.readBytes("console input", limit: VirtioConsole.inputCapacity)
        let has = try r.readBool("console pending transmit")
        let head = try r.read(UInt16.self, "console transmit head")
        pendingTransmitHead = has ? head : nil
        pendingTransmitOffset = try r.read(UInt64.self, "console transmit offset")
    }
    public init(pendingInput: [UInt8], pendingTransmitHead: UInt16?, pendingTransmitOffset: UInt64) {
        self.pendingInput = pendingInput; self.pendingTransmitHead = pendingTransmitHead
        self.pendingTransmitOffset = pendingTransmitOffset
    }
}

extension VirtioConsole: Snapshottable {
    public func captureState() -> VirtioConsoleState {
        VirtioConsoleState(pendingInput: input.peekAll(), pendingTransmitHead: pendingTransmit?.chain.head,
                           pendingTransmitOffset: pendingTransmit?.offset ?? 0)
    }

    /// A console holding the saved input; a partly sent chain resumes once the
    /// transport re-activates the device.
    public convenience init(state: VirtioConsoleState, outputCapacity: Int = BoundedOutputBuffer.defaultCapacity) throws {
        try self.init(outputCapacity: outputCapacity)
        input.write(contentsOf: state.pendingInput)
        if let head = state.pendingTransmitHead { restoredTransmit = (head, state.pendingTransmitOffset) }
    }
}
