/// Why firmware tables could not be built or placed.
public enum FirmwareError: Error, Equatable, CustomStringConvertible {
    case invalidCPUCount(Int)
    case tooManyDevices(Int)
    /// A device window that Memory32Fixed cannot describe (empty, or not below 4 GiB).
    case windowNotBelow4GiB(device: String, base: UInt64, size: UInt64)
    case invalidGSI(device: String, gsi: UInt32)
    /// The tables outgrew their reserved area.
    case areaFull(area: String, needed: UInt64, available: UInt64)
    /// Guest memory does not back the place a table must go.
    case notInGuestMemory(table: String, address: UInt64, length: Int, reason: GuestMemoryError)
    case aml(AMLError)

    public var description: String {
        switch self {
        case .invalidCPUCount(let n):
            return "firmware tables: \(n) vCPUs is out of range (1…\(FirmwareLayout.maxCPUCount))"
        case .tooManyDevices(let n):
            return "firmware tables: \(n) virtio-mmio devices is more than the DSDT can name (256)"
        case .windowNotBelow4GiB(let d, let b, let s):
            return "firmware tables: \(d) window \(hex(b))+\(hex(s)) must be non-empty and below 4 GiB"
        case .invalidGSI(let d, let g):
            return "firmware tables: \(d) GSI \(g) is above the IOAPIC's last pin \(FirmwareLayout.maxGSI)"
        case .areaFull(let a, let n, let avail):
            return "firmware tables: \(a) needs \(n) bytes but only \(avail) are reserved"
        case .notInGuestMemory(let t, let a, let l, let r):
            return "firmware tables: cannot write \(t) (\(l) bytes) at \(hex(a)): \(r)"
        case .aml(let e):
            return "firmware tables: DSDT: \(e)"
        }
    }
}
