import Glibc
import KVMKit
import VirtioDevices
import VMMCore

/// `swiftvmm run`: boot a Linux kernel (or the probe kernel) with its console on the terminal.
extension RunOptions {
    func runMachine() throws {
        if apiSock != nil || configFile != nil || id != nil { return try runManaged() }
        let clockAtStart = mainStartNanoseconds
        Seccomp.processPolicy = try seccompPolicy()
        let vm = try MicroVM(configuration: try makeVMConfiguration(), kvm: {
            do { return try KVM() } catch { throw RuntimeFailure("\(error)") }
        })
        if snapshotOnSignal != nil && migrateOnSignal != nil {
            throw ValidationError("--snapshot-on-signal and --migrate-on-signal both want SIGUSR1: choose one")
        }
        let signals = try snapshotOnSignal.map { try SignalActions(snapshot: $0, vm: vm) }
            ?? migrateOnSignal.map { try SignalActions(migrate: $0, vm: vm) }
        if let r = restore {
            let (state, memory) = try snapshotPaths(r, option: "--restore")
            try vm.loadSnapshot(snapshotPath: state, memPath: memory, resume: true)
        } else if let m = migrateFrom {
            let address: MigrationAddress
            do { address = try MigrationAddress(parsing: m) } catch { throw ValidationError("--migrate-from: \(error)") }
            try vm.receiveMigration(from: address)
            warn("migration received on \(address): the guest runs here")
        } else {
            try vm.start()
        }
        try signals?.start()
        defer { reportHandOver(vm.stopReason) }
        if isPVMHost() {
            warn("PVM host: a kernel not built with CONFIG_PVM_GUEST runs in PVM's instruction emulator (slow)")
        }
        // Last: threads created later would inherit it. A signal action writes snapshot
        // files or connects to a migration peer from its own thread, which the main
        // thread's list does not allow, so with one the main thread stays unfiltered.
        if signals == nil { Seccomp.installOnThreadStart(.main) }
        let reason = vm.waitForStop()
        vm.shutdown()
        reportExit(of: vm, clockAtStart: clockAtStart)
        try finish(reason)
    }

    /// `--timings`, dropped console output and unhandled accesses, on stderr.
    private func reportExit(of vm: MicroVM, clockAtStart: Int64) {
        let built = vm.builtAt ?? clockAtStart
        vm.withMachine { machine in
            if timings, let first = machine.firstRunTime {
                let firstRun = Int64(first.tv_sec) * 1_000_000_000 + Int64(first.tv_nsec)
                warn("timings: main → machine built \(milliseconds(built - clockAtStart)) ms, main → first KVM_RUN \(milliseconds(firstRun - clockAtStart)) ms")
                // Absolute CLOCK_MONOTONIC values, so a harness can measure from its own exec.
                warn("timings: monotonic ns main=\(clockAtStart) first-KVM_RUN=\(firstRun)")
            }
            let dropped = machine.serialOutput.droppedBytes
            if dropped > 0 { warn("\(dropped) bytes of guest console output were dropped (the console was too slow)") }
            let unhandled = machine.portIO.unhandled.readCount + machine.portIO.unhandled.writeCount
                + machine.mmio.unhandled.readCount + machine.mmio.unhandled.writeCount
            if timings {
                var line = "unhandled accesses: \(unhandled); COM1 transmitted \(machine.serial.metrics.transmittedBytes) bytes"
                if let m = machine.serialMMIO { line += ", MMIO 16550 transmitted \(m.metrics.transmittedBytes) bytes" }
                warn(line)
            }
        }
    }

    /// `--api-sock`/`--config-file`: the VM belongs to the API (and the file); the other
    /// options give its starting configuration, and with `--kernel` it starts at once.
    private func runManaged() throws {
        // These act on a VM the command line builds; under the API, its requests do.
        for (given, option, instead) in [(restore != nil, "--restore", "PUT /snapshot/load"),
                                         (migrateFrom != nil, "--migrate-from", "a plain `swiftvmm run --migrate-from`"),
                                         (snapshotOnSignal != nil, "--snapshot-on-signal", "PUT /snapshot/create"),
                                         (migrateOnSignal != nil, "--migrate-on-signal", "a plain `swiftvmm run`")] where given {
            throw ValidationError("\(option) cannot be combined with --api-sock, --config-file or --id: use \(instead)")
        }
        var m = ManagedRun()
        m.seccomp = try seccompPolicy()
        m.apiSocket = apiSock
        m.configFile = configFile
        if let id {
            guard FirecrackerCommandLine.isValidID(id) else { throw ValidationError("--id \(id): use 1-64 letters, digits and '-'") }
            m.id = id
        }
        m.initial = try makeVMConfiguration()
        if kernel == nil && apiSock != nil { m.initial.bootSource = nil }
        m.startImmediately = configFile == nil && m.initial.bootSource != nil
        try m.run()
    }

