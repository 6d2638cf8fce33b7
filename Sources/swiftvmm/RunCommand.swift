import Glibc
import KVMKit
import VirtioDevices

/// `swiftvmm run`: boot a Linux kernel (or the probe kernel) with its console on the terminal.
extension RunOptions {
    func runMachine() throws {
        let clockAtStart = mainStartNanoseconds
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
