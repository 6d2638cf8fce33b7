import Glibc
import KVMKit
import Synchronization
import VirtioDevices

/// Executes routed API requests against one `MicroVM`: Firecracker's pre-boot and
/// post-boot rules, its responses (204 for changes, JSON for reads) and its fault bodies.
/// Runs on the VMM thread (requests reach it through an `APIRequestChannel`); every request either
/// takes effect whole or answers 400 with nothing changed.
public final class APIController: Sendable {
    public static let appName = "swiftvmm"
    public static let version = "0.2.0"

    public let vm: MicroVM
    public let logger: VMMLogger
    private let metricsSink = Mutex<OutputSink?>(nil)

    public init(vm: MicroVM, logger: VMMLogger) {
        self.vm = vm
        self.logger = logger
    }

    /// The API server's handler when one thread does everything (tests, the library):
    /// route, execute, answer.
    public func handle(_ request: HTTPRequest) -> HTTPResponse {
        route(request) { respond(to: $0) }
    }

    /// The API thread's half: route, then hand the request to `execute` (the VMM thread,
    /// through an `APIRequestChannel`); a request the router refuses is answered here.
    public func route(_ request: HTTPRequest, execute: (APICall) -> HTTPResponse) -> HTTPResponse {
        switch FirecrackerAPI.route(request) {
        case .failure(let e):
            logger.log(.warning, "\(request.method.rawValue) \(request.path): \(e.status.code) \(e.message)", thread: "api")
            return e.response
        case .success(let r):
            return execute(APICall(r, line: "\(request.method.rawValue) \(request.path)"))
        }
    }

    /// The VMM thread's half: execute a routed request and log the outcome.
    public func respond(to call: APICall) -> HTTPResponse {
        do {
            let response = try execute(call.request)
            logger.log(.info, "\(call.line): \(response.status.code)", thread: "vmm")
            return response
        } catch {
            let e = APIController.fault(error)
            logger.log(.warning, "\(call.line): \(e.status.code) \(e.message)", thread: "vmm")
            return e.response
        }
    }

    /// Errors as the client sees them: a 400 whose message says what and where.
    static func fault(_ error: Error) -> APIError {
        if let e = error as? APIError { return e }
        return APIError(.badRequest, "\(error)")
    }

