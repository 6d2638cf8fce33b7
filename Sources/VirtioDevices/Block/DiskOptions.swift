/// `--disk PATH[,ro][,id=NAME][,format=raw|qcow2][,bw=SIZE/MS[/BURST]][,iops=SIZE/MS[/BURST]]`,
/// parsed. Paths containing a comma are not supported.
public struct DiskOptions: Equatable {
    public var path: String
    public var readOnly = false
    /// nil: detected from the header (a qcow2 magic means qcow2, anything else raw).
    public var format: DiskFormat?
    /// GET_ID serial; nil means the file's base name.
    public var id: String?
    /// Bytes (`bw=`) and requests (`iops=`) token buckets, Firecracker's rate limiter.
    public var rateLimit = RateLimiterConfig()

    public init(path: String, readOnly: Bool = false, id: String? = nil, format: DiskFormat? = nil,
                rateLimit: RateLimiterConfig = RateLimiterConfig()) {
        self.path = path; self.readOnly = readOnly; self.id = id; self.format = format; self.rateLimit = rateLimit
    }

    public init(parsing text: String) throws {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        guard let first = parts.first, !first.isEmpty else { throw DiskOptionsError.missingPath(text) }
        path = first
        for part in parts.dropFirst() {
            if part == "ro" { readOnly = true }
            else if part.hasPrefix("id="), part.count > 3 { id = String(part.dropFirst(3)) }
            else if part.hasPrefix("format=") {
                guard let f = DiskFormat(rawValue: String(part.dropFirst(7))) else { throw DiskOptionsError.unknownFormat(part, in: text) }
                format = f
            }
            else if part.hasPrefix("bw=") || part.hasPrefix("iops=") {
                let (key, value) = (part.prefix { $0 != "=" }, String(part.drop { $0 != "=" }.dropFirst()))
                do {
                    let bucket = try RateLimiterConfig.Bucket(parsing: value, what: "--disk \(text): \(key)")
                    if key == "bw" { rateLimit.bandwidth = bucket } else { rateLimit.ops = bucket }
                } catch { throw DiskOptionsError.rateLimit(error) }
            }
            else { throw DiskOptionsError.unknownOption(part, in: text) }
        }
    }

    /// The serial reported to the guest: `id`, else the path's last component.
    public var serial: String {
        if let id { return id }
        return path.split(separator: "/").last.map(String.init) ?? path
    }
}

public enum DiskOptionsError: Error, Equatable, CustomStringConvertible {
    case missingPath(String)
    case unknownOption(String, in: String)
    case unknownFormat(String, in: String)
    case rateLimit(RateLimiterConfigError)

    public var description: String {
        switch self {
        case .missingPath(let t): return "--disk \(t): expected PATH[,ro][,id=NAME][,format=raw|qcow2][,bw=SIZE/MS][,iops=SIZE/MS]"
        case .unknownOption(let o, let t): return "--disk \(t): unknown option '\(o)' (expected ro, id=NAME, format=raw|qcow2, bw=SIZE/MS or iops=SIZE/MS)"
        case .unknownFormat(let o, let t): return "--disk \(t): unknown image format in '\(o)' (expected raw or qcow2)"
        case .rateLimit(let e): return "\(e)"
        }
    }
}
