import Glibc

/// Interrupting a vCPU thread that sits in KVM_RUN: set `immediate_exit`, then send the
/// thread a signal whose handler does nothing (the signal only makes KVM_RUN return
/// EINTR). Installed without SA_RESTART so the ioctl is not restarted.
public enum VCPUKick {
    public static let signal: Int32 = SIGUSR2

    private static let installOnce: Void = {
        var sa = sigaction()
        sa.__sigaction_handler.sa_handler = { _ in }
        sigemptyset(&sa.sa_mask)
        sa.sa_flags = 0
        sigaction(VCPUKick.signal, &sa, nil)
    }()

    public static func install() { _ = installOnce }

    public static func kick(_ vcpu: VCPU, thread: pthread_t) {
        vcpu.requestImmediateExit()
        pthread_kill(thread, signal)
    }
}
