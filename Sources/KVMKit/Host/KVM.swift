import CKVM
import Glibc

/// The KVM system handle (`/dev/kvm`).
public final class KVM: Sendable {
    public static let defaultDevicePath = "/dev/kvm"
    /// The only stable KVM API version.
    public static let expectedAPIVersion: Int32 = 12

    public let fd: Int32
    public let path: String
    private let cpuid = SupportedCPUIDCache()

    public init(path: String = KVM.defaultDevicePath) throws {
        let fd = ckvm_open_rw_cloexec(path)
        if fd < 0 { throw KVMError("open \(path)", errno: -fd) }
        self.fd = fd
        self.path = path
        let version = ckvm_get_api_version(fd)
        if version != KVM.expectedAPIVersion {
            close(fd)
            if version < 0 { throw KVMError("KVM_GET_API_VERSION", errno: -version) }
            throw KVMError("KVM_GET_API_VERSION returned \(version), expected 12", errno: EINVAL)
        }
    }

    deinit { close(fd) }

    public var apiVersion: Int32 { ckvm_get_api_version(fd) }

    /// KVM_CHECK_EXTENSION: 0 when absent, otherwise the capability's value.
    public func checkExtension(_ capability: Int32) -> Int32 {
        max(0, ckvm_check_extension(fd, Int(capability)))
    }

    public func vcpuMmapSize() throws -> Int {
        Int(try check("KVM_GET_VCPU_MMAP_SIZE", ckvm_get_vcpu_mmap_size(fd)))
    }

    /// Maximum vCPUs per VM (KVM_CAP_MAX_VCPUS, falling back to NR_VCPUS, then 4).
    public var maxVCPUs: Int {
        let m = checkExtension(KVM_CAP_MAX_VCPUS)
        if m > 0 { return Int(m) }
        return recommendedVCPUs
    }

    public var recommendedVCPUs: Int {
        let n = checkExtension(KVM_CAP_NR_VCPUS)
        return n > 0 ? Int(n) : 4
    }

    /// KVM_GET_SUPPORTED_CPUID, asked once per handle (`SupportedCPUIDCache`).
    public func supportedCPUID() throws -> [kvm_cpuid_entry2] {
        try cpuid.entries(fd: fd)
    }

    /// KVM_GET_MSR_INDEX_LIST.
    public func msrIndexList() throws -> [UInt32] {
        guard let probe = ckvm_msr_list_alloc(0) else { throw KVMError("KVM_GET_MSR_INDEX_LIST", errno: ENOMEM) }
        _ = ckvm_get_msr_index_list(fd, probe) // E2BIG, fills nmsrs
        let n = probe.pointee.nmsrs
        free(probe)
        guard let list = ckvm_msr_list_alloc(n) else { throw KVMError("KVM_GET_MSR_INDEX_LIST", errno: ENOMEM) }
        defer { free(list) }
        _ = try check("KVM_GET_MSR_INDEX_LIST", ckvm_get_msr_index_list(fd, list))
        let count = Int(list.pointee.nmsrs)
        return Array(UnsafeBufferPointer(start: ckvm_msr_list_indices(list), count: count))
    }

    public func createVM() throws -> VirtualMachine {
        let vmfd = try check("KVM_CREATE_VM", ckvm_create_vm(fd, 0))
        return VirtualMachine(kvm: self, fd: vmfd)
    }
}
