import ArgumentParser
import Glibc
import KVMKit
import VirtioDevices

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

    @Flag(name: .customLong("no-seccomp"), help: "Run without seccomp filters (docs/sandbox.md).")
    var noSeccomp = false

    @Option(name: .customLong("seccomp-filter"), help: "Seccomp filters from FILE: compiled BPF per thread kind, the format of Firecracker's seccompiler-bin (docs/sandbox.md).")
    var seccompFilter: String?

    func run() throws { try runMachine() }
}

// The command's work, for `RunCommand` and for `FastRunParser`'s options alike.
extension RunOptions {
    func runMachine() throws {
        let clockAtStart = mainStartNanoseconds
        Seccomp.processPolicy = try seccompPolicy()
        let config = try makeConfiguration()
        let consoleMode = try ConsoleMode(parsing: serial)
        guard console == "serial" || console == "hvc" else { throw ValidationError("--console \(console): use serial or hvc") }
        let diskOptions = try disks.map { try DiskOptions(parsing: $0) }
        let kvm: KVM
        do { kvm = try KVM() } catch { throw RuntimeFailure("\(error)") }
        let machine = try Machine(configuration: config, kvm: kvm)
        let loop = try EventLoop()
        for (i, d) in diskOptions.enumerated() {
            try VirtioMachineAttachment.attach(try VirtioBlock(options: d), name: "virtio-blk \(i) (\(d.path))", to: machine, loop: loop)
        }
        if rng { try VirtioMachineAttachment.attach(VirtioRng(), name: "virtio-rng", to: machine, loop: loop) }
        var guestPort: ConsoleGuestPort = SerialConsolePort(machine: machine)
        if console == "hvc" {
            let hvc = try VirtioConsole()
            try VirtioMachineAttachment.attach(hvc, name: "virtio-console", to: machine, loop: loop)
            guestPort = try MergedConsolePort(primary: VirtioConsolePort(hvc), alsoOutputFrom: guestPort, loop: loop)
        }
        try machine.boot(extraCommandLine: noVirtioCommandLine ? "" : machine.virtioCommandLine)
        let built = monotonicNanoseconds()
        if isPVMHost() {
            warn("PVM host: a kernel not built with CONFIG_PVM_GUEST runs in PVM's instruction emulator (slow)")
        }

        let console = ConsoleBackend(mode: consoleMode, port: guestPort, loop: loop) {
            machine.requestStop(.hostRequest("Ctrl-A x"))
        }
        try console.start()
        do {
            try loop.start()
            try machine.start()
            Seccomp.installOnThreadStart(.main)  // last: threads created later would inherit it
        } catch {
            machine.shutdown(); loop.stop(); loop.join(); console.shutdown()
            throw RuntimeFailure("\(error)")
        }
        let reason = machine.wait()
        machine.shutdown()
        loop.stop()
        loop.join()
        console.shutdown()

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

    func makeConfiguration() throws -> MachineConfiguration {
        let kernelPath = try kernel ?? DefaultGuest.probeKernelPath()
        var c = MachineConfiguration(kernelPath: kernelPath, initrdPath: initrd,
                                     commandLine: cmdline ?? (kernel == nil ? "console=ttyS0" : MachineConfiguration.defaultCommandLine),
                                     memoryMiB: memory, cpus: cpus)
        if let s = serialMMIO {
            guard let a = parseInteger(s) else { throw ValidationError("--serial-mmio \(s): not an address (use e.g. 0xd1000000)") }
            c.serialMMIOAddress = a
        }
        switch elfEntry {
        case nil: break
        case "linux64"?: c.elfEntry = .linux64
        case "pvh"?: c.elfEntry = .pvh
        case let other?: throw ValidationError("--elf-entry \(other): use linux64 or pvh")
        }
        return c
    }
}

/// A failure after the input was accepted: exit 1.
struct RuntimeFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

func warn(_ s: String) { fputs("swiftvmm: \(s)\n", stderr) }

func monotonicNanoseconds() -> Int64 {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Int64(t.tv_sec) * 1_000_000_000 + Int64(t.tv_nsec)
}

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
