import CKVM
import Glibc

/// The built-in allow-lists, one per thread kind, from what each thread was measured to
/// call (strace -f on probe runs with disk, rng, hvc console, and a socket console) plus
/// the paths a measurement run does not reach (teardown, crash clean-up, pause and
/// register access). docs/sandbox.md lists them with their sizes; a test keeps the two
/// in step.
public enum SeccompAllowLists {
    public static func rules(for kind: ThreadKind) -> [SyscallRule] {
        switch kind {
        case .vcpu: return vcpu
        case .vmm: return vmm
        case .block: return block
        case .api: return api
        case .main: return main
        case .control: return control
        }
    }

    // What every thread needs: locks, memory, thread exit, log lines, and the terminal
    // clean-up that runs on whichever thread a crash signal hits (ConsoleExitCleanup).
    static let runtime: [SyscallRule] = [
        SyscallRule("futex", "locks, condition variables and thread joins (glibc, Swift runtime)"),
        SyscallRule("write", "eventfd signals and one-line log messages on stderr"),
        SyscallRule("mmap", "malloc: thread arenas and allocations of 128 KiB and more"),
        SyscallRule("munmap", "free of large allocations; thread stacks at exit"),
        SyscallRule("mprotect", "malloc grows a thread arena's heap inside its reservation"),
        SyscallRule("madvise", "malloc trimming; glibc releases a thread's stack at exit (MADV_DONTNEED)"),
        SyscallRule("brk", "malloc: the main arena"),
        SyscallRule("mremap", "realloc of large blocks"),
        SyscallRule("rt_sigprocmask", "glibc masks signals around thread exit"),
        SyscallRule("rt_sigreturn", "return from a signal handler (the vCPU kick, the terminal clean-up)"),
        SyscallRule("rt_sigaction", "the crash clean-up puts back a signal's previous handler before re-raising it"),
        SyscallRule("tgkill", "pthread_kill (vCPU kick) and raise (re-raising a crash signal)"),
        SyscallRule("gettid", "pthread_kill and raise name the target thread"),
        SyscallRule("getpid", "pthread_kill and raise name the target process"),
        SyscallRule("clock_gettime", "time stamps when the vDSO falls back to the system call"),
        SyscallRule("exit", "the thread ends"),
        SyscallRule("exit_group", "the process ends (also the SIGSYS reporter's own exit)"),
        SyscallRule("fcntl", "the crash clean-up restores a terminal's file status flags",
                    argument: 1, allowed: named(["F_GETFL": F_GETFL, "F_SETFL": F_SETFL])),
    ]

    /// The vCPU thread: KVM_RUN and the exit handlers (device models are pure; their side
    /// effects are eventfd writes and interrupt lines).
    static let vcpu: [SyscallRule] = [
        SyscallRule("ioctl", "KVM_RUN; register access for crash dumps, pause and snapshots; legacy interrupt lines; the tap's offloads when a virtio-net driver starts the device (DRIVER_OK); tcsetattr in the crash clean-up",
                    argument: 1, allowed: ioctl(["KVM_RUN", "KVM_GET_REGS", "KVM_SET_REGS", "KVM_GET_SREGS", "KVM_SET_SREGS",
                                                 "KVM_GET_FPU", "KVM_SET_FPU", "KVM_GET_MSRS", "KVM_SET_MSRS", "KVM_GET_LAPIC",
                                                 "KVM_SET_LAPIC", "KVM_GET_MP_STATE", "KVM_SET_MP_STATE", "KVM_GET_VCPU_EVENTS",
                                                 "KVM_SET_VCPU_EVENTS", "KVM_TRANSLATE", "KVM_IRQ_LINE", "TUNSETOFFLOAD"] + terminal)),
        SyscallRule("close", "a device or runner released on this thread closes its eventfd"),
        SyscallRule("poll", "a paused vCPU parks on an eventfd until it is resumed"),
        SyscallRule("read", "a parked vCPU takes its wake-up from the eventfd"),
    ] + runtime

