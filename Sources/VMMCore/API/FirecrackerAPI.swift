import KVMKit

/// Firecracker's REST API: its paths, methods, JSON bodies and fault messages. `route`
/// is a pure function from a request to a typed `APIRequest` or an `APIError` (400 with
/// a one-line fault message); nothing is executed here.
public enum FirecrackerAPI {
    /// A method and a path pattern ("{id}" matches one path segment).
    public struct Route: Sendable, Equatable, CustomStringConvertible {
        public let method: HTTPMethod
        public let pattern: String
        public var description: String { "\(method.rawValue) \(pattern)" }
    }

    /// Every route the router serves; docs/api.json documents exactly these (a test
    /// checks both ways).
    public static let routes: [Route] = [
        Route(method: .get, pattern: "/"),
        Route(method: .get, pattern: "/version"),
        Route(method: .get, pattern: "/vm/config"),
        Route(method: .patch, pattern: "/vm"),
        Route(method: .put, pattern: "/actions"),
        Route(method: .get, pattern: "/machine-config"),
        Route(method: .put, pattern: "/machine-config"),
        Route(method: .patch, pattern: "/machine-config"),
        Route(method: .put, pattern: "/boot-source"),
        Route(method: .put, pattern: "/drives/{drive_id}"),
        Route(method: .patch, pattern: "/drives/{drive_id}"),
        Route(method: .put, pattern: "/entropy"),
        Route(method: .put, pattern: "/logger"),
        Route(method: .put, pattern: "/metrics"),
        Route(method: .get, pattern: "/metrics"),
        Route(method: .put, pattern: "/network-interfaces/{iface_id}"),
        Route(method: .patch, pattern: "/network-interfaces/{iface_id}"),
        Route(method: .put, pattern: "/vsock"),
        Route(method: .put, pattern: "/snapshot/create"),
        Route(method: .put, pattern: "/snapshot/load"),
        Route(method: .get, pattern: "/balloon"),
        Route(method: .put, pattern: "/balloon"),
        Route(method: .patch, pattern: "/balloon"),
        Route(method: .get, pattern: "/balloon/statistics"),
        Route(method: .patch, pattern: "/balloon/statistics"),
        // Cloud Hypervisor's (last: the fuzz seeds pick routes by index).
        Route(method: .put, pattern: "/vm.send-migration"),
        Route(method: .put, pattern: "/vm.receive-migration"),
    ]

    /// Firecracker paths swiftvmm does not serve at all: a clear 400 instead of
    /// "invalid path".
    static let unsupportedPaths = ["/mmds", "/mmds/config", "/cpu-config", "/serial", "/hotplug/memory",
                                   "/pmem/{id}", "/balloon/hinting/start", "/balloon/hinting/status",
                                   "/balloon/hinting/stop"]

    /// Bodies are bounded by the HTTP layer (51200 bytes); JSON nesting by this.
    static let bodyLimits = JSONParser.Limits(maxDepth: 16, maxBytes: 51200)

    public static func route(_ request: HTTPRequest) -> Result<APIRequest, APIError> {
        route(method: request.method, path: request.path, body: request.body)
    }

    public static func route(method: HTTPMethod, path: String, body: [UInt8]) -> Result<APIRequest, APIError> {
        do {
            return .success(try decode(method: method, path: path, body: body))
        } catch let e as APIError {
            return .failure(e)
        } catch let e as APIDecodeError {
            return .failure(.body(e))
        } catch {
            return .failure(APIError(.badRequest, "\(error)"))
        }
    }

