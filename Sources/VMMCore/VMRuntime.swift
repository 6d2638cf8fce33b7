import Glibc
import KVMKit
import VirtioDevices

/// The parts of a started VM: the machine with its vCPU threads, the event loop that runs
/// the devices and the console, and the registry of every device. Built from a
/// configuration in one go; if any step fails, what was built is torn down with it.
final class VMRuntime {
    let machine: Machine
    let loop: EventLoop
    let console: ConsoleBackend
    let registry: DeviceRegistry
    /// The vsock device: its socket is created after boot and removed at teardown.
    private let vsock: VirtioVsock?
    /// CLOCK_MONOTONIC when the machine was fully built (before its threads started).
    let builtAt: Int64
    private var tornDown = false
    /// Snapshot bookkeeping: the dirty-page log since the last snapshot, and its memory file.
    var dirtyTracker: DirtyPageTracker?
    var lastMemoryFile: String?

    /// `restoring`: rebuild a saved VM (snapshot, migration) instead of booting a kernel;
    /// each device is built from its saved state. The configuration must be the saved one.
    init(configuration c: VMConfiguration, control: MachineControl, kvm: KVM, restoring: RuntimeRestore? = nil) throws {
        guard let boot = c.bootSource ?? (restoring != nil ? VMConfiguration.BootSource(kernelPath: "") : nil) else {
            throw VMError.missingBootSource
        }
        // Taps and the vsock device first: their errors are the user's (exit 2, HTTP 400)
        // and nothing of the VM exists yet.
        let ids = try NetOptions.validate(c.networkInterfaces)
        var nets: [(id: String, tap: String, device: VirtioNet, saved: VirtioDeviceSnapshot?)] = []
        for (i, (n, id)) in zip(c.networkInterfaces, ids).enumerated() {
            let report: (String) -> Void = { StandardError.write("swiftvmm: net \(id): \($0)\n") }
            let saved = try restoring?.virtio("net_\(id)")
            let tap = try TapBackend(name: n.tap)
            let device = try saved.map {
                VirtioNet(state: try $0.decode(VirtioNetState.self, device: "net_\(id)"), backend: tap,
                          rxLimit: n.rxLimit, txLimit: n.txLimit, report: report)
            } ?? VirtioNet(backend: tap, mac: n.mac ?? MACAddress.local(seed: UInt64(getpid()) << 8 | UInt64(i)),
                           rxLimit: n.rxLimit, txLimit: n.txLimit, report: report)
            nets.append((id, n.tap, device, saved))
        }
        let savedVsock = try c.vsock == nil ? nil : restoring?.virtio("vsock")
        let vsock = try c.vsock.map { o in
            try savedVsock.map { try VirtioVsock(state: try $0.decode(VirtioVsockState.self, device: "vsock"), options: o) }
                ?? VirtioVsock(options: o)
        }
        var mc = MachineConfiguration(kernelPath: boot.kernelPath, initrdPath: boot.initrdPath,
                                      commandLine: c.kernelCommandLine,
                                      memoryMiB: c.machine.memSizeMiB, cpus: c.machine.vcpuCount,
                                      serialMMIOAddress: c.console.serialMMIOAddress, elfEntry: boot.elfEntry)
        mc.hugePages = c.machine.hugePages == .twoMiB
        let machine = try Machine(configuration: mc, kvm: kvm, control: control, restoring: restoring?.machine)
        let loop = try EventLoop()
        let registry = DeviceRegistry()
        try registry.register(id: "com1", kind: .serial, device: machine.serial)
        if let uart = machine.serialMMIO { try registry.register(id: "mmio_uart", kind: .serial, device: uart) }
        try registry.register(id: "cmos", kind: .cmos, device: machine.cmos)
        try registry.register(id: "i8042", kind: .i8042, device: machine.i8042)
        try registry.register(id: "acpi", kind: .acpi, device: machine.acpiSleep)

        for d in c.drivesInDeviceOrder {
            let id = registry.uniqueID("block_\(d.id)")
            let saved = try restoring?.virtio(id)
            var options = DiskOptions(path: d.path, readOnly: d.readOnly, id: d.id, format: d.format)
            options.rateLimit = d.rateLimit
            let block = try saved.map {
                // Opened as the format it was saved with, never re-detected.
                let state = try $0.decode(VirtioBlockState.self, device: id)
                return try VirtioBlock(state: state,
                                       backend: DiskImage.open(path: options.path, format: state.format, readOnly: options.readOnly),
                                       offersFlush: d.cacheType == .writeback, rateLimit: d.rateLimit)
            } ?? VirtioBlock(options: options, offersFlush: d.cacheType == .writeback)
            let t = try VirtioMachineAttachment.attach(block, name: "virtio-blk \(d.id) (\(d.path))", to: machine, loop: loop,
                                                       state: saved?.transport)
            try block.registerRateLimitTimer(with: loop)
            try registry.register(id: id, kind: .virtioBlock, device: t)
        }
        for n in nets {
            let t = try VirtioMachineAttachment.attach(n.device, name: "virtio-net \(n.id) (tap \(n.tap))", to: machine, loop: loop,
                                                       state: n.saved?.transport)
            try n.device.register(with: loop)
            try registry.register(id: "net_\(n.id)", kind: .virtioNet, device: t)
        }
        if let v = vsock {
            let t = try VirtioMachineAttachment.attach(v, name: "virtio-vsock (cid \(v.guestCID))", to: machine, loop: loop,
                                                       state: savedVsock?.transport)
            try registry.register(id: "vsock", kind: .virtioVsock, device: t)
        }
        if c.entropy {
            let saved = try restoring?.virtio("entropy")
            let rng = try saved.map { VirtioRng(state: try $0.decode(VirtioRngState.self, device: "entropy")) } ?? VirtioRng()
            let t = try VirtioMachineAttachment.attach(rng, name: "virtio-rng", to: machine, loop: loop, state: saved?.transport)
            try registry.register(id: "entropy", kind: .virtioRng, device: t)
        }
        var guestPort: ConsoleGuestPort = SerialConsolePort(machine: machine)
        if c.console.device == .hvc {
            let saved = try restoring?.virtio("virtio_console")
            let hvc = try saved.map { try VirtioConsole(state: try $0.decode(VirtioConsoleState.self, device: "virtio_console")) }
                ?? VirtioConsole()
            let t = try VirtioMachineAttachment.attach(hvc, name: "virtio-console", to: machine, loop: loop, state: saved?.transport)
            try registry.register(id: "virtio_console", kind: .virtioConsole, device: t)
            guestPort = try MergedConsolePort(primary: VirtioConsolePort(hvc), alsoOutputFrom: guestPort, loop: loop)
        }
        if let r = restoring {
            try machine.restoreProcessorState(r.machine.state)
        } else {
            try machine.boot(extraCommandLine: c.virtioCommandLine ? machine.virtioCommandLine : "")
        }
        try vsock?.register(with: loop)  // creates the socket: only once the VM will run
        builtAt = monotonicNanoseconds()
        self.machine = machine
        self.loop = loop
        self.registry = registry
        self.vsock = vsock
        self.console = ConsoleBackend(mode: c.console.mode, port: guestPort, loop: loop) {
            control.requestStop(.hostRequest("Ctrl-A x"))
        }
    }

