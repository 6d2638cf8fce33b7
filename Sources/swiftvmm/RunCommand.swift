import ArgumentParser
import Glibc
import KVMKit
import VirtioDevices
import VMMCore

/// `swiftvmm run`: boot a Linux kernel (or the probe kernel) with its console on the terminal.
struct RunCommand: ParsableCommand, RunOptions {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Boot a Linux kernel in a microVM.",
        discussion: """
            Exit status: 0 when the guest powers off or resets, or on Ctrl-A x; 1 when the guest \
            crashes or the VMM fails; 2 on bad input (nothing was started).
            Console keys on a terminal: Ctrl-A x quit, Ctrl-A h help, Ctrl-A Ctrl-A a literal Ctrl-A.
            """)

    @Option(help: "Kernel: bzImage or ELF vmlinux. Default: the probe kernel (probe.bzImage next to swiftvmm or in guests/out).")
    var kernel: String?

    @Option(help: "Initial ramdisk.")
    var initrd: String?

    @Option(help: "Kernel command line (default: \"\(MachineConfiguration.defaultCommandLine)\").")
    var cmdline: String?

    @Option(help: "Guest RAM in MiB.")
    var memory: UInt64 = PlainRunOptions.defaults.memory

    @Option(help: "Number of vCPUs.")
    var cpus: Int = PlainRunOptions.defaults.cpus

    @Option(help: "Serial console: stdio, file:PATH, socket:PATH or none.")
    var serial: String = PlainRunOptions.defaults.serial

    @Option(name: .customLong("serial-mmio"), help: "Also attach a 16550 at this MMIO address, e.g. 0xd1000000 (for earlycon=uart8250,mmio,ADDRESS).")
    var serialMMIO: String?

    @Option(name: .customLong("elf-entry"), help: "For an ELF vmlinux: linux64 (64-bit boot protocol) or pvh.")
    var elfEntry: String?

    @Option(name: .customLong("disk"), help: "A virtio-blk disk: PATH[,ro][,id=NAME] (raw image file or block device; repeatable).")
    var disks: [String] = []

    @Flag(help: "Add a virtio-rng entropy device.")
    var rng = false

    @Option(help: "Which guest device the host console (--serial) is connected to: serial (COM1) or hvc (virtio-console; COM1 output is still shown).")
    var console: String = PlainRunOptions.defaults.console

    @Flag(name: .customLong("no-virtio-cmdline"), help: "Do not append virtio_mmio.device= entries to the kernel command line (the DSDT declares the devices either way).")
    var noVirtioCommandLine = false

    @Flag(help: "Print start-up timings to stderr.")
    var timings = false

    @Option(help: "Restore a snapshot instead of booting: STATE,MEM (the state and memory files). The machine, disks and devices are the snapshot's; --serial still chooses where the console goes.")
    var restore: String?

    @Option(name: .customLong("snapshot-on-signal"), help: "STATE,MEM[,diff][,exit]: on SIGUSR1 pause, write a snapshot there (Full; Diff with diff, which needs --track-dirty-pages or a restored VM that had it) and resume, or with exit stop the VM (suspend to disk).")
    var snapshotOnSignal: String?

    @Flag(name: .customLong("track-dirty-pages"), help: "Log written guest pages, for Diff snapshots.")
    var trackDirtyPages = false

    @Option(name: .customLong("migrate-from"), help: "Receive a live migration instead of booting: listen on unix:PATH or tcp:HOST:PORT for one source.")
    var migrateFrom: String?

    @Option(name: .customLong("migrate-on-signal"), help: "ADDRESS (unix:PATH or tcp:HOST:PORT): on SIGUSR1 live-migrate the VM there; exit 0 once the destination runs it.")
    var migrateOnSignal: String?

    @Option(name: .customLong("api-sock"), help: "Serve Firecracker's control API on this Unix socket. Without --kernel the VM waits for InstanceStart.")
    var apiSock: String?

    @Option(name: .customLong("config-file"), help: "Configure and start the VM from a Firecracker configuration file (JSON).")
    var configFile: String?

    @Option(help: "Instance id (GET /, logs), 1-64 letters, digits and '-'.")
    var id: String?

    func run() throws { try runMachine() }
}

// The command's work, for `RunCommand` and for `FastRunParser`'s options alike.
extension RunOptions {
    func runMachine() throws {
        if apiSock != nil || configFile != nil || id != nil { return try runManaged() }
        let clockAtStart = mainStartNanoseconds
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
        defer {  // a hand-over or suspend says so last (its figures come from the VM's stop reason)
            if case .hostRequest(let why) = vm.stopReason, why.hasPrefix("migrated") || why.hasPrefix("suspended") { warn(why) }
        }
        if isPVMHost() {
            warn("PVM host: a kernel not built with CONFIG_PVM_GUEST runs in PVM's instruction emulator (slow)")
        }
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
        var m = ManagedRun()
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
            c.drives.append(.init(id: d.serial, path: d.path, readOnly: d.readOnly, cacheType: .writeback))
        }
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
        fputs(dump + "\n", stderr)
        throw ExitCode(VMMExit.failure)
    case .vmmError(let why):
        throw RuntimeFailure(why)
    }
}

/// A failure after the input was accepted: exit 1.
struct RuntimeFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

func warn(_ s: String) { fputs("swiftvmm: \(s)\n", stderr) }


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