    func makeVMConfiguration() throws -> VMConfiguration {
        var c = VMConfiguration()
        c.machine.trackDirtyPages = trackDirtyPages
        c.console.mode = try ConsoleMode(parsing: serial)
        if restore != nil || migrateFrom != nil { return c }  // everything else comes from the source
        let kernelPath = try kernel ?? DefaultGuest.probeKernelPath()
        var boot = VMConfiguration.BootSource(kernelPath: kernelPath, initrdPath: initrd,
                                              bootArgs: cmdline ?? (kernel == nil ? "console=ttyS0" : MachineConfiguration.defaultCommandLine))
        switch elfEntry {
        case nil: break
        case "linux64"?: boot.elfEntry = .linux64
        case "pvh"?: boot.elfEntry = .pvh
        case let other?: throw ValidationError("--elf-entry \(other): use linux64 or pvh")
        }
        c.bootSource = boot
        c.machine.memSizeMiB = memory
        c.machine.vcpuCount = cpus
        switch console {
        case "serial": c.console.device = .serial
        case "hvc": c.console.device = .hvc
        default: throw ValidationError("--console \(console): use serial or hvc")
        }
        if let s = serialMMIO {
            guard let a = parseInteger(s) else { throw ValidationError("--serial-mmio \(s): not an address (use e.g. 0xd1000000)") }
            c.console.serialMMIOAddress = a
        }
        for text in disks {
            // `run` flushes for real (writeback); the id (the guest's serial) defaults to the file name.
            let d = try DiskOptions(parsing: text)
            c.drives.append(.init(id: d.serial, path: d.path, readOnly: d.readOnly, cacheType: .writeback, rateLimit: d.rateLimit,
                                  format: d.format))
        }
        let netOptions = try nets.map { s throws(NetOptionsError) in try NetOptions(parsing: s) }
        for (n, id) in zip(netOptions, try NetOptions.validate(netOptions)) {
            var named = n
            named.id = id
            c.networkInterfaces.append(named)
        }
        c.vsock = try vsock.map { s throws(VsockOptionsError) in try VsockOptions(parsing: s) }
        c.entropy = rng
        c.virtioCommandLine = !noVirtioCommandLine
        return c
    }
}

/// How a stopped VM ends the process (README "Exit codes").
func finish(_ reason: MachineStopReason) throws {
    switch reason {
    case .powerOff, .hostRequest:
        return
    case .reset:
        warn("guest reset")
    case .guestCrash(let why, let dump):
        warn("guest crashed: \(why)")
        StandardError.write(dump + "\n")
        throw ExitCode(VMMExit.failure)
    case .vmmError(let why):
        throw RuntimeFailure(why)
    }
}

/// A hand-over or a suspend says so last, on stderr: its figures are in the stop reason
/// (the thread that migrated may not run again before the process exits).
func reportHandOver(_ reason: MachineStopReason?) {
    if case .hostRequest(let why)? = reason, why.hasPrefix("migrated") || why.hasPrefix("suspended") { warn(why) }
}

/// A failure after the input was accepted: exit 1.
struct RuntimeFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

func warn(_ s: String) { StandardError.write("swiftvmm: \(s)\n") }


func isPVMHost() -> Bool { access("/sys/module/kvm_pvm", F_OK) == 0 }

/// Decimal or 0x-prefixed hexadecimal.
func parseInteger(_ s: String) -> UInt64? {
    if s.hasPrefix("0x") || s.hasPrefix("0X") { return UInt64(s.dropFirst(2), radix: 16) }
    return UInt64(s)
}

/// Nanoseconds as milliseconds with three decimals, e.g. "12.345".
func milliseconds(_ ns: Int64) -> String {
    let us = (ns + 500) / 1000
    let frac = abs(us % 1000)
    return "\(us / 1000)." + (frac < 10 ? "00" : frac < 100 ? "0" : "") + "\(frac)"
}
