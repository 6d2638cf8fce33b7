import KVMKit

/// Every device a VM was built with, legacy and virtio, in creation order: the one place
/// that enumerates them for metrics, pause/resume and (later) saving state.
public final class DeviceRegistry: @unchecked Sendable {
    public enum Kind: String, Sendable {
        case serial, cmos, i8042, acpi, virtioBlock = "virtio-blk", virtioRng = "virtio-rng"
        case virtioConsole = "virtio-console"
    }

    public struct Entry {
        /// Unique and stable: "com1", "block_rootfs" …; the key of its metrics.
        public let id: String
        public let kind: Kind
        public let device: AnyObject
    }

    /// Written while the VM is built (one thread), read-only afterwards.
    public private(set) var entries: [Entry] = []

    public init() {}

    public func register(id: String, kind: Kind, device: AnyObject) throws {
        guard !entries.contains(where: { $0.id == id }) else {
            throw VMError.invalidConfiguration("device id \(id) is used twice")
        }
        entries.append(Entry(id: id, kind: kind, device: device))
    }

    /// `base`, or `base_2`, `base_3` … if taken (two `--disk` files with the same name).
    func uniqueID(_ base: String) -> String {
        var id = base, n = 1
        while entry(id) != nil { n += 1; id = "\(base)_\(n)" }
        return id
    }

    public func entry(_ id: String) -> Entry? { entries.first { $0.id == id } }

    /// The devices that quiesce when the VM pauses, in creation order.
    public var pausable: [Pausable] { entries.compactMap { $0.device as? Pausable } }

    /// Each device's counters, keyed by its id (devices without counters are left out).
    public var metrics: [(id: String, counters: MetricCounters)] {
        entries.compactMap { e in (e.device as? MetricsReporting).map { (e.id, $0.metricCounters) } }
    }
}
