import CKVM
import Glibc

/// A whole x86-64 microVM: guest RAM, in-kernel irqchip and PIT, the legacy platform
/// devices (COM1, CMOS, i8042, ACPI sleep registers, POST port), firmware tables, a Linux
/// kernel loaded for the 64-bit entry, and one thread per vCPU.
///
///     let machine = try Machine(configuration: config, kvm: try KVM())
///     // attach virtio devices: allocateMMIOWindow, attachMMIO, makeIRQFD
///     try machine.boot()
///     try machine.start()
///     let reason = machine.wait()
///     machine.shutdown()
public final class Machine: @unchecked Sendable {
    public let configuration: MachineConfiguration
    public let kvm: KVM
    public let vm: VirtualMachine
    public let layout: GuestRAMLayout
    public let memory: GuestMemory
    public let portIO = PortIOBus()
    public let mmio = MMIOBus()
    public let control: MachineControl

    /// COM1 and the buffer its output goes through (drained by the console).
    public let serial: Serial16550
    public let serialOutput: BoundedOutputBuffer
    /// Signalled when COM1 has output, or room for input again.
    public let serialNotify: EventFD
    /// The keyboard controller (reset, and Ctrl-Alt-Del for the guest).
    public let i8042: I8042
    /// CMOS/RTC and the ACPI sleep registers, kept for the device registry.
    public let cmos: CMOS
    public let acpiSleep: ACPISleepRegisters
    /// The MMIO 16550, when configured; shares COM1's output buffer.
    public private(set) var serialMMIO: Serial16550?

    /// virtio-mmio windows in the order devices were added (DSDT and command line).
    public private(set) var virtioWindows: [FirmwareLayout.MMIOWindow] = []
    private var serialMMIOWindow: FirmwareLayout.MMIOWindow?
    private var freeGSIs: [UInt32] = Machine.deviceGSIs
    /// The parsed kernel file until `boot` has copied it into guest RAM; dropped then, so
    /// a 10+ MB distribution kernel does not stay resident for the life of the VM.
    private var kernel: LinuxKernel?
    private var vcpus: [VCPU] = []
    private var runners: [VCPURunner] = []

    public static let com1GSI: UInt32 = 4
    public static let keyboardGSI: UInt32 = 1
    /// IOAPIC pins for MMIO devices: 5–23 without 8 (the RTC's).
    public static let deviceGSIs: [UInt32] = [5, 6, 7] + Array(9...23)
    public static let virtioMMIOBase: UInt64 = 0xD000_0000
    public static let virtioMMIOStride: UInt64 = 0x1000
    public static let maxVirtioDevices = 64

