/// Why a qcow2 image cannot be opened, or why an operation on it failed. At open these
/// are bad input (exit 2); while running, the guest gets an I/O error for the request.
public enum Qcow2Error: Error, Equatable, CustomStringConvertible {
    case notQcow2(path: String)
    case tooSmall(path: String)
    case unsupportedVersion(path: String, version: UInt32)
    case invalidHeader(path: String, reason: String)
    case encrypted(path: String)
    case externalDataFile(path: String)
    case unknownIncompatibleFeatures(path: String, bits: UInt64)
    case unsupportedFeature(path: String, feature: String)
    case dirty(path: String)
    case markedCorrupt(path: String)
    case internalSnapshots(path: String, count: UInt32)
    case backingLoop(path: String, backing: String)
    case backingTooDeep(path: String, limit: Int)
    case backingFormat(path: String, format: String)
    case corrupt(path: String, reason: String)
    case decompression(path: String, offset: UInt64)
    case full(path: String)

    public var description: String {
        switch self {
        case .notQcow2(let p): return "disk image \(p) is not a qcow2 image (no QFI\\xfb magic)"
        case .tooSmall(let p): return "qcow2 image \(p) is shorter than its header"
        case .unsupportedVersion(let p, let v): return "qcow2 image \(p) has version \(v); versions 2 and 3 are supported"
        case .invalidHeader(let p, let r): return "qcow2 image \(p) has an invalid header: \(r)"
        case .encrypted(let p): return "qcow2 image \(p) is encrypted; encrypted images are not supported"
        case .externalDataFile(let p): return "qcow2 image \(p) keeps its data in an external file; not supported"
        case .unknownIncompatibleFeatures(let p, let b): return "qcow2 image \(p) uses unknown incompatible features \(hex(b))"
        case .unsupportedFeature(let p, let f): return "qcow2 image \(p) uses \(f), which is not supported"
        case .dirty(let p): return "qcow2 image \(p) was not closed cleanly (dirty, lazy refcounts); repair it with 'qemu-img check -r all \(p)'"
        case .markedCorrupt(let p): return "qcow2 image \(p) is marked corrupt; repair it with 'qemu-img check -r all \(p)' or open it read-only"
        case .internalSnapshots(let p, let n): return "qcow2 image \(p) has \(n) internal snapshots; writing to it is not supported (open it read-only)"
        case .backingLoop(let p, let b): return "qcow2 image \(p): backing file \(b) is already in the chain (a loop)"
        case .backingTooDeep(let p, let n): return "qcow2 image \(p): backing chain deeper than \(n) images"
        case .backingFormat(let p, let f): return "qcow2 image \(p): backing format '\(f)' is not supported (raw or qcow2)"
        case .corrupt(let p, let r): return "qcow2 image \(p) is corrupt: \(r)"
        case .decompression(let p, let o): return "qcow2 image \(p): compressed cluster at byte \(o) does not inflate"
        case .full(let p): return "qcow2 image \(p) cannot grow further (host offsets exhausted)"
        }
    }
}