    public func execute(_ request: APIRequest) throws -> HTTPResponse {
        switch request {
        case .getInstanceInfo:
            return .json(["id": .string(vm.id), "state": .string(vm.state.rawValue),
                          "vmm_version": .string(Self.version), "app_name": .string(Self.appName)])
        case .getVersion:
            return .json(["firecracker_version": .string(Self.version)])
        case .getVMConfig:
            return .json(currentConfig.json)
        case .getMachineConfig:
            return .json(FirecrackerAPI.MachineConfig(vm.configuration.machine).json)
        case .getMetrics:
            return .json(MetricsReport.json(vm.metrics()))
        case .putMachineConfig(let m):
            try vm.configure { $0.machine = try VMConfiguration.MachineSettings(validating: m) }
        case .patchMachineConfig(let u):
            try vm.configure { c in
                var m = FirecrackerAPI.MachineConfig(c.machine)
                if let v = u.vcpuCount { m.vcpuCount = v }
                if let v = u.memSizeMiB { m.memSizeMiB = v }
                if let v = u.smt { m.smt = v }
                if let v = u.trackDirtyPages { m.trackDirtyPages = v }
                if let v = u.hugePages { m.hugePages = v }
                c.machine = try VMConfiguration.MachineSettings(validating: m)
            }
        case .putBootSource(let b):
            try Self.checkReadable(b.kernelImagePath, what: "kernel_image_path")
            if let i = b.initrdPath { try Self.checkReadable(i, what: "initrd_path") }
            try vm.configure { c in
                c.bootSource = .init(kernelPath: b.kernelImagePath, initrdPath: b.initrdPath, bootArgs: b.bootArgs)
            }
        case .putDrive(let d):
            try vm.configure { c in try c.upsertDrive(try VMConfiguration.Drive(validating: d)) }
        case .patchDrive(let u):
            let limit = try u.rateLimiter.map { try RateLimiterConfig($0, at: "rate_limiter") }
            if let path = u.pathOnHost { try vm.updateDrive(id: u.driveID, path: path) }
            if let limit { try vm.updateDriveRateLimit(id: u.driveID, limit: limit) }
        case .putEntropy(let e):
            guard e.rateLimiter == nil else { throw APIError(.badRequest, "the entropy device has no rate limiter in swiftvmm") }
            try vm.configure { $0.entropy = true }
        case .action(.instanceStart):
            do { try vm.start() } catch let e as VMError { throw e } catch {
                throw APIError(.badRequest, "Start microvm error: \(error)")
            }
            logger.log(.info, "microVM started", thread: "vmm")
        case .action(.sendCtrlAltDel):
            try vm.sendCtrlAltDel()
        case .action(.flushMetrics):
            try flushMetrics()
        case .patchVM(.paused):
            try vm.pause()
            logger.log(.info, "microVM paused", thread: "vmm")
        case .patchVM(.resumed):
            try vm.resume()
            logger.log(.info, "microVM resumed", thread: "vmm")
        case .putLogger(let l):
            try configureLogger(l)
        case .putMetrics(let m):
            try configureMetrics(path: m.metricsPath)
        case .putNetworkInterface(let n):
            var options = NetOptions(tap: n.hostDevName, id: n.ifaceID)
            if let text = n.guestMAC {
                guard let mac = MACAddress(text) else { throw APIError(.badRequest, "guest_mac \(text): not a MAC address (aa:bb:cc:dd:ee:ff)") }
                options.mac = mac
            }
            guard n.mtu == nil else { throw APIError(.badRequest, "mtu: not supported; the interface's MTU is the tap's") }
            if let r = n.rxRateLimiter { options.rxLimit = try RateLimiterConfig(r, at: "rx_rate_limiter") }
            if let r = n.txRateLimiter { options.txLimit = try RateLimiterConfig(r, at: "tx_rate_limiter") }
            try vm.configure { c in
                try c.upsertNetworkInterface(options)
                // Opened (and closed) now, as Firecracker does, so a wrong tap fails here.
                do { _ = try TapBackend(name: n.hostDevName) } catch {
                    throw APIError(.badRequest, "network interface \(n.ifaceID): \(error)")
                }
            }
        case .patchNetworkInterface(let u):
            let rx = try u.rxRateLimiter.map { try RateLimiterConfig($0, at: "rx_rate_limiter") }
            let tx = try u.txRateLimiter.map { try RateLimiterConfig($0, at: "tx_rate_limiter") }
            try vm.updateNetworkInterface(id: u.ifaceID, rx: rx, tx: tx)
        case .putVsock(let v):
            let options: VsockOptions
            do { options = try VsockOptions(cid: UInt64(v.guestCID), udsPath: v.udsPath) } catch {
                throw APIError(.badRequest, "\(error)")
            }
            try vm.configure { $0.vsock = options }
        case .createSnapshot(let s):
            let r = try vm.createSnapshot(snapshotPath: s.snapshotPath, memPath: s.memFilePath,
                                          type: s.snapshotType == .diff ? .diff : .full)
            logger.log(.info, "snapshot (\(s.snapshotType.rawValue)) created in \(r.milliseconds) ms", thread: "vmm")
        case .loadSnapshot(let l):
            guard l.memBackend.backendType == .file else {
                throw APIError(.badRequest, "only the File memory backend is supported (Uffd is not)")
            }
            try vm.loadSnapshot(snapshotPath: l.snapshotPath, memPath: l.memBackend.backendPath, resume: l.resumeVM,
                                trackDirtyPages: l.trackDirtyPages)
            logger.log(.info, "snapshot loaded", thread: "vmm")
        case .sendMigration(let m):
            // Returns once the destination runs the guest; this VM has then stopped and the
            // process ends after the answer. A failure leaves the guest running here.
            let report: MigrationReport
            do {
                report = try vm.migrate(to: m.destination, downtimeTargetMillis: m.downtimeMillis ?? MicroVM.defaultMigrationDowntimeMillis)
            } catch let e as VMError { throw e } catch {
                throw APIError(.internalServerError, "migration to \(m.destination) failed, the VM keeps running here: \(error)")
            }
            logger.log(.info, "migrated to \(m.destination): \(report)", thread: "vmm")
            return .json(report.json)
        case .receiveMigration(let r):
            // Blocks the API until a source has sent the VM (as Cloud Hypervisor's does).
            do { try vm.receiveMigration(from: r.receiver) } catch let e as VMError { throw e } catch {
                throw APIError(.internalServerError, "receiving a migration on \(r.receiver) failed: \(error)")
            }
            logger.log(.info, "migration received on \(r.receiver): the guest runs here", thread: "vmm")
        case .getBalloon, .putBalloon, .patchBalloon, .getBalloonStatistics, .patchBalloonStatistics:
            throw APIError(.badRequest, "the balloon device is not supported by swiftvmm")
        }
        return .noContent
    }


    // MARK: configuration file

