import CKVM
import Glibc
import Synchronization

/// KVM_GET_SUPPORTED_CPUID, asked once per `/dev/kvm` handle and, when started early, on a
/// thread of its own. KVM answers it by executing CPUID for every leaf it reports; where
/// CPUID traps to an outer hypervisor (a cloud VM host, this project's test machines) that
/// is ~0.6 ms, a fifth of main → first KVM_RUN, spent while the caller could be reading a
/// snapshot or loading a kernel. The host's answer cannot change while the process runs.
final class SupportedCPUIDQuery: Sendable {
    private struct State {
        var thread: pthread_t?
        var result: Result<[kvm_cpuid_entry2], KVMError>?
    }

    private let state = Mutex(State())

    /// Start asking on a thread (once; later calls do nothing). Without a thread (it could
    /// not be created) `entries` asks on the caller's.
    func start(fd: Int32) {
        state.withLock { s in
            guard s.thread == nil, s.result == nil else { return }
            let job = Unmanaged.passRetained(Job(query: self, fd: fd))
            var t = pthread_t()
            let r = pthread_create(&t, nil, { raw in
                let job = Unmanaged<Job>.fromOpaque(raw!).takeRetainedValue()
                let answer = SupportedCPUIDQuery.ask(fd: job.fd)
                job.query.state.withLock { $0.result = $0.result ?? answer }
                return nil
            }, job.toOpaque())
            if r == 0 { s.thread = t } else { job.release() }
        }
    }

    /// The answer: waits for the thread if one is asking, asks here if none did.
    func entries(fd: Int32) throws(KVMError) -> [kvm_cpuid_entry2] {
        join()
        if let r = state.withLock({ $0.result }) { return try r.get() }
        let answer = SupportedCPUIDQuery.ask(fd: fd)
        state.withLock { $0.result = $0.result ?? answer }
        return try answer.get()
    }

    /// Wait for the asking thread, if any. The owner (the KVM handle) calls this before it
    /// closes the descriptor the thread uses.
    func join() {
        let t = state.withLock { s -> pthread_t? in
            defer { s.thread = nil }
            return s.thread
        }
        if let t { pthread_join(t, nil) }
    }

    private final class Job {
        let query: SupportedCPUIDQuery
        let fd: Int32
        init(query: SupportedCPUIDQuery, fd: Int32) { self.query = query; self.fd = fd }
    }

    /// The ioctl itself, growing the buffer until it fits.
    private static func ask(fd: Int32) -> Result<[kvm_cpuid_entry2], KVMError> {
        var n: UInt32 = 128
        while n <= 4096 {
            guard let buf = ckvm_cpuid2_alloc(n) else { return .failure(KVMError("KVM_GET_SUPPORTED_CPUID", errno: ENOMEM)) }
            defer { free(buf) }
            let r = ckvm_get_supported_cpuid(fd, buf)
            if r == -E2BIG { n *= 2; continue }
            if r < 0 { return .failure(KVMError("KVM_GET_SUPPORTED_CPUID", errno: -Int32(r))) }
            return .success(Array(UnsafeBufferPointer(start: ckvm_cpuid2_entries(buf), count: Int(buf.pointee.nent))))
        }
        return .failure(KVMError("KVM_GET_SUPPORTED_CPUID", errno: E2BIG))
    }
}