    /// `control`: the stop signal to use (a managed VM creates it before the machine, so a
    /// stop can be requested before start); nil makes one.
    /// `restoring`: rebuild a saved machine instead (snapshot restore, migration): its
    /// memory and platform device states replace the kernel, which is not read.
    public init(configuration c: MachineConfiguration, kvm: KVM, control: MachineControl? = nil,
                restoring: MachineRestore? = nil) throws {
        configuration = c
        self.kvm = kvm
        self.control = try control ?? MachineControl()
        let maxCPUs = min(kvm.maxVCPUs, FirmwareLayout.maxCPUCount)
        guard c.cpus >= 1 && c.cpus <= maxCPUs else { throw ConfigurationError.cpuCount(c.cpus, maximum: maxCPUs) }
        let minimum = GuestRAMLayout.minimumBytes >> 20
        guard c.memoryMiB >= minimum else { throw ConfigurationError.memoryTooSmall(mib: c.memoryMiB, minimumMiB: minimum) }
        let host = hostMemoryMiB()
        guard c.memoryMiB <= host else { throw ConfigurationError.memoryTooLarge(mib: c.memoryMiB, hostMiB: host) }
        if let a = c.serialMMIOAddress {
            let inVirtio = a >= Machine.virtioMMIOBase && a < Machine.virtioMMIOBase + UInt64(Machine.maxVirtioDevices) * Machine.virtioMMIOStride
            guard a & 0xFFF == 0, a >= GuestRAMLayout.lowRAMLimit, a < 0xFEC0_0000, !inVirtio else {
                throw ConfigurationError.serialMMIOAddress(a)
            }
        }
        // Read and validate the files before creating anything in the kernel.
        if restoring == nil { kernel = try LinuxKernel(contentsOf: c.kernelPath) }
        if restoring == nil, let initrd = c.initrdPath {
            var st = stat()
            if stat(initrd, &st) != 0 { throw BootError(path: initrd, .cannotRead(errno: errno)) }
            if (st.st_mode & S_IFMT) != S_IFREG { throw ConfigurationError.file(path: initrd, problem: "initrd is not a regular file") }
        }

        layout = try GuestRAMLayout(memoryMiB: c.memoryMiB)
        if c.hugePages && c.memoryMiB % 2 != 0 {
            throw ConfigurationError.file(path: "huge_pages", problem: "2M huge pages need an even memory size, not \(c.memoryMiB) MiB")
        }
        if let r = restoring {
            try r.checkLayout(layout)
            memory = r.memory
        } else {
            memory = try GuestMemory(layout: layout.regions, hugePages: c.hugePages)
        }
        vm = try kvm.createVM()
        // Memory slot first (as Firecracker does): KVM_SET_USER_MEMORY_REGION waits for an
        // SRCU grace period, which on a fresh VM is ~0.1 ms but after the irqchip and PIT
        // exist took a median 5.6 ms here (bench: 3.2 vs 6.8 ms for the whole sequence).
        try vm.setMemory(memory)
        try vm.setTSSAddress(GuestRAMLayout.tssAddress)
        try vm.setIdentityMapAddress(GuestRAMLayout.identityMapAddress)
        try vm.createIRQChip()
        try vm.createPIT2()

        serialNotify = try EventFD()
        let notifyFD = serialNotify.fd
        serialOutput = BoundedOutputBuffer(wakeupFileDescriptor: notifyFD)
        let notify = serialNotify
        let com1Line = KVMIRQLine(vm: vm, gsi: Machine.com1GSI)
        let control = self.control
        let keyboardLine = KVMIRQLine(vm: vm, gsi: Machine.keyboardGSI)
        let onReset = { control.requestStop(.reset) }, onPoweroff = { control.requestStop(.powerOff) }
        if let r = restoring {
            serial = try Serial16550(state: r.com1, interrupt: com1Line, output: serialOutput, onInputSpace: { notify.signal() })
            i8042 = try I8042(state: r.i8042, interrupt: keyboardLine, onReset: onReset)
            cmos = try CMOS(state: r.cmos)
            acpiSleep = ACPISleepRegisters(state: r.acpi, onPoweroff: onPoweroff)
        } else {
            serial = Serial16550(interrupt: com1Line, output: serialOutput, onInputSpace: { notify.signal() })
            i8042 = I8042(interrupt: keyboardLine, onReset: onReset)
            cmos = CMOS(ramBelow4GiB: layout.lowRAMEnd, ramAbove4GiB: layout.highRAM?.size ?? 0)
            acpiSleep = ACPISleepRegisters(onPoweroff: onPoweroff)
        }
        try attachPlatformDevices()
        if let a = c.serialMMIOAddress { try attachSerialMMIO(at: a, state: restoring?.serialMMIO) }
        for i in 0..<c.cpus { vcpus.append(try vm.createVCPU(id: i)) }
    }

    private func attachPlatformDevices() throws {
        try portIO.attach(serial, base: 0x3F8, count: 8, name: "COM1")
        try portIO.attach(cmos, base: 0x70, count: 2, name: "CMOS")
        try portIO.attach(i8042, base: 0x60, count: 5, name: "i8042")
        try portIO.attach(acpiSleep, base: ACPISleepRegisters.controlPort, count: 2, name: "ACPI sleep registers")
        try portIO.attach(DiscardDevice(), base: DiscardDevice.postPort, count: 1, name: "POST")
    }