    /// The event loop thread: epoll, device and disk I/O, the console (terminal, pipe or
    /// Unix socket), entropy for virtio-rng, interrupts.
    static let vmm: [SyscallRule] = [
        SyscallRule("epoll_wait", "the loop waits for its file descriptors"),
        SyscallRule("epoll_pwait", "epoll_wait as newer glibc issues it"),
        SyscallRule("read", "eventfds (ioeventfd, wake-up), console input, disk reads"),
        SyscallRule("epoll_ctl", "devices and console clients come and go"),
        SyscallRule("pread64", "virtio-blk reads"),
        SyscallRule("pwrite64", "virtio-blk writes"),
        SyscallRule("preadv", "virtio-blk reads into several guest buffers"),
        SyscallRule("pwritev", "virtio-blk writes from several guest buffers"),
        SyscallRule("readv", "scatter reads (console, future tap)"),
        SyscallRule("writev", "gather writes (console, future tap)"),
        SyscallRule("fdatasync", "virtio-blk flush"),
        SyscallRule("fsync", "virtio-blk flush on file systems without fdatasync"),
        SyscallRule("fallocate", "virtio-blk discard and write-zeroes (punch hole, zero range)"),
        SyscallRule("getrandom", "virtio-rng entropy"),
        SyscallRule("accept4", "the console socket takes a client"),
        SyscallRule("sendto", "console output to a socket client (send with MSG_NOSIGNAL)"),
        SyscallRule("recvfrom", "console input from a socket client"),
        SyscallRule("shutdown", "a console client is dropped"),
        SyscallRule("close", "closing console clients and released devices' fds"),
        SyscallRule("unlink", "the console socket file is removed when the console stops"),
        SyscallRule("timerfd_settime", "the console socket backs off after EMFILE at accept; rate-limiter and console-coalescing timers"),
        SyscallRule("socket", "vsock: a guest connection to host port P opens a Unix stream socket to PATH_P",
                    argument: 0, allowed: named(["AF_UNIX": AF_UNIX])),
        SyscallRule("connect", "vsock: that socket connects to PATH_P"),
        SyscallRule("ioctl", "interrupt lines and irqfd/ioeventfd set-up of devices; the terminal's mode and size",
                    argument: 1, allowed: ioctl(["KVM_IRQ_LINE", "KVM_IRQFD", "KVM_IOEVENTFD", "KVM_GET_DIRTY_LOG",
                                                 "TCGETS", "TIOCGWINSZ", "FIONBIO"] + terminal)),
    ] + runtime

    /// A disk's I/O threads (`BlockIOThreads`): the image file's data and metadata, and
    /// completions signalled through the device's irqfd (`write`, in `runtime`).
    static let block: [SyscallRule] = [
        SyscallRule("pread64", "virtio-blk reads; qcow2 metadata reads"),
        SyscallRule("pwrite64", "virtio-blk writes; qcow2 metadata writes"),
        SyscallRule("fdatasync", "virtio-blk flush; qcow2 metadata ordering"),
        SyscallRule("fallocate", "raw images: discard and write-zeroes (punch hole, zero range)"),
        SyscallRule("ftruncate", "qcow2: the file grows by a cluster for a copy-on-write allocation"),
        SyscallRule("epoll_wait", "an idle I/O thread waits for the queue's notify or its own wake-up eventfd"),
        SyscallRule("read", "drains the notify and wake-up eventfds"),
        SyscallRule("timerfd_settime", "the rate limiter's timer, armed when a notify's request is refused"),
    ] + runtime

    /// The API thread: a Unix-socket HTTP server that parses and routes requests and hands
    /// them to the VMM thread (`APIRequestChannel`); it opens nothing and drives no KVM fd.
    static let api: [SyscallRule] = [
        SyscallRule("epoll_wait", "waits for clients, its timer and the stop signal"),
        SyscallRule("epoll_ctl", "clients come and go"),
        SyscallRule("accept4", "takes a client"),
        SyscallRule("read", "request bytes; eventfd and timerfd wake-ups"),
        SyscallRule("sendto", "response bytes (send with MSG_NOSIGNAL)"),
        SyscallRule("close", "closes a client"),
        SyscallRule("timerfd_settime", "arms the timer for the earliest request, write or accept back-off deadline"),
        SyscallRule("poll", "waits for the VMM thread's answer (an eventfd)"),
        SyscallRule("ioctl", "tcsetattr in the crash clean-up", argument: 1, allowed: ioctl(terminal)),
    ] + runtime

    /// The main thread once every other thread runs: it waits for the machine to stop,
    /// joins the threads, closes everything, restores the terminal and exits.
    static let main: [SyscallRule] = [
        SyscallRule("read", "waits on the machine's stop eventfd"),
        SyscallRule("close", "teardown closes the VM, vCPU, device and console fds"),
        SyscallRule("epoll_ctl", "teardown unregisters devices and the console"),
        SyscallRule("shutdown", "the console drops its client at teardown"),
        SyscallRule("sendto", "the console's last output to a socket client (send with MSG_NOSIGNAL)"),
        SyscallRule("poll", "the console's last output waits (bounded) for a slow terminal or client"),
        SyscallRule("unlink", "the console socket file is removed at exit"),
        SyscallRule("newfstatat", "the vsock socket file is checked to be still ours before it is removed at exit"),
        SyscallRule("pread64", "a qcow2 disk closing at teardown reads refcount blocks to free clusters"),
        SyscallRule("pwrite64", "a qcow2 disk closing at teardown writes its metadata back and clears the dirty bit"),
        SyscallRule("fdatasync", "a qcow2 disk closing at teardown orders its metadata writes"),
        SyscallRule("ioctl", "the terminal is restored at exit", argument: 1, allowed: ioctl(["TCGETS"] + terminal)),
    ] + runtime