    /// Apply a `--config-file` in Firecracker's order: logger and metrics first (so the rest
    /// is logged), then the machine, the kernel, the devices. Stops at the first error,
    /// which names the section.
    public func apply(_ config: FirecrackerConfig) throws {
        func section(_ name: String, _ body: () throws -> Void) throws {
            do { try body() } catch { throw APIError(.badRequest, "config file: \(name): \(Self.fault(error).message)") }
        }
        if let l = config.logger { try section("logger") { try configureLogger(l) } }
        if let m = config.metrics { try section("metrics") { try configureMetrics(path: m.metricsPath) } }
        if let m = config.machineConfig { try section("machine-config") { _ = try execute(.putMachineConfig(m)) } }
        if let b = config.bootSource { try section("boot-source") { _ = try execute(.putBootSource(b)) } }
        for d in config.drives { try section("drives[\(d.driveID)]") { _ = try execute(.putDrive(d)) } }
        if let e = config.entropy { try section("entropy") { _ = try execute(.putEntropy(e)) } }
        for n in config.networkInterfaces { try section("network-interfaces[\(n.ifaceID)]") { _ = try execute(.putNetworkInterface(n)) } }
        if let v = config.vsock { try section("vsock") { _ = try execute(.putVsock(v)) } }
        if let b = config.balloon { try section("balloon") { _ = try execute(.putBalloon(b)) } }
    }

    /// The configuration as `GET /vm/config` and `--config-file` spell it.
    public var currentConfig: FirecrackerConfig {
        let c = vm.configuration
        var f = FirecrackerConfig()
        f.bootSource = c.bootSource.map { .init(kernelImagePath: $0.kernelPath, bootArgs: $0.bootArgs, initrdPath: $0.initrdPath) }
        f.machineConfig = FirecrackerAPI.MachineConfig(c.machine)
        f.drives = c.drives.map {
            FirecrackerAPI.Drive(driveID: $0.id, pathOnHost: $0.path, isRootDevice: $0.isRootDevice, isReadOnly: $0.readOnly,
                                 partUUID: $0.partUUID, cacheType: $0.cacheType == .writeback ? .writeback : .unsafe,
                                 rateLimiter: FirecrackerAPI.RateLimiter($0.rateLimit))
        }
        if c.entropy { f.entropy = FirecrackerAPI.Entropy() }
        f.networkInterfaces = c.networkInterfaces.map {
            FirecrackerAPI.NetworkInterface(ifaceID: $0.id ?? "", hostDevName: $0.tap, guestMAC: $0.mac?.description,
                                            rxRateLimiter: FirecrackerAPI.RateLimiter($0.rxLimit),
                                            txRateLimiter: FirecrackerAPI.RateLimiter($0.txLimit))
        }
        f.vsock = c.vsock.map { FirecrackerAPI.Vsock(guestCID: UInt32(clamping: $0.cid), udsPath: $0.udsPath) }
        if let s = logger.settings {
            f.logger = FirecrackerAPI.Logger(logPath: s.path, level: FirecrackerAPI.LogLevel(rawValue: s.level.name),
                                             showLevel: s.showLevel, showLogOrigin: s.showOrigin)
        }
        if let m = metricsSink.withLock({ $0?.path }) { f.metrics = FirecrackerAPI.Metrics(metricsPath: m) }
        return f
    }

    // MARK: logger and metrics

    public func configureLogger(_ l: FirecrackerAPI.Logger) throws {
        let old = logger.settings
        guard let path = l.logPath ?? old?.path else { throw APIError(.badRequest, "logger: log_path is required") }
        var s = VMMLogger.Settings(path: path, level: old?.level ?? .warning, showLevel: old?.showLevel ?? false,
                                   showOrigin: old?.showOrigin ?? false)
        if let level = l.level, let parsed = VMMLogger.Level(name: level.rawValue) { s.level = parsed }
        if let v = l.showLevel { s.showLevel = v }
        if let v = l.showLogOrigin { s.showOrigin = v }
        try logger.configure(s)
    }

    public func configureMetrics(path: String) throws {
        try metricsSink.withLock { sink in
            guard sink == nil else { throw APIError(.badRequest, "Reinitialization of metrics not allowed.") }
            sink = try OutputSink(path: path)
        }
    }

    /// Write one metrics record (FlushMetrics, and at exit).
    public func flushMetrics() throws {
        guard let sink = metricsSink.withLock({ $0 }) else {
            throw APIError(.badRequest, "metrics are not configured (PUT /metrics first)")
        }
        sink.writeLine(MetricsReport.json(vm.metrics()).encoded())
    }

    /// Firecracker's period for writing metrics on its own (`WRITE_METRICS_PERIOD_MS`).
    public static let metricsPeriod: UInt64 = 60_000_000_000