    private func attachSerialMMIO(at address: UInt64, state: Serial16550.State?) throws {
        guard let gsi = freeGSIs.popLast() else { throw ConfigurationError.noFreeInterrupt(device: "--serial-mmio") }
        let notify = serialNotify
        let line = KVMIRQLine(vm: vm, gsi: gsi)
        let uart = try state.map { try Serial16550(state: $0, interrupt: line, output: serialOutput, onInputSpace: { notify.signal() }) }
            ?? Serial16550(interrupt: line, output: serialOutput, onInputSpace: { notify.signal() })
        try mmio.attach(uart, base: address, size: 0x1000, name: "MMIO 16550")
        serialMMIO = uart
        serialMMIOWindow = FirmwareLayout.MMIOWindow(base: address, size: 0x1000, gsi: gsi)
    }

    // MARK: devices added by other layers (virtio)

    /// Reserve the next virtio-mmio window and interrupt line.
    public func allocateVirtioWindow(name: String) throws -> (base: UInt64, size: UInt64, gsi: UInt32) {
        guard virtioWindows.count < Machine.maxVirtioDevices else { throw ConfigurationError.noFreeMMIOWindow(device: name) }
        guard !freeGSIs.isEmpty else { throw ConfigurationError.noFreeInterrupt(device: name) }
        let gsi = freeGSIs.removeFirst()
        let base = Machine.virtioMMIOBase + UInt64(virtioWindows.count) * Machine.virtioMMIOStride
        virtioWindows.append(FirmwareLayout.MMIOWindow(base: base, size: Machine.virtioMMIOStride, gsi: gsi))
        return (base, Machine.virtioMMIOStride, gsi)
    }

    /// Linux's `virtio_mmio.device=` entries for every window (kernels without ACPI).
    public var virtioCommandLine: String {
        virtioWindows.map { w in "virtio_mmio.device=4K@\(hex(w.base)):\(w.gsi ?? 0)" }.joined(separator: " ")
    }

    /// An irqfd-backed edge interrupt on `gsi`.
    public func makeIRQFD(gsi: UInt32) throws -> IRQFDLine {
        try IRQFDLine(vm: vm, gsi: gsi)
    }

    // MARK: boot and run

    /// Write the firmware tables, load the kernel, initrd and command line (with
    /// `extraCommandLine` appended), and set every vCPU's initial state.
    public func boot(extraCommandLine: String = "") throws {
        let firmware = try FirmwareImage(layout: FirmwareLayout(cpuCount: configuration.cpus, virtioMMIO: virtioWindows,
                                                               serialMMIO: serialMMIOWindow, com1: true))
        try firmware.write(to: memory)
        var cmdline = configuration.commandLine
        if !extraCommandLine.isEmpty { cmdline += (cmdline.isEmpty ? "" : " ") + extraCommandLine }
        let image = try kernel ?? LinuxKernel(contentsOf: configuration.kernelPath)
        kernel = nil
        let loaded = try LinuxLoader.load(image, into: memory, layout: layout, commandLine: cmdline,
                                          initrd: configuration.initrdPath.map { .path($0) },
                                          elfEntry: configuration.elfEntry, acpiRSDP: firmware.rsdpAddress)

        let supported = try kvm.supportedCPUID().map(CPUIDEntry.init)
        for vcpu in vcpus {
            let tsc = vcpu.tscKHz().map { UInt32($0) }
            try vcpu.setCPUID(GuestCPUID.entries(from: supported, vcpu: vcpu.id, cpuCount: vcpus.count, tscKHz: tsc).map(\.kvm))
            try vcpu.setMSRs(BootMSRs.entries)
            try vcpu.setFPU(FPUState().kvm)
            var lapic = try vcpu.getLAPIC()
            BootLAPIC.configureLINT(&lapic)
            try vcpu.setLAPIC(lapic)
        }
        // Only the boot vCPU gets an entry state; the others wait in the in-kernel LAPIC
        // for INIT/SIPI from the guest.
        var sregs = try vcpus[0].getSpecialRegisters()
        loaded.entry.apply(to: &sregs)
        try vcpus[0].setSpecialRegisters(sregs)
        try vcpus[0].setRegisters(loaded.entry.kvmRegs)
        memory.adviseHugePages()
    }

