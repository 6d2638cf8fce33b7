import KVMKit

/// Firecracker's `--config-file` document, also the answer to GET /vm/config: the same
/// body types as the API, under dashed keys ("boot-source", "machine-config", ...).
public struct FirecrackerConfig: Sendable, Equatable {
    public var bootSource: FirecrackerAPI.BootSource?
    public var drives: [FirecrackerAPI.Drive] = []
    public var machineConfig: FirecrackerAPI.MachineConfig?
    public var entropy: FirecrackerAPI.Entropy?
    public var logger: FirecrackerAPI.Logger?
    public var metrics: FirecrackerAPI.Metrics?
    public var networkInterfaces: [FirecrackerAPI.NetworkInterface] = []
    public var vsock: FirecrackerAPI.Vsock?
    public var balloon: FirecrackerAPI.Balloon?

    public init() {}

    static let supportedKeys = ["boot-source", "drives", "machine-config", "entropy", "logger", "metrics",
                                "network-interfaces", "vsock", "balloon"]
    /// Firecracker keys swiftvmm does not implement: refused by name, not as unknown.
    static let unsupportedKeys = ["cpu-config", "mmds-config", "pmem", "memory-hotplug", "serial"]

    public init(json: JSONValue) throws {
        let f = try JSONFields(json, at: "", known: Self.supportedKeys + Self.unsupportedKeys)
        for key in Self.unsupportedKeys where f.has(key) {
            throw APIDecodeError(path: key, problem: "not supported by swiftvmm")
        }
        bootSource = try f.optional("boot-source") { try FirecrackerAPI.BootSource(json: $0, at: $1) }
        drives = try f.optional("drives") { try Self.array($0, $1) { try FirecrackerAPI.Drive(json: $0, at: $1) } } ?? []
        machineConfig = try f.optional("machine-config") { try FirecrackerAPI.MachineConfig(json: $0, at: $1) }
        entropy = try f.optional("entropy") { try FirecrackerAPI.Entropy(json: $0, at: $1) }
        logger = try f.optional("logger") { try FirecrackerAPI.Logger(json: $0, at: $1) }
        metrics = try f.optional("metrics") { try FirecrackerAPI.Metrics(json: $0, at: $1) }
        networkInterfaces = try f.optional("network-interfaces") {
            try Self.array($0, $1) { try FirecrackerAPI.NetworkInterface(json: $0, at: $1) }
        } ?? []
        vsock = try f.optional("vsock") { try FirecrackerAPI.Vsock(json: $0, at: $1) }
        balloon = try f.optional("balloon") { try FirecrackerAPI.Balloon(json: $0, at: $1) }
        try Self.checkUnique(drives.map(\.driveID), "drives", "drive_id")
        try Self.checkUnique(networkInterfaces.map(\.ifaceID), "network-interfaces", "iface_id")
    }

    private static func array<T>(_ v: JSONValue, _ path: String, _ element: (JSONValue, String) throws -> T) throws -> [T] {
        guard case .array(let items) = v else {
            throw APIDecodeError(path: path, problem: "expected an array, got \(v.typeName)")
        }
        return try items.enumerated().map { try element($1, "\(path)[\($0)]") }
    }

    private static func checkUnique(_ ids: [String], _ key: String, _ field: String) throws {
        var seen = Set<String>()
        for (i, id) in ids.enumerated() where !seen.insert(id).inserted {
            throw APIDecodeError(path: "\(key)[\(i)].\(field)", problem: "duplicate id \(JSONDecode.quoted(id))")
        }
    }

    /// Every key present: absent single resources are null, absent lists empty (the shape
    /// of Firecracker's GET /vm/config).
    public var json: JSONValue {
        [
            "balloon": balloon?.json ?? .null,
            "drives": .array(drives.map(\.json)),
            "boot-source": bootSource?.json ?? .null,
            "cpu-config": .null,
            "logger": logger?.json ?? .null,
            "machine-config": machineConfig?.json ?? .null,
            "metrics": metrics?.json ?? .null,
            "mmds-config": .null,
            "network-interfaces": .array(networkInterfaces.map(\.json)),
            "vsock": vsock?.json ?? .null,
            "entropy": entropy?.json ?? .null,
        ]
    }
}

/// Why a config file was refused: one line, with the byte offset or the key path.
public enum ConfigFileError: Error, Sendable, Equatable, CustomStringConvertible {
    case json(JSONParseError)
    case content(APIDecodeError)

    public var description: String {
        switch self {
        case .json(let e): return "config file: \(e)"
        case .content(let e): return "config file: \(e)"
        }
    }
}

extension FirecrackerAPI {
    /// Config files are not network input, but still bounded: 1 MiB, 32 levels.
    static let configFileLimits = JSONParser.Limits(maxDepth: 32, maxBytes: 1 << 20)

    /// Parse a `--config-file` document with the same decoders as the API bodies.
    public static func parseConfigFile(_ bytes: [UInt8]) -> Result<FirecrackerConfig, ConfigFileError> {
        let value: JSONValue
        do {
            value = try JSONParser.parse(bytes, limits: configFileLimits)
        } catch {
            return .failure(.json(error))
        }
        do {
            return .success(try FirecrackerConfig(json: value))
        } catch let e as APIDecodeError {
            return .failure(.content(e))
        } catch {
            return .failure(.content(APIDecodeError(path: "", problem: "\(error)")))
        }
    }
}