    private static func decode(method: HTTPMethod, path: String, body: [UInt8]) throws -> APIRequest {
        let segments = Self.segments(path)
        guard let route = routes.first(where: { $0.method == method && matches($0.pattern, segments) }) else {
            if unsupportedPaths.contains(where: { matches($0, segments) }) {
                throw APIError(.badRequest, "\(method.rawValue) \(path) is not supported by swiftvmm.")
            }
            throw APIError(.badRequest, "Invalid request method and/or path: \(method.rawValue) \(path).")
        }
        if method == .get {
            guard body.isEmpty else { throw APIError(.badRequest, "GET request cannot have a body.") }
        } else if body.isEmpty {
            throw APIError(.badRequest, "Empty \(method.rawValue) request.")
        }
        let pathID = segments.count == 2 && route.pattern.utf8.last == UInt8(ascii: "}") ? try checkedID(segments[1]) : ""
        func json() throws -> JSONValue {
            do { return try JSONParser.parse(body, limits: bodyLimits) } catch { throw APIError.body(error) }
        }

        switch (method, route.pattern) {
        case (.get, "/"): return .getInstanceInfo
        case (.get, "/version"): return .getVersion
        case (.get, "/vm/config"): return .getVMConfig
        case (.get, "/machine-config"): return .getMachineConfig
        case (.get, "/metrics"): return .getMetrics
        case (.get, "/balloon"): return .getBalloon
        case (.get, "/balloon/statistics"): return .getBalloonStatistics
        case (.patch, "/vm"): return .patchVM(try VMStateChange(json: json()))
        case (.put, "/actions"): return .action(try ActionType(json: json()))
        case (.put, "/machine-config"): return .putMachineConfig(try MachineConfig(json: json()))
        case (.patch, "/machine-config"): return .patchMachineConfig(try MachineConfigUpdate(json: json()))
        case (.put, "/boot-source"): return .putBootSource(try BootSource(json: json()))
        case (.put, "/drives/{drive_id}"):
            let drive = try Drive(json: json())
            try checkSame(pathID, drive.driveID)
            return .putDrive(drive)
        case (.patch, "/drives/{drive_id}"):
            let update = try DriveUpdate(json: json())
            try checkSame(pathID, update.driveID)
            return .patchDrive(update)
        case (.put, "/entropy"): return .putEntropy(try Entropy(json: json()))
        case (.put, "/logger"): return .putLogger(try Logger(json: json()))
        case (.put, "/metrics"): return .putMetrics(try Metrics(json: json()))
        case (.put, "/network-interfaces/{iface_id}"):
            let iface = try NetworkInterface(json: json())
            try checkSame(pathID, iface.ifaceID)
            return .putNetworkInterface(iface)
        case (.patch, "/network-interfaces/{iface_id}"):
            let update = try NetworkInterfaceUpdate(json: json())
            try checkSame(pathID, update.ifaceID)
            return .patchNetworkInterface(update)
        case (.put, "/vsock"): return .putVsock(try Vsock(json: json()))
        case (.put, "/snapshot/create"): return .createSnapshot(try SnapshotCreate(json: json()))
        case (.put, "/snapshot/load"): return .loadSnapshot(try SnapshotLoad(json: json()))
        case (.put, "/vm.send-migration"): return .sendMigration(try SendMigration(json: json()))
        case (.put, "/vm.receive-migration"): return .receiveMigration(try ReceiveMigration(json: json()))
        case (.put, "/balloon"): return .putBalloon(try Balloon(json: json()))
        case (.patch, "/balloon"): return .patchBalloon(try BalloonUpdate(json: json()))
        case (.patch, "/balloon/statistics"): return .patchBalloonStatistics(try BalloonStatsUpdate(json: json()))
        default:
            // Every entry of `routes` has a case above (a test walks the table).
            throw APIError(.internalServerError, "No handler for \(route).")
        }
    }

    // MARK: paths and ids

    /// "/drives/a" → ["drives", "a"]; "/" → []. One trailing slash is ignored.
    static func segments(_ path: String) -> [String] {
        var parts = ASCII.split(path, UInt8(ascii: "/")).dropFirst()
        if parts.count > 1, parts.last == "" { parts = parts.dropLast() }
        if parts.count == 1, parts.first == "" { return [] }
        return Array(parts)
    }

    static func matches(_ pattern: String, _ segments: [String]) -> Bool {
        let wanted = Self.segments(pattern)
        guard wanted.count == segments.count else { return false }
        return zip(wanted, segments).allSatisfy { w, s in w.utf8.first == UInt8(ascii: "{") || w == s }
    }

    /// Firecracker's rule for resource ids: non-empty, ASCII letters, digits and '_'.
    static func checkedID(_ id: String) throws -> String {
        if id.isEmpty { throw APIError(.badRequest, "The ID cannot be empty.") }
        guard id.utf8.allSatisfy({ isIDByte($0) }) else {
            throw APIError(.badRequest, "API Resource IDs can only contain alphanumeric characters and underscores.")
        }
        return id
    }

    /// A resource id inside a body (drive_id, iface_id): the same rule, as a field error.
    static func resourceID(_ v: JSONValue, _ path: String) throws -> String {
        let s = try JSONDecode.nonEmptyString(v, path)
        guard s.utf8.allSatisfy({ isIDByte($0) }) else {
            throw APIDecodeError(path: path, problem: "may only contain ASCII letters, digits and underscores, got \(JSONDecode.quoted(s))")
        }
        return s
    }

    private static func isIDByte(_ b: UInt8) -> Bool {
        (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z")) || (b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z"))
            || (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9")) || b == UInt8(ascii: "_")
    }

    private static func checkSame(_ pathID: String, _ bodyID: String) throws {
        guard pathID == bodyID else { throw APIError(.badRequest, "The id from the path does not match the id from the body!") }
    }
}
