import CKVM
import KVMKit
import VirtioDevices
import Synchronization

/// One managed microVM: its configuration, its lifecycle, and — once started — the machine,
/// vCPU threads, event loop, console and device registry it owns (Firecracker's `Vmm`).
/// The command line and the control API are two front ends over it.
///
///     let vm = try MicroVM(id: "vm0")
///     try vm.configure { $0.bootSource = .init(kernelPath: "vmlinuz"); $0.machine.vcpuCount = 2 }
///     try vm.start()
///     try vm.pause(); try vm.resume()
///     let reason = vm.waitForStop()     // guest poweroff, reset, crash, or requestStop
///     vm.shutdown()                     // joins every thread, restores the terminal
///
/// Every method may be called from any thread (the API thread, a signal watcher). Requests
/// are serialised; one the current state does not allow throws `VMError.illegal` and
/// changes nothing. The guest stopping (poweroff, crash) moves the VM to Stopped/Crashed
/// from a vCPU thread without taking the lock, so a pause never waits on a stopping vCPU.
public final class MicroVM: Sendable {
    public let id: String
    let control: MachineControl
    let core: Mutex<Core>

    struct Core: ~Copyable {
        var configuration: VMConfiguration
        var lifecycle = VMState.notStarted
        var runtime: VMRuntime?
        var makeKVM: () throws -> KVM
    }

    public init(id: String = "anonymous-instance", configuration: VMConfiguration = VMConfiguration(),
                kvm: @escaping () throws -> KVM = { try KVM() }) throws {
        self.id = id
        control = try MachineControl()
        core = Mutex(Core(configuration: configuration, makeKVM: kvm))
    }

    // MARK: state

    /// The lifecycle state; Stopped or Crashed as soon as a stop was requested.
    public var state: VMState {
        if let r = control.stopReason { return r.isCrash ? .crashed : .stopped }
        return core.withLock { $0.lifecycle }
    }

    public var configuration: VMConfiguration { core.withLock { $0.configuration } }

    /// Why the VM stopped, once it has.
    public var stopReason: MachineStopReason? { control.stopReason }

    /// Change the configuration before start. `change` works on a copy; nothing is applied
    /// if it throws or if the VM has started.
    public func configure(_ change: (inout VMConfiguration) throws -> Void) throws {
        try core.withLock { c in
            try check(.configure, c.lifecycle)
            var next = c.configuration
            try change(&next)
            c.configuration = next
        }
    }

    // MARK: lifecycle requests

    /// Build the machine and its devices from the configuration, boot the kernel and start
    /// the vCPUs. A build error (bad kernel, missing disk) leaves the VM Not started, with
    /// nothing half-built; the configuration can be fixed and `start` tried again.
    public func start() throws {
        try core.withLock { c in
            try check(.start, c.lifecycle)
            let kvm = try c.makeKVM()
            let runtime = try VMRuntime(configuration: c.configuration, control: control, kvm: kvm)
            try runtime.start()
            c.runtime = runtime
            c.lifecycle = .running
        }
    }

    /// Park every vCPU outside KVM_RUN and quiesce every device; a paused VM uses no CPU.
    public func pause() throws {
        try core.withLock { c in
            try check(.pause, c.lifecycle)
            guard let r = c.runtime else { throw VMError.illegal(.pause, state: c.lifecycle) }
            try r.pause()
            c.lifecycle = .paused
        }
    }

    /// Carry on exactly where `pause` stopped.
    public func resume() throws {
        try core.withLock { c in
            try check(.resume, c.lifecycle)
            c.runtime?.resume()
            c.lifecycle = .running
        }
    }

    /// Press Ctrl-Alt-Del on the guest's keyboard (Linux reboots; with `reboot=k` the VM
    /// then stops).
    public func sendCtrlAltDel() throws {
        try core.withLock { c in
            try check(.sendCtrlAltDel, c.lifecycle)
            guard let r = c.runtime, r.machine.i8042.pressCtrlAltDel() else { throw VMError.keyboardBusy }
        }
    }

    /// Point drive `id` at another image: before start, in the configuration; while the VM
    /// runs or is paused, by swapping the backing file under the live device (what
    /// firecracker-containerd and Kata do to hot-plug) and telling the guest its capacity
    /// may have changed. The new file is opened first; on any error nothing changes.
    public func updateDrive(id: String, path: String) throws {
        try core.withLock { c in
            let index = try driveIndex(id, c.configuration)
            if let r = c.runtime, control.stopReason == nil {
                let (transport, block) = try liveDrive(id, r)
                let old = c.configuration.drives[index]
                let backend = try DiskImage.open(path: path, format: old.format, readOnly: old.readOnly)
                let quiesce = c.lifecycle == .running  // a paused VM's devices are quiet already
                if quiesce { transport.pause() }
                defer { if quiesce { transport.resume() } }
                try transport.withDeviceLocked { _, _ in try block.replaceBackend(backend) }
                transport.configChanged()
            } else {
                try check(.configure, c.lifecycle)
            }
            c.configuration.drives[index].path = path
        }
    }