    /// The main thread of an API-driven VM once the VM runs: it waits for the API thread's
    /// requests, executes the post-boot ones (pause and resume, snapshots, drive updates,
    /// metrics, Ctrl-Alt-Del), then tears down as `main` does.
    static let control: [SyscallRule] = [
        SyscallRule("read", "waits on the API thread's request eventfd"),
        SyscallRule("poll", "waits for a request; the console's last output waits (bounded) for a slow client"),
        SyscallRule("close", "snapshot and drive files; teardown closes the VM, vCPU, device and console fds"),
        SyscallRule("openat", "PUT /snapshot/create writes its files (and reads a Diff's base); PATCH /drives opens the new image; PUT /logger and /metrics open theirs"),
        SyscallRule("newfstatat", "a new drive image's size; the API and vsock socket files are checked to be still ours before they are removed"),
        SyscallRule("flock", "a new drive image is locked against a second writer"),
        SyscallRule("fdatasync", "the old drive image is flushed before it is swapped out"),
        SyscallRule("ftruncate", "the snapshot memory file is sized"),
        SyscallRule("pwrite64", "snapshot memory pages"),
        SyscallRule("pread64", "a Diff snapshot copies its base's pages"),
        SyscallRule("fsync", "snapshot files and their directory reach the disk before the answer"),
        SyscallRule("rename", "a snapshot file replaces the old one whole (written under a temporary name)"),
        SyscallRule("link", "the previous memory file is kept until the new state file is in place"),
        SyscallRule("unlink", "that previous memory file is removed; the API and console socket files at exit"),
        SyscallRule("getrandom", "the random token that ties a snapshot's state file to its memory file"),
        SyscallRule("epoll_ctl", "teardown unregisters devices and the console"),
        SyscallRule("shutdown", "the console drops its client at teardown"),
        SyscallRule("sendto", "the console's last output to a socket client (send with MSG_NOSIGNAL); PUT /vm.send-migration's stream"),
        SyscallRule("socket", "PUT /vm.send-migration opens a stream to its destination (unix: or tcp:)",
                    argument: 0, allowed: named(["AF_UNIX": AF_UNIX, "AF_INET": AF_INET, "AF_INET6": AF_INET6])),
        SyscallRule("connect", "that stream connects to the destination"),
        SyscallRule("recvfrom", "the destination's answers on that stream (recv)"),
        SyscallRule("setsockopt", "a tcp: migration stream sends pages without Nagle's delay (TCP_NODELAY)",
                    argument: 1, allowed: named(["IPPROTO_TCP": Int32(IPPROTO_TCP)])),
        SyscallRule("dup3", "a migration hands the tap over (/dev/null takes its fd number) and, if it fails, attaches the tap there again"),
        SyscallRule("bind", "a migration that fails after the hand-over listens on the vsock socket path again"),
        SyscallRule("chmod", "that socket is made private to the user (0600)"),
        SyscallRule("listen", "and listens"),
        SyscallRule("ioctl", "pause (KVMCLOCK_CTRL) and a snapshot's vCPU, VM and host state; dirty logging switched on and off for a migration's rounds (SET_USER_MEMORY_REGION); the interrupt a drive update raises; a block device's size; the terminal is restored at exit; a failed migration attaches its tap again (TUNSETIFF, TUNSETVNETHDRSZ, TUNSETOFFLOAD)",
                    argument: 1, allowed: ioctl(["KVM_KVMCLOCK_CTRL", "KVM_CHECK_EXTENSION", "KVM_GET_MSR_INDEX_LIST",
                                                 "KVM_GET_SUPPORTED_CPUID", "KVM_GET_REGS", "KVM_GET_SREGS", "KVM_GET_FPU",
                                                 "KVM_GET_XSAVE2", "KVM_GET_XCRS", "KVM_GET_DEBUGREGS", "KVM_GET_MSRS",
                                                 "KVM_GET_LAPIC", "KVM_GET_MP_STATE", "KVM_GET_VCPU_EVENTS", "KVM_GET_TSC_KHZ",
                                                 "KVM_GET_CPUID2", "KVM_GET_IRQCHIP", "KVM_GET_PIT2", "KVM_GET_CLOCK",
                                                 "KVM_GET_DIRTY_LOG", "KVM_SET_USER_MEMORY_REGION", "KVM_IRQ_LINE", "BLKGETSIZE64",
                                                 "TUNSETIFF", "TUNSETVNETHDRSZ", "TUNSETOFFLOAD", "TCGETS"] + terminal)),
    ] + runtime

    /// tcsetattr's requests: the console's exit clean-up restores the terminal.
    private static let terminal = ["TCSETS", "TCSETSW", "TCSETSF"]

    private static func ioctl(_ names: [String]) -> [SyscallRule.NamedValue] {
        names.map { SyscallRule.NamedValue(name: $0, value: ckvm_ioctl_request($0)) }
    }

    private static func named(_ commands: KeyValuePairs<String, Int32>) -> [SyscallRule.NamedValue] {
        commands.map { SyscallRule.NamedValue(name: $0.key, value: UInt32(bitPattern: $0.value)) }
    }
}
