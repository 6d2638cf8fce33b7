import CKVM
import Glibc

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
public final class VCPURunner: @unchecked Sendable {
    public let vcpu: VCPU
    let handlers: ExitHandlers
    private var thread: pthread_t?
    /// Set (once) just before the first KVM_RUN; read by `--timings`.
    public private(set) var firstRunTime: timespec?
    private let started: Int32 = eventfd(0, Int32(EFD_CLOEXEC))

    public init(vcpu: VCPU, handlers: ExitHandlers) {
        self.vcpu = vcpu
        self.handlers = handlers
    }

    deinit { close(started) }

    /// Start the thread. The vCPU's registers must already be set.
    public func start() throws {
        VCPUKick.install()
        let box = Unmanaged.passRetained(self)
        var t = pthread_t()
        let r = pthread_create(&t, nil, { arg in
            let runner = Unmanaged<VCPURunner>.fromOpaque(arg!).takeRetainedValue()
            runner.loop()
            return nil
        }, box.toOpaque())
        if r != 0 {
            box.release()
            throw KVMError("pthread_create for vCPU \(vcpu.id)", errno: r)
        }
        thread = t
        handlers.control.addStopHandler { [weak self] in self?.kick() }
    }

    /// Interrupt KVM_RUN so the thread notices a stop.
    public func kick() {
        if let t = thread { VCPUKick.kick(vcpu, thread: t) }
    }

    public func join() {
        if let t = thread { pthread_join(t, nil) }
        thread = nil
    }

    private func loop() {
        // Only the kick signal may interrupt this thread; others go to the main thread.
        var set = sigset_t()
        sigfillset(&set)
        sigdelset(&set, VCPUKick.signal)
        pthread_sigmask(SIG_SETMASK, &set, nil)
        Seccomp.installOnThreadStart(.vcpu)

        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        firstRunTime = now
        let control = handlers.control
        while !control.isStopped {
            let exit: VMExit
            do {
                exit = try vcpu.run()
            } catch {
                control.requestStop(.vmmError("\(error)"))
                return
            }
            switch exit {
            case .ioOut(let port, let size, let count, let data):
                handlers.portIO.handleOut(port: port, size: size, count: count, data: data)
            case .ioIn(let port, let size, let count, let data):
                handlers.portIO.handleIn(port: port, size: size, count: count, data: data)
            case .mmioWrite(let address, _, let data):
                handlers.mmio.handleWrite(address: address, data: data)
            case .mmioRead(let address, _, let data):
                handlers.mmio.handleRead(address: address, data: data)
            case .interrupted, .irqWindowOpen:
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
