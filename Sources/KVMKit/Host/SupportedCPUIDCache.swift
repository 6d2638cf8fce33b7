import CKVM
import Glibc
import Synchronization

/// KVM_GET_SUPPORTED_CPUID, asked once per `/dev/kvm` handle. KVM answers it by executing
/// CPUID for every leaf it reports; where CPUID traps to an outer hypervisor (a cloud VM
/// host, this project's test machines) that costs 0.4–0.6 ms, and a VM asks it when it
/// boots or restores and again for every snapshot and migration, while the guest is
/// paused. The host's answer cannot change while the process runs.
final class SupportedCPUIDCache: Sendable {
    private let answer = Mutex<Result<[kvm_cpuid_entry2], KVMError>?>(nil)

    func entries(fd: Int32) throws(KVMError) -> [kvm_cpuid_entry2] {
        if let known = answer.withLock({ $0 }) { return try known.get() }
        let asked = SupportedCPUIDCache.ask(fd: fd)
        answer.withLock { $0 = $0 ?? asked }
        return try asked.get()
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
