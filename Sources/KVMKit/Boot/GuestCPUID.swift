/// One CPUID leaf as KVM_GET_SUPPORTED_CPUID / KVM_SET_CPUID2 carry it.
public struct CPUIDEntry: Equatable {
    public var function: UInt32
    public var index: UInt32
    public var flags: UInt32
    public var eax: UInt32
    public var ebx: UInt32
    public var ecx: UInt32
    public var edx: UInt32

    /// KVM_CPUID_FLAG_SIGNIFCANT_INDEX: `index` (the subleaf, ECX) selects this entry.
    public static let significantIndex: UInt32 = 1

    public init(function: UInt32, index: UInt32 = 0, flags: UInt32 = 0,
                eax: UInt32 = 0, ebx: UInt32 = 0, ecx: UInt32 = 0, edx: UInt32 = 0) {
        self.function = function
        self.index = index
        self.flags = flags
        self.eax = eax
        self.ebx = ebx
        self.ecx = ecx
        self.edx = edx
    }
}

/// The CPUID a vCPU sees: KVM's supported set with this vCPU's APIC ID and a topology of
/// one socket, `cpuCount` cores, one thread per core; the KVM signature leaves and the
/// TSC frequency leaf. Pure: the machine calls it once per vCPU and passes the result to
/// KVM_SET_CPUID2. Feature bits are left as KVM reports them (KVM already hides what it
/// cannot virtualise; the devices swiftvmm lacks have no CPUID bits).
public enum GuestCPUID {
    public static let hypervisorBase: UInt32 = 0x4000_0000
    public static let kvmFeatures: UInt32 = 0x4000_0001
    public static let tscFrequencyLeaf: UInt32 = 0x4000_0010
    /// KVM's local APIC timer runs at 1 GHz (one tick per nanosecond).
    public static let lapicBusKHz: UInt32 = 1_000_000
    /// "KVMKVMKVM\0\0\0" in EBX, ECX, EDX.
    static let kvmSignature: (UInt32, UInt32, UInt32) = (0x4B4D_564B, 0x564B_4D56, 0x0000_004D)
    static let amdVendor: (UInt32, UInt32, UInt32) = (0x6874_7541, 0x444D_4163, 0x6974_6E65)  // AuthenticAMD (ebx, ecx, edx)
    static let hygonVendor: (UInt32, UInt32, UInt32) = (0x6F67_7948, 0x656E_6975, 0x6E65_476E)  // HygonGenuine

    /// - Parameters:
    ///   - supported: entries from KVM_GET_SUPPORTED_CPUID.
    ///   - vcpu: this vCPU's index, which is also its APIC ID.
    ///   - cpuCount: vCPUs in the machine (1...255).
    ///   - tscKHz: TSC frequency (KVM_GET_TSC_KHZ); nil leaves out leaf 0x4000_0010.
    public static func entries(from supported: [CPUIDEntry], vcpu: Int, cpuCount: Int, tscKHz: UInt32?) -> [CPUIDEntry] {
        let count = UInt32(max(1, min(cpuCount, 255)))
        let apicID = UInt32(max(0, min(vcpu, 254)))
        let coreBits = count <= 1 ? 0 : UInt32(32 - (count - 1).leadingZeroBitCount)
        let leaf0 = supported.first { $0.function == 0 }
        let isAMD = leaf0.map { ($0.ebx, $0.ecx, $0.edx) == amdVendor || ($0.ebx, $0.ecx, $0.edx) == hygonVendor } ?? false

        var out: [CPUIDEntry] = []
        for var e in supported {
            switch e.function {
            case 1:
                e.ebx = (e.ebx & 0x0000_FFFF) | (apicID << 24) | (min(count, 255) << 16)
                e.ecx |= 1 << 31  // hypervisor present
                if count > 1 { e.edx |= 1 << 28 } else { e.edx &= ~(1 << 28) }  // HTT: EBX[23:16] valid
            case 4:
                // Deterministic cache parameters: cores per package, and which of them share
                // the cache (L1/L2 private to a core; L3 shared by the socket).
                let level = (e.eax >> 5) & 7
                let sharing: UInt32 = level >= 3 ? count - 1 : 0
                e.eax &= 0x0000_3FFF
                e.eax |= (min(count - 1, 63) << 26) | (min(sharing, 0xFFF) << 14)
            case 0xB, 0x1F:
                continue  // rebuilt below
            case 0x8000_0001 where isAMD:
                if count > 1 { e.ecx |= 1 << 1 } else { e.ecx &= ~(1 << 1) }  // CmpLegacy
            case 0x8000_0008 where isAMD:
                e.ecx = (e.ecx & ~0xF0FF) | (coreBits << 12) | (count - 1)  // ApicIdSize, NC
            case 0x8000_001E where isAMD:
                e.eax = apicID  // extended APIC ID
                e.ebx = (e.ebx & ~0xFFFF) | (apicID & 0xFF)  // one thread per core; core ID
                e.ecx &= ~0x7FF  // node 0, one node per package
            case hypervisorBase...0x4000_00FF:
                continue  // rebuilt below
            default:
                break
            }
            out.append(e)
        }

        for leaf: UInt32 in [0xB, 0x1F] where supported.contains(where: { $0.function == leaf }) {
            out += topologyLeaf(leaf, apicID: apicID, count: count, coreBits: coreBits)
        }

        let features = supported.first { $0.function == kvmFeatures } ?? CPUIDEntry(function: kvmFeatures)
        let s = kvmSignature
        out.append(CPUIDEntry(function: hypervisorBase, eax: tscKHz == nil ? kvmFeatures : tscFrequencyLeaf,
                              ebx: s.0, ecx: s.1, edx: s.2))
        out.append(features)
        if let khz = tscKHz { out.append(CPUIDEntry(function: tscFrequencyLeaf, eax: khz, ebx: lapicBusKHz)) }
        return out
    }

    /// x2APIC topology (leaf 0xB or 0x1F): SMT level with 1 thread, core level with
    /// `count` cores, then the invalid level that ends the enumeration.
    static func topologyLeaf(_ leaf: UInt32, apicID: UInt32, count: UInt32, coreBits: UInt32) -> [CPUIDEntry] {
        let flags = CPUIDEntry.significantIndex
        return [
            CPUIDEntry(function: leaf, index: 0, flags: flags, eax: 0, ebx: 1, ecx: (1 << 8) | 0, edx: apicID),
            CPUIDEntry(function: leaf, index: 1, flags: flags, eax: coreBits, ebx: count, ecx: (2 << 8) | 1, edx: apicID),
            CPUIDEntry(function: leaf, index: 2, flags: flags, eax: 0, ebx: 0, ecx: 2, edx: apicID),
        ]
    }
}
