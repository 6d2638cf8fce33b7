import CKVM
import Glibc

extension KVM {
    /// Bytes of a vCPU's XSAVE area: KVM_CAP_XSAVE2's answer (which may exceed the
    /// legacy 4 KiB struct), 4096 with only KVM_CAP_XSAVE, nil without XSAVE support.
    public var xsaveSize: Int? {
        let size = Int(checkExtension(KVM_CAP_XSAVE2))
        if size > 0 { return max(size, CKVM_XSAVE_LEGACY_SIZE) }
        return checkExtension(KVM_CAP_XSAVE) > 0 ? CKVM_XSAVE_LEGACY_SIZE : nil
    }

    /// Whether the host has KVM_GET_XSAVE2 (and so a size it reports).
    var hasXSAVE2: Bool { checkExtension(KVM_CAP_XSAVE2) > 0 }
}
