import CKVM
import Glibc
import Synchronization

/// Which filters the threads of this process install when they start.
public enum SeccompPolicy: Sendable {
    /// No filters (library default; `swiftvmm run --no-seccomp`).
    case disabled
    /// The built-in allow-lists (`SeccompAllowLists`), each compiled by the first thread
    /// of its kind as it starts and reused by the others: a run compiles only the kinds it
    /// starts, and not on the main thread's way to the first KVM_RUN (compiling all six
    /// there took ~0.3 ms).
    case allowLists
    /// A program per thread kind: a `--seccomp-filter` file, or `builtIn()`.
    case filters([ThreadKind: [BPFInstruction]])

    /// The built-in allow-lists, every kind compiled at once (tests; a filter to export).
    public static func builtIn() throws(SeccompError) -> SeccompPolicy {
        var programs: [ThreadKind: [BPFInstruction]] = [:]
        for kind in ThreadKind.allCases { programs[kind] = try SeccompProgram.compile(SeccompAllowLists.rules(for: kind)) }
        return .filters(programs)
    }
}

/// Per-thread seccomp filters. A thread installs its own filter when it starts
/// (`VCPURunner`; `EventLoop.start(threadKind:)`, `.vmm` for devices, `.api` for the API
/// server's loop; the main thread once the others run, `.main` or in API mode `.control`),
/// so each kind has only its own allow-list; a filter is inherited by threads the
/// filtered thread creates, so the main thread installs its filter last.
///
/// A forbidden call traps: the SIGSYS handler (C, async-signal-safe) writes
/// `swiftvmm: seccomp: <kind> thread made a forbidden system call: <name> (<nr>)`,
/// restores the terminal and ends the process with status 159 (128 + SIGSYS).
public enum Seccomp {
    /// Set once, before the VM's threads start (the CLI does it from its options); read by
    /// every thread start.
    nonisolated(unsafe) public static var processPolicy: SeccompPolicy = .disabled

    public static let forbiddenCallExitStatus = Int32(CKVM_SECCOMP_EXIT_STATUS)

    /// Install `kind`'s filter from `policy` on the calling thread (nothing when disabled).
    public static func install(for kind: ThreadKind, policy: SeccompPolicy = processPolicy) throws(SeccompError) {
        let program: [BPFInstruction]
        switch policy {
        case .disabled: return
        case .allowLists: program = try compiledAllowList(for: kind)
        case .filters(let programs):
            guard let p = programs[kind] else { return }
            program = p
        }
        // glibc reads the time zone (opens /etc/localtime) on the first gmtime_r/timegm of
        // the process — the CMOS model's, on a vCPU thread, when Linux reads the RTC. Found
        // in the nested bed: do it here, unfiltered.
        tzset()
        ckvm_seccomp_set_thread_kind(kind.rawValue)
        _ = ckvm_seccomp_install_sigsys_handler { ConsoleExitCleanup.restoreTerminal() }
        let count = UInt16(clamping: program.count)
        let r = program.withUnsafeBufferPointer { ckvm_seccomp_load($0.baseAddress, count) }
        if r < 0 { throw .installFailed(kind: kind, errno: -r) }
    }

    /// Built-in programs compiled so far: the first thread of a kind compiles its list,
    /// the next ones (a disk's other I/O threads, more vCPUs) reuse it.
    /// An array by `ThreadKind.allCases` position, not a dictionary: hashing the kind's
    /// String raw value put Swift's string hashing on the run path (+100 KiB resident text).
    private static let compiled = Mutex<[[BPFInstruction]?]>(Array(repeating: nil, count: ThreadKind.allCases.count))

    static func compiledAllowList(for kind: ThreadKind) throws(SeccompError) -> [BPFInstruction] {
        let slot = ThreadKind.allCases.firstIndex(of: kind)!
        if let known = compiled.withLock({ $0[slot] }) { return known }
        // Outside the lock: threads of other kinds compile theirs at the same time.
        let program = try SeccompProgram.compile(SeccompAllowLists.rules(for: kind))
        return compiled.withLock { cache in
            if let first = cache[slot] { return first }
            cache[slot] = program
            return program
        }
    }

    /// The thread-start hook: install the process policy's filter for `kind`. A thread that
    /// was meant to run filtered must not run unfiltered, so a failure ends the process
    /// (status 1, one line).
    public static func installOnThreadStart(_ kind: ThreadKind) {
        do {
            try install(for: kind)
        } catch {
            StandardError.write("swiftvmm: \(error)\n")
            ConsoleExitCleanup.runNow()
            _exit(1)
        }
    }
}