    /// The VMM thread's loop: execute each request `channel` brings until it closes (the
    /// VM stopped), and once the VM has started and metrics are configured, write a record
    /// every `metricsPeriod` nanoseconds between requests, as Firecracker does.
    /// `beforeEach` runs before every wait (the caller's seccomp step).
    public func serve(_ channel: APIRequestChannel, metricsPeriod: UInt64 = APIController.metricsPeriod, beforeEach: () -> Void = {}) {
        var nextFlush: UInt64?
        while true {
            beforeEach()
            if nextFlush == nil, vm.state != .notStarted, metricsSink.withLock({ $0 != nil }) {
                nextFlush = UInt64(monotonicNanoseconds()) &+ metricsPeriod
            }
            switch channel.next(deadline: nextFlush) {
            case .request(let call): channel.answer(respond(to: call))
            case .timedOut:
                flushMetricsIfConfigured()
                // One record for however many periods a stalled host missed (as a
                // timerfd's expirations read at once).
                let now = UInt64(monotonicNanoseconds())
                nextFlush = nextFlush.map { $0 &+ metricsPeriod > now ? $0 &+ metricsPeriod : now &+ metricsPeriod }
            case .closed: return
            }
        }
    }

    /// Flush at exit if metrics are configured; never throws.
    public func flushMetricsIfConfigured() {
        if metricsSink.withLock({ $0 }) != nil { try? flushMetrics() }
    }

    static func checkReadable(_ path: String, what: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw APIError(.badRequest, "\(what) \(path): cannot open: \(errnoText(errno))") }
        var st = stat()
        defer { close(fd) }
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            throw APIError(.badRequest, "\(what) \(path): not a regular file")
        }
    }
}

extension FirecrackerAPI.MachineConfig {
    init(_ m: VMConfiguration.MachineSettings) {
        self.init(vcpuCount: m.vcpuCount, memSizeMiB: m.memSizeMiB, smt: m.smt, trackDirtyPages: m.trackDirtyPages,
                  hugePages: m.hugePages == .twoMiB ? .twoMiB : .none)
    }
}

extension VMConfiguration.MachineSettings {
    init(validating m: FirecrackerAPI.MachineConfig) throws {
        if m.smt && m.vcpuCount > 1 && m.vcpuCount % 2 != 0 {
            throw APIError(.badRequest, "vcpu_count must be 1 or an even number when SMT is enabled")
        }
        if m.hugePages == .twoMiB && m.memSizeMiB % 2 != 0 {
            throw APIError(.badRequest, "mem_size_mib must be a multiple of 2 with huge_pages 2M")
        }
        self.init(vcpuCount: m.vcpuCount, memSizeMiB: m.memSizeMiB, smt: m.smt, trackDirtyPages: m.trackDirtyPages,
                  hugePages: m.hugePages == .twoMiB ? .twoMiB : .none)
    }
}

extension RateLimiterConfig {
    /// Firecracker's token buckets, validated (`at`: the field, for the message).
    init(_ r: FirecrackerAPI.RateLimiter, at field: String) throws {
        func bucket(_ b: FirecrackerAPI.TokenBucket?) -> Bucket? {
            b.map { Bucket(size: $0.size, oneTimeBurst: $0.oneTimeBurst ?? 0, refillTimeMs: $0.refillTimeMillis) }
        }
        self.init(bandwidth: bucket(r.bandwidth), ops: bucket(r.ops))
        do { try validate(field) } catch { throw APIError(.badRequest, "\(error)") }
    }
}

extension FirecrackerAPI.RateLimiter {
    /// nil for an unlimited configuration (Firecracker omits the field then).
    init?(_ c: RateLimiterConfig) {
        guard !c.isUnlimited else { return nil }
        func bucket(_ b: RateLimiterConfig.Bucket?) -> FirecrackerAPI.TokenBucket? {
            b.map { FirecrackerAPI.TokenBucket(size: $0.size, oneTimeBurst: $0.oneTimeBurst == 0 ? nil : $0.oneTimeBurst, refillTimeMillis: $0.refillTimeMs) }
        }
        self.init(bandwidth: bucket(c.bandwidth), ops: bucket(c.ops))
    }
}

extension VMConfiguration.Drive {
    init(validating d: FirecrackerAPI.Drive) throws {
        guard d.ioEngine == .sync else { throw APIError(.badRequest, "io_engine Async is not supported; use Sync") }
        // Opened (and closed) now, as Firecracker does, so a wrong path fails here, not at start.
        let fd = open(d.pathOnHost, (d.isReadOnly ? O_RDONLY : O_RDWR) | O_CLOEXEC)
        guard fd >= 0 else {
            throw APIError(.badRequest, "drive \(d.driveID): cannot open \(d.pathOnHost): \(errnoText(errno))")
        }
        close(fd)
        self.init(id: d.driveID, path: d.pathOnHost, readOnly: d.isReadOnly, isRootDevice: d.isRootDevice,
                  partUUID: d.partUUID, cacheType: d.cacheType == .writeback ? .writeback : .unsafe,
                  rateLimit: try d.rateLimiter.map { try RateLimiterConfig($0, at: "rate_limiter") } ?? RateLimiterConfig())
    }
}