    /// Start one thread per vCPU. The buses are sealed first: the vCPUs read their tables
    /// without locks.
    public func start(paused: Bool = false) throws {
        portIO.seal()
        mmio.seal()
        let handlers = ExitHandlers(portIO: portIO, mmio: mmio, memory: memory, control: control)
        for vcpu in vcpus {
            do {
                let runner = try VCPURunner(vcpu: vcpu, handlers: handlers)
                try runner.start(paused: paused)
                runners.append(runner)
            } catch {
                control.requestStop(.vmmError("\(error)"))
                throw error
            }
        }
        // Wait until every vCPU has parked (and take their "parked" signals, which a
        // later pause would otherwise mistake for its own).
        if paused { try pause() }
    }

    /// Take every vCPU out of KVM_RUN and park it. On return no vCPU runs guest code and
    /// each one's registers can be read (`vcpu(_:)`). Throws if a vCPU did not park within
    /// `timeoutMillis` (the machine is then stopped: a vCPU that ignores a kick is a VMM bug).
    public func pause(timeoutMillis: Int32 = 5000) throws {
        for r in runners where !r.pause(timeoutMillis: timeoutMillis) {
            let error = KVMError("pause: vCPU \(r.vcpu.id) did not leave KVM_RUN within \(timeoutMillis) ms", errno: ETIMEDOUT)
            control.requestStop(.vmmError("\(error)"))
            throw error
        }
    }

    /// Tell a kvmclock guest, vCPU by vCPU, that it was stopped, so the time it missed is
    /// not taken for a soft lockup (KVM_KVMCLOCK_CTRL, as QEMU does on `stop`). Guests
    /// without kvmclock refuse it (EINVAL), which is fine.
    public func notifyGuestPaused() {
        for v in vcpus { _ = ckvm_kvmclock_ctrl(v.fd) }
    }

    /// Let parked vCPUs run again, from exactly where they stopped.
    public func resume() {
        for r in runners { r.resume() }
    }

    /// The vCPU with index `i`; its registers may be accessed while the machine is paused
    /// or not yet started.
    public func vcpu(_ i: Int) -> VCPU? { i >= 0 && i < vcpus.count ? vcpus[i] : nil }

    /// Block until the guest or the host stops the machine.
    public func wait() -> MachineStopReason { control.wait() }

    public func requestStop(_ reason: MachineStopReason) { control.requestStop(reason) }

    /// Stop and join the vCPU threads.
    public func shutdown() {
        control.requestStop(.hostRequest("shutdown"))
        for r in runners { r.kick() }
        for r in runners { r.join() }
        if bootFirstRun == nil { bootFirstRun = runners.first?.firstRunTime }
        retiredExits = exitCounts
        runners.removeAll()
    }

    /// Monotonic time of the first KVM_RUN on the boot vCPU, if it has happened.
    public var firstRunTime: timespec? { bootFirstRun ?? runners.first?.firstRunTime }
    private var bootFirstRun: timespec?

    public var vcpuCount: Int { vcpus.count }

    /// Userspace exits of all vCPUs so far, by kind (also after `shutdown`).
    public var exitCounters: MetricCounters {
        let c = exitCounts
        return [("exits_io", c.io), ("exits_mmio", c.mmio), ("exits_interrupted", c.other)]
    }

    private var exitCounts: (io: UInt64, mmio: UInt64, other: UInt64) {
        var total = retiredExits
        for r in runners {
            let c = r.exitCounts
            total.io &+= c.io; total.mmio &+= c.mmio; total.other &+= c.other
        }
        return total
    }
    /// The counts of the threads `shutdown` joined.
    private var retiredExits: (io: UInt64, mmio: UInt64, other: UInt64) = (0, 0, 0)
}