    /// Console first (the terminal goes raw), then the device loop, then the vCPUs. If a
    /// step fails, the earlier ones are undone; no vCPU has run then (a vCPU thread that
    /// cannot be created stops the machine: the ones before it did start).
    /// `paused`: the vCPUs park before their first KVM_RUN and the devices stay quiet
    /// until `resume`. `restored`: the devices were rebuilt from saved state, which leaves
    /// them paused, so a start that runs lets them go first (devices, then vCPUs, as
    /// `resume` does).
    func start(paused: Bool = false, restored: Bool = false) throws {
        let control = machine.control
        try console.start()
        do {
            try loop.start(name: "swiftvmm-io") { error in control.requestStop(.vmmError("\(error)")) }
        } catch {
            console.shutdown()
            throw error
        }
        do {
            if paused {
                for d in registry.pausable { d.pause() }
            } else if restored {
                for d in registry.pausable { d.resume() }
            }
            try machine.start(paused: paused)
        } catch {
            teardown()
            throw error
        }
    }

    /// Park the vCPUs, then quiesce the devices (no DMA, no interrupts).
    func pause() throws {
        try machine.pause()
        for d in registry.pausable { d.pause() }
        machine.notifyGuestPaused()
    }

    /// Devices first, so work that waited is ready when the vCPUs run again.
    func resume() {
        for d in registry.pausable { d.resume() }
        machine.resume()
    }

    /// Stop and join every thread, flush and close the console. Idempotent.
    func teardown() {
        guard !tornDown else { return }
        tornDown = true
        machine.shutdown()
        // Disks after the vCPUs: I/O threads joined, qcow2 metadata written back.
        for e in registry.entries where e.kind == .virtioBlock {
            guard let block = (e.device as? VirtioMMIOTransport)?.device as? VirtioBlock else { continue }
            do { try block.shutdown() } catch { StandardError.write("swiftvmm: closing disk \(e.id): \(error)\n") }
        }
        loop.stop()
        loop.join()
        console.shutdown()
        vsock?.removeSocketFile()
    }
}