    /// Change drive `id`'s rate limit: in the configuration before start, on the live
    /// device after (Firecracker's `PATCH /drives/{id}` with `rate_limiter`).
    public func updateDriveRateLimit(id: String, limit: RateLimiterConfig) throws {
        try core.withLock { c in
            let index = try driveIndex(id, c.configuration)
            if let r = c.runtime, control.stopReason == nil {
                let (transport, block) = try liveDrive(id, r)
                transport.withDeviceLocked { _, _ in block.replaceRateLimit(limit) }
                block.retryWaiting()
            } else {
                try check(.configure, c.lifecycle)
            }
            c.configuration.drives[index].rateLimit = limit
        }
    }

    private func driveIndex(_ id: String, _ c: VMConfiguration) throws -> Int {
        guard let index = c.drives.firstIndex(where: { $0.id == id }) else { throw VMError.invalidConfiguration("drive \(id) does not exist") }
        return index
    }

    private func liveDrive(_ id: String, _ r: VMRuntime) throws -> (VirtioMMIOTransport, VirtioBlock) {
        guard let transport = r.registry.entry("block_\(id)")?.device as? VirtioMMIOTransport,
              let block = transport.device as? VirtioBlock else {
            throw VMError.invalidConfiguration("drive \(id) has no live device")
        }
        return (transport, block)
    }

    /// Change an interface's rate limiters: in the configuration before start, on the live
    /// device after (Firecracker's `PATCH /network-interfaces/{id}`). nil leaves one as is.
    public func updateNetworkInterface(id: String, rx: RateLimiterConfig?, tx: RateLimiterConfig?) throws {
        try core.withLock { c in
            guard let index = c.configuration.networkInterfaces.firstIndex(where: { $0.id == id }) else {
                throw VMError.invalidConfiguration("network interface \(id) does not exist")
            }
            if let r = c.runtime, control.stopReason == nil {
                guard let net = (r.registry.entry("net_\(id)")?.device as? VirtioMMIOTransport)?.device as? VirtioNet else {
                    throw VMError.invalidConfiguration("network interface \(id) has no live device")
                }
                net.updateRateLimiters(rx: rx, tx: tx)
            } else {
                try check(.configure, c.lifecycle)
            }
            if let rx { c.configuration.networkInterfaces[index].rxLimit = rx }
            if let tx { c.configuration.networkInterfaces[index].txLimit = tx }
        }
    }

    /// Ask the VM to stop (any state, any thread); the first reason wins.
    public func requestStop(_ reason: MachineStopReason) { control.requestStop(reason) }

    /// Run `h` once the VM stops (on the stopping thread, which may be a vCPU's: keep it to
    /// a lock and an eventfd write); at once if it has stopped already.
    public func onStop(_ h: @escaping @Sendable () -> Void) { control.addStopHandler(h) }

    /// Block until the VM stops: the guest powered off, reset or crashed, or someone
    /// called `requestStop` (also before start).
    public func waitForStop() -> MachineStopReason { control.wait() }

    /// Join every thread, flush the console and restore the terminal. Call after the VM
    /// stopped; idempotent.
    public func shutdown() {
        control.requestStop(.hostRequest("shutdown"))
        core.withLock { c in
            c.runtime?.teardown()
        }
    }

    // MARK: inspection

    /// The general registers of vCPU `index`, read while the VM is paused.
    public func registers(ofVCPU index: Int) throws -> kvm_regs {
        try core.withLock { c in
            try check(.readRegisters, c.lifecycle)
            guard let vcpu = c.runtime?.machine.vcpu(index) else {
                throw VMError.invalidConfiguration("there is no vCPU \(index)")
            }
            return try vcpu.getRegisters()
        }
    }

    /// Every device's counters plus the vCPUs' exits, keyed by device id.
    public func metrics() -> [(id: String, counters: MetricCounters)] {
        core.withLock { c in
            guard let r = c.runtime else { return [] }
            return r.registry.metrics + [("vcpu", r.machine.exitCounters)]
        }
    }

    /// The registry's entries (empty before start).
    public var devices: [DeviceRegistry.Entry] { core.withLock { $0.runtime?.registry.entries ?? [] } }

    /// Run `body` with the started machine (the CLI's exit summary); nil before start.
    public func withMachine<T>(_ body: (Machine) throws -> T) rethrows -> T? {
        try core.withLock { c in try c.runtime.map { try body($0.machine) } }
    }

    /// When the machine was fully built (CLOCK_MONOTONIC ns), for `--timings`.
    public var builtAt: Int64? { core.withLock { $0.runtime?.builtAt } }

    func check(_ request: VMRequest, _ lifecycle: VMState) throws {
        let now = control.stopReason.map { $0.isCrash ? VMState.crashed : .stopped } ?? lifecycle
        guard request.isAllowed(in: now) else { throw VMError.illegal(request, state: now) }
    }
}

extension MachineStopReason {
    /// A guest crash or a VMM failure, as opposed to an orderly stop.
    public var isCrash: Bool {
        switch self {
        case .guestCrash, .vmmError: return true
        case .powerOff, .reset, .hostRequest: return false
        }
    }
}
