/// The kinds of threads a VMM process runs. Each runs under its own seccomp allow-list
/// (`Seccomp`), installed by the thread itself when it starts.
public enum ThreadKind: String, CaseIterable, Sendable {
    /// Runs KVM_RUN for one vCPU and answers its port-I/O and MMIO exits.
    case vcpu
    /// The event loop: virtio queues, the console, interrupts through irqfd.
    case vmm
    /// A disk's I/O threads: reads, writes, flushes and qcow2 metadata, and the
    /// completions (used ring, irqfd) they hand back.
    case block
    /// The control API server: accepts and answers requests on its Unix socket.
    case api
    /// The process's main thread once the VM runs: waits for the end, then tears down.
    case main
    /// The main thread of a VM driven by the control API, once the VM runs: executes the
    /// requests the API thread hands it (pause, snapshots, drive updates, metrics), waits
    /// for the end, then tears down (Firecracker's VMM thread).
    case control
}
