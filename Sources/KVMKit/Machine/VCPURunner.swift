import CKVM
import Glibc
import Synchronization

/// What a vCPU thread needs to answer exits. Built before the thread starts.
public struct ExitHandlers: @unchecked Sendable {
    public let portIO: PortIOBus
    public let mmio: MMIOBus
    public let memory: GuestMemory
    public let control: MachineControl

    public init(portIO: PortIOBus, mmio: MMIOBus, memory: GuestMemory, control: MachineControl) {
        self.portIO = portIO
        self.mmio = mmio
        self.memory = memory
        self.control = control
    }
}

/// One thread running KVM_RUN for one vCPU, dispatching exits to the buses.
///
/// The thread takes commands through a mailbox (pause, resume) plus the kick that gets it
/// out of KVM_RUN: a paused vCPU is parked outside KVM_RUN, blocked on an eventfd, so its
/// registers can be read and written and it uses no host CPU.
public final class VCPURunner: @unchecked Sendable {
    public let vcpu: VCPU
    let handlers: ExitHandlers
    /// The thread handle: set once by `start`, taken once by `join`; read by `kick` from a
    /// stop handler on any thread, so it lives under a lock.
    private let thread = Mutex<pthread_t?>(nil)
    /// Set (once) just before the first KVM_RUN; read by `--timings`.
    public var firstRunTime: timespec? { firstRun.withLock { $0 } }
    private let firstRun = Mutex<timespec?>(nil)
    /// What the owner asked for and whether the thread is parked; one lock, so a pause that
    /// arrives before a resumed thread even woke up finds it still parked.
    private let mailbox = Mutex(Mailbox())
    private struct Mailbox {
        var pauseRequested = false
        var isParked = false
    }
    /// Mirrors `mailbox.pauseRequested` for the run loop's per-exit check.
    private let pauseRequested = Atomic<Bool>(false)
    private let ioExits = Atomic<UInt64>(0)
    private let mmioExits = Atomic<UInt64>(0)
    private let otherExits = Atomic<UInt64>(0)

    /// Exits this vCPU handled in userspace, by kind (relaxed counters: for metrics).
    public var exitCounts: (io: UInt64, mmio: UInt64, other: UInt64) {
        (ioExits.load(ordering: .relaxed), mmioExits.load(ordering: .relaxed), otherExits.load(ordering: .relaxed))
    }
    /// Signalled by the vCPU thread when it has parked (or ended).
    private let parked: EventFD
    /// Signalled to let a parked vCPU go on (resume, or stop).
    private let wakeup: EventFD

    public init(vcpu: VCPU, handlers: ExitHandlers) throws {
        self.vcpu = vcpu
        self.handlers = handlers
        parked = try EventFD()
        wakeup = try EventFD()
    }

    /// Start the thread. The vCPU's registers must already be set. `paused`: the thread
    /// parks before its first KVM_RUN (a restored machine waits for `resume`).
    public func start(paused: Bool = false) throws {
        VCPUKick.install()
        if paused { pauseRequested.store(true, ordering: .sequentiallyConsistent) }
        let box = Unmanaged.passRetained(self)
        var t = pthread_t()
        let r = pthread_create(&t, nil, { arg in
            let runner = Unmanaged<VCPURunner>.fromOpaque(arg!).takeRetainedValue()
            runner.loop()
            runner.parked.signal()  // a pauser waiting for this vCPU must not wait for ever
            return nil
        }, box.toOpaque())
        if r != 0 {
            box.release()
            throw KVMError("pthread_create for vCPU \(vcpu.id)", errno: r)
        }
        thread.withLock { $0 = t }
        handlers.control.addStopHandler { [weak self] in self?.kick() }
    }

    /// Interrupt KVM_RUN (or a park) so the thread notices a stop or a pause.
    public func kick() {
        thread.withLock { t in
            if let t { VCPUKick.kick(vcpu, thread: t) }
        }
        wakeup.signal()
    }

    /// Ask the thread to leave KVM_RUN and park; returns once it has (true), or false if it
    /// did not within `timeoutMillis`.
    func pause(timeoutMillis: Int32) -> Bool {
        let alreadyParked = mailbox.withLock { m -> Bool in
            m.pauseRequested = true
            pauseRequested.store(true, ordering: .sequentiallyConsistent)
            return m.isParked
        }
        if alreadyParked { return true }
        thread.withLock { t in
            if let t { VCPUKick.kick(vcpu, thread: t) }
        }
        return parked.wait(timeoutMillis: timeoutMillis)
    }

