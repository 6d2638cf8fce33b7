import KVMKit

/// `swiftvmm run`'s options: their values with the defaults, and the table that parses and
/// documents them. Adding an option: a field here and one line in `command.options`.
struct RunOptions {
    var kernel: String? = nil
    var initrd: String? = nil
    var cmdline: String? = nil
    var memory: UInt64 = 512
    var cpus: Int = 1
    var serial: String = "stdio"
    var serialMMIO: String? = nil
    var elfEntry: String? = nil
    var disks: [String] = []
    var nets: [String] = []
    var vsock: String? = nil
    var rng = false
    var console: String = "serial"
    var noVirtioCommandLine = false
    var timings = false
    var noSeccomp = false
    var seccompFilter: String? = nil
    var restore: String? = nil
    var snapshotOnSignal: String? = nil
    var trackDirtyPages = false
    var migrateFrom: String? = nil
    var migrateOnSignal: String? = nil
    var apiSock: String? = nil
    var configFile: String? = nil
    var id: String? = nil

    static let command = CommandSpec<RunOptions>(
        name: "run",
        abstract: "Boot a Linux kernel in a microVM.",
        discussion: """
            Exit status: 0 when the guest powers off or resets, or on Ctrl-A x; 1 when the guest \
            crashes or the VMM fails; 2 on bad input (nothing was started). \
            Console keys on a terminal: Ctrl-A x quit, Ctrl-A h help, Ctrl-A Ctrl-A a literal Ctrl-A.
            """,
        options: [
            .value("kernel", "PATH", "Kernel: bzImage or ELF vmlinux. Default: the probe kernel (probe.bzImage next to swiftvmm or in guests/out).") { $0.kernel = $1 },
            .value("initrd", "PATH", "Initial ramdisk.") { $0.initrd = $1 },
            .value("cmdline", "STRING", "Kernel command line (default: \"\(MachineConfiguration.defaultCommandLine)\").") { $0.cmdline = $1 },
            .value("memory", "MIB", "Guest RAM in MiB (default: 512).") { $0.memory = try integerValue($1, option: "memory") },
            .value("cpus", "N", "Number of vCPUs (default: 1).") { $0.cpus = try integerValue($1, option: "cpus") },
            .value("serial", "WHERE", "Serial console: stdio (default), file:PATH, socket:PATH or none.") { $0.serial = $1 },
            .value("serial-mmio", "ADDRESS", "Also attach a 16550 at this MMIO address, e.g. 0xd1000000 (for earlycon=uart8250,mmio,ADDRESS).") { $0.serialMMIO = $1 },
            .value("elf-entry", "KIND", "For an ELF vmlinux: linux64 (64-bit boot protocol) or pvh.") { $0.elfEntry = $1 },
            .repeated("disk", "PATH[,ro][,id=NAME][,format=raw|qcow2]", "A virtio-blk disk: raw or qcow2 image (detected from its header unless format= says), or a block device; repeatable. Rate limits: ,bw=BYTES/MS and ,iops=OPS/MS (each with an optional /BURST).") { $0.disks.append($1) },
            .repeated("net", "tap=NAME[,mac=MAC][,id=ID]", "A virtio-net device on a tap (opened, or created if missing and permitted); repeatable. Rate limits: ,rx-bw= ,rx-ops= ,tx-bw= ,tx-ops= SIZE/MS[/BURST].") { $0.nets.append($1) },
            .value("vsock", "cid=N,uds=PATH", "A virtio-vsock device, Firecracker's hybrid vsock (N >= 3; the host connects to PATH and writes CONNECT <port>; guest connections to host port P reach PATH_P).") { $0.vsock = $1 },
            .flag("rng", "Add a virtio-rng entropy device.") { $0.rng = true },
            .value("console", "DEVICE", "Which guest device the host console (--serial) is connected to: serial (COM1, default) or hvc (virtio-console; COM1 output is still shown).") { $0.console = $1 },
            .flag("no-virtio-cmdline", "Do not append virtio_mmio.device= entries to the kernel command line (the DSDT declares the devices either way).") { $0.noVirtioCommandLine = true },
            .flag("timings", "Print start-up timings to stderr.") { $0.timings = true },
            .flag("no-seccomp", "Run without seccomp filters (docs/sandbox.md).") { $0.noSeccomp = true },
            .value("seccomp-filter", "FILE", "Seccomp filters from FILE: compiled BPF per thread kind, the format of Firecracker's seccompiler-bin (docs/sandbox.md).") { $0.seccompFilter = $1 },
            .value("restore", "STATE,MEM", "Restore a snapshot instead of booting: the state and memory files. The machine, disks and devices are the snapshot's; --serial still chooses where the console goes.") { $0.restore = $1 },
            .value("snapshot-on-signal", "STATE,MEM[,diff][,exit]", "On SIGUSR1 pause, write a snapshot (Full, or Diff with diff, which needs --track-dirty-pages) and resume, or with exit stop the VM (suspend to disk).") { $0.snapshotOnSignal = $1 },
            .flag("track-dirty-pages", "Log written guest pages, for Diff snapshots.") { $0.trackDirtyPages = true },
            .value("migrate-from", "ADDRESS", "Receive a live migration instead of booting: listen on unix:PATH or tcp:HOST:PORT for one source.") { $0.migrateFrom = $1 },
            .value("migrate-on-signal", "ADDRESS", "On SIGUSR1 live-migrate the VM to unix:PATH or tcp:HOST:PORT; exit 0 once the destination runs it.") { $0.migrateOnSignal = $1 },
            .value("api-sock", "PATH", "Serve Firecracker's control API on this Unix socket. Without --kernel the VM waits for InstanceStart.") { $0.apiSock = $1 },
            .value("config-file", "PATH", "Configure and start the VM from a Firecracker configuration file (JSON).") { $0.configFile = $1 },
            .value("id", "ID", "Instance id (GET /, logs), 1-64 letters, digits and '-'.") { $0.id = $1 },
        ])
}