    /// Let a parked thread go on.
    func resume() {
        mailbox.withLock { m in
            m.pauseRequested = false
            pauseRequested.store(false, ordering: .sequentiallyConsistent)
        }
        wakeup.signal()
    }

    public func join() {
        guard let t = thread.withLock({ t -> pthread_t? in defer { t = nil }; return t }) else { return }
        pthread_join(t, nil)
    }

    /// Park until resumed or stopped. Runs on the vCPU thread, outside KVM_RUN.
    private func park() {
        let mustPark = mailbox.withLock { m -> Bool in
            guard m.pauseRequested else { return false }
            m.isParked = true
            return true
        }
        guard mustPark else { return }
        parked.signal()
        while true {
            _ = wakeup.wait()
            let leave = mailbox.withLock { m -> Bool in
                guard !m.pauseRequested || handlers.control.isStopped else { return false }
                m.isParked = false
                return true
            }
            if leave { return }
        }
    }

    private func loop() {
        // Only the kick signal may interrupt this thread; others go to the main thread.
        var set = sigset_t()
        sigfillset(&set)
        sigdelset(&set, VCPUKick.signal)
        pthread_sigmask(SIG_SETMASK, &set, nil)
        Seccomp.installOnThreadStart(.vcpu)

        let control = handlers.control
        var entered = false
        while !control.isStopped {
            if pauseRequested.load(ordering: .sequentiallyConsistent) {
                park()
                continue
            }
            if !entered {
                // The first real entry (a restored machine parks before it).
                entered = true
                var now = timespec()
                clock_gettime(CLOCK_MONOTONIC, &now)
                firstRun.withLock { $0 = now }
            }
            let exit: VMExit
            do {
                exit = try vcpu.run()
            } catch {
                control.requestStop(.vmmError("\(error)"))
                return
            }
            switch exit {
            case .ioOut(let port, let size, let count, let data):
                ioExits.wrappingAdd(1, ordering: .relaxed)
                handlers.portIO.handleOut(port: port, size: size, count: count, data: data)
            case .ioIn(let port, let size, let count, let data):
                ioExits.wrappingAdd(1, ordering: .relaxed)
                handlers.portIO.handleIn(port: port, size: size, count: count, data: data)
            case .mmioWrite(let address, _, let data):
                mmioExits.wrappingAdd(1, ordering: .relaxed)
                handlers.mmio.handleWrite(address: address, data: data)
            case .mmioRead(let address, _, let data):
                mmioExits.wrappingAdd(1, ordering: .relaxed)
                handlers.mmio.handleRead(address: address, data: data)
            case .interrupted, .irqWindowOpen:
                otherExits.wrappingAdd(1, ordering: .relaxed)
                continue
            case .halt:
                // Only without an in-kernel irqchip: the guest waits with nothing to wake it.
                control.requestStop(.guestCrash(reason: "vCPU \(vcpu.id) halted with no interrupt controller to wake it",
                                                 dump: CrashReport.registerDump(vcpu, memory: handlers.memory)))
            case .shutdown:
                control.requestStop(.guestCrash(reason: "vCPU \(vcpu.id): triple fault (KVM_EXIT_SHUTDOWN)",
                                                 dump: CrashReport.registerDump(vcpu, memory: handlers.memory)))
            case .internalError(let sub, let data):
                control.requestStop(.guestCrash(reason: CrashReport.internalErrorText(vcpu, suberror: sub, data: data, memory: handlers.memory),
                                                 dump: CrashReport.registerDump(vcpu, memory: handlers.memory)))
            case .failEntry(let reason, let cpu):
                control.requestStop(.guestCrash(reason: "vCPU \(vcpu.id): VM entry failed (hardware reason \(hex(reason)), cpu \(cpu))",
                                                 dump: CrashReport.registerDump(vcpu, memory: handlers.memory)))
            case .systemEvent(let type, _):
                switch Int32(type) {
                case KVM_SYSTEM_EVENT_SHUTDOWN: control.requestStop(.powerOff)
                case KVM_SYSTEM_EVENT_RESET: control.requestStop(.reset)
                default:
                    control.requestStop(.guestCrash(reason: "vCPU \(vcpu.id): system event \(type) (guest crash)",
                                                     dump: CrashReport.registerDump(vcpu, memory: handlers.memory)))
                }
            case .debug, .other:
                control.requestStop(.vmmError("vCPU \(vcpu.id): unexpected exit \(exit)"))
            }
        }
    }
}
