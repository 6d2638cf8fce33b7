import KVMKit

/// Bodies of the device endpoints, with Firecracker's field names.
extension FirecrackerAPI {
    /// A token bucket: `size` tokens, refilled over `refill_time` ms, plus a one-time burst.
    public struct TokenBucket: Sendable, Equatable {
        public var size: UInt64
        public var oneTimeBurst: UInt64?
        public var refillTimeMillis: UInt64

        public init(size: UInt64, oneTimeBurst: UInt64? = nil, refillTimeMillis: UInt64) {
            self.size = size
            self.oneTimeBurst = oneTimeBurst
            self.refillTimeMillis = refillTimeMillis
        }

        public init(json: JSONValue, at path: String) throws {
            let f = try JSONFields(json, at: path, known: ["size", "one_time_burst", "refill_time"])
            self.init(size: try f.required("size") { try JSONDecode.unsigned($0, $1) },
                      oneTimeBurst: try f.optional("one_time_burst") { try JSONDecode.unsigned($0, $1) },
                      refillTimeMillis: try f.required("refill_time") { try JSONDecode.unsigned($0, $1) })
        }

        public var json: JSONValue {
            var o = JSONObject()
            o.set("size", size)
            o.set("one_time_burst", oneTimeBurst)
            o.set("refill_time", refillTimeMillis)
            return .object(o)
        }
    }

    /// Bytes per second (`bandwidth`) and operations per second (`ops`) limits.
    public struct RateLimiter: Sendable, Equatable {
        public var bandwidth: TokenBucket?
        public var ops: TokenBucket?

        public init(bandwidth: TokenBucket? = nil, ops: TokenBucket? = nil) {
            self.bandwidth = bandwidth
            self.ops = ops
        }

        public init(json: JSONValue, at path: String) throws {
            let f = try JSONFields(json, at: path, known: ["bandwidth", "ops"])
            self.init(bandwidth: try f.optional("bandwidth") { try TokenBucket(json: $0, at: $1) },
                      ops: try f.optional("ops") { try TokenBucket(json: $0, at: $1) })
        }

        public var json: JSONValue {
            var o = JSONObject()
            o.set("bandwidth", bandwidth?.json)
            o.set("ops", ops?.json)
            return .object(o)
        }

        static func decode(_ v: JSONValue, _ path: String) throws -> RateLimiter { try RateLimiter(json: v, at: path) }
    }

    public enum CacheType: String, Sendable, Equatable, CaseIterable {
        case unsafe = "Unsafe"
        case writeback = "Writeback"
    }

    public enum IOEngine: String, Sendable, Equatable, CaseIterable {
        case sync = "Sync"
        case async = "Async"
    }

    /// PUT /drives/{drive_id} and an entry of a config file's "drives".
    public struct Drive: Sendable, Equatable {
        public var driveID: String
        public var pathOnHost: String
        public var isRootDevice: Bool
        public var isReadOnly: Bool
        public var partUUID: String?
        public var cacheType: CacheType
        public var ioEngine: IOEngine
        public var rateLimiter: RateLimiter?

        public init(driveID: String, pathOnHost: String, isRootDevice: Bool = false, isReadOnly: Bool = false,
                    partUUID: String? = nil, cacheType: CacheType = .unsafe, ioEngine: IOEngine = .sync,
                    rateLimiter: RateLimiter? = nil) {
            self.driveID = driveID
            self.pathOnHost = pathOnHost
            self.isRootDevice = isRootDevice
            self.isReadOnly = isReadOnly
            self.partUUID = partUUID
            self.cacheType = cacheType
            self.ioEngine = ioEngine
            self.rateLimiter = rateLimiter
        }

        public init(json: JSONValue, at path: String = "") throws {
            let f = try JSONFields(json, at: path, known: ["drive_id", "path_on_host", "is_root_device", "is_read_only",
                                                           "partuuid", "cache_type", "io_engine", "rate_limiter", "socket"])
            if f.has("socket") {
                throw APIDecodeError(path: JSONFields.join(path, "socket"), problem: "vhost-user drives are not supported")
            }
            self.init(driveID: try f.required("drive_id", FirecrackerAPI.resourceID),
                      pathOnHost: try f.required("path_on_host", JSONDecode.nonEmptyString),
                      isRootDevice: try f.required("is_root_device", JSONDecode.bool),
                      isReadOnly: try f.optional("is_read_only", JSONDecode.bool) ?? false,
                      partUUID: try f.optional("partuuid", JSONDecode.string),
                      cacheType: try f.optional("cache_type") { try JSONDecode.choice($0, $1) } ?? .unsafe,
                      ioEngine: try f.optional("io_engine") { try JSONDecode.choice($0, $1) } ?? .sync,
                      rateLimiter: try f.optional("rate_limiter", RateLimiter.decode))
        }

        public var json: JSONValue {
            var o = JSONObject()
            o.set("drive_id", driveID)
            o.set("path_on_host", pathOnHost)
            o.set("is_root_device", isRootDevice)
            o.set("partuuid", partUUID)
            o.set("is_read_only", isReadOnly)
            o.set("cache_type", cacheType.rawValue)
            o.set("io_engine", ioEngine.rawValue)
            o.set("rate_limiter", rateLimiter?.json)
            return .object(o)
        }
    }

    /// PATCH /drives/{drive_id}: a new backing file and/or rate limiter.
    public struct DriveUpdate: Sendable, Equatable {
        public var driveID: String
        public var pathOnHost: String?
        public var rateLimiter: RateLimiter?

        public init(json: JSONValue, at path: String = "") throws {
            let f = try JSONFields(json, at: path, known: ["drive_id", "path_on_host", "rate_limiter"])
            driveID = try f.required("drive_id", FirecrackerAPI.resourceID)
            pathOnHost = try f.optional("path_on_host", JSONDecode.nonEmptyString)
            rateLimiter = try f.optional("rate_limiter", RateLimiter.decode)
        }
    }

    /// PUT /entropy.
    public struct Entropy: Sendable, Equatable {
        public var rateLimiter: RateLimiter?

        public init(rateLimiter: RateLimiter? = nil) { self.rateLimiter = rateLimiter }

        public init(json: JSONValue, at path: String = "") throws {
            let f = try JSONFields(json, at: path, known: ["rate_limiter"])
            rateLimiter = try f.optional("rate_limiter", RateLimiter.decode)
        }

        public var json: JSONValue {
            var o = JSONObject()
            o.set("rate_limiter", rateLimiter?.json)
            return .object(o)
        }
    }

    /// PUT /network-interfaces/{iface_id} and an entry of "network-interfaces".
    public struct NetworkInterface: Sendable, Equatable {
        public var ifaceID: String
        public var hostDevName: String
        /// "aa:bb:cc:dd:ee:ff", checked.
        public var guestMAC: String?
        public var mtu: UInt64?
        public var rxRateLimiter: RateLimiter?
        public var txRateLimiter: RateLimiter?

        public init(json: JSONValue, at path: String = "") throws {
            let f = try JSONFields(json, at: path, known: ["iface_id", "host_dev_name", "guest_mac", "mtu",
                                                           "rx_rate_limiter", "tx_rate_limiter"])
            ifaceID = try f.required("iface_id", FirecrackerAPI.resourceID)
            hostDevName = try f.required("host_dev_name", JSONDecode.nonEmptyString)
            guestMAC = try f.optional("guest_mac", Self.mac)
            mtu = try f.optional("mtu", JSONDecode.unsigned(in: 68...65535))
            rxRateLimiter = try f.optional("rx_rate_limiter", RateLimiter.decode)
            txRateLimiter = try f.optional("tx_rate_limiter", RateLimiter.decode)
        }

        static func mac(_ v: JSONValue, _ path: String) throws -> String {
            let s = try JSONDecode.string(v, path)
            let parts = s.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 6, parts.allSatisfy({ $0.count == 2 && $0.allSatisfy(\.isHexDigit) }) else {
                throw APIDecodeError(path: path, problem: "expected a MAC address like \"06:00:ac:10:00:02\", got \(JSONDecode.quoted(s))")
            }
            return s
        }

        public var json: JSONValue {
            var o = JSONObject()
            o.set("iface_id", ifaceID)
            o.set("host_dev_name", hostDevName)
            o.set("guest_mac", guestMAC)
            o.set("mtu", mtu)
            o.set("rx_rate_limiter", rxRateLimiter?.json)
            o.set("tx_rate_limiter", txRateLimiter?.json)
            return .object(o)
        }
    }

    /// PATCH /network-interfaces/{iface_id}: new rate limiters.
    public struct NetworkInterfaceUpdate: Sendable, Equatable {
        public var ifaceID: String
        public var rxRateLimiter: RateLimiter?
        public var txRateLimiter: RateLimiter?

        public init(json: JSONValue, at path: String = "") throws {
            let f = try JSONFields(json, at: path, known: ["iface_id", "rx_rate_limiter", "tx_rate_limiter"])
            ifaceID = try f.required("iface_id", FirecrackerAPI.resourceID)
            rxRateLimiter = try f.optional("rx_rate_limiter", RateLimiter.decode)
            txRateLimiter = try f.optional("tx_rate_limiter", RateLimiter.decode)
        }
    }

    /// PUT /vsock.
    public struct Vsock: Sendable, Equatable {
        public var guestCID: UInt32
        public var udsPath: String
        /// Deprecated by Firecracker; accepted and ignored there.
        public var vsockID: String?

        public init(json: JSONValue, at path: String = "") throws {
            let f = try JSONFields(json, at: path, known: ["guest_cid", "uds_path", "vsock_id"])
            guestCID = UInt32(try f.required("guest_cid", JSONDecode.unsigned(in: 3...UInt64(UInt32.max))))
            udsPath = try f.required("uds_path", JSONDecode.nonEmptyString)
            vsockID = try f.optional("vsock_id", JSONDecode.string)
        }

        public var json: JSONValue {
            var o = JSONObject()
            o.set("guest_cid", UInt64(guestCID))
            o.set("uds_path", udsPath)
            o.set("vsock_id", vsockID)
            return .object(o)
        }
    }

    /// PUT /balloon.
    public struct Balloon: Sendable, Equatable {
        public var amountMiB: UInt64
        public var deflateOnOOM: Bool
        public var statsPollingIntervalSeconds: UInt64?
        public var freePageHinting: Bool?
        public var freePageReporting: Bool?

        public init(json: JSONValue, at path: String = "") throws {
            let f = try JSONFields(json, at: path, known: ["amount_mib", "deflate_on_oom", "stats_polling_interval_s",
                                                           "free_page_hinting", "free_page_reporting"])
            amountMiB = try f.required("amount_mib", JSONDecode.unsigned(in: 0...UInt64(UInt32.max)))
            deflateOnOOM = try f.required("deflate_on_oom", JSONDecode.bool)
            statsPollingIntervalSeconds = try f.optional("stats_polling_interval_s", JSONDecode.unsigned(in: 0...UInt64(UInt16.max)))
            freePageHinting = try f.optional("free_page_hinting", JSONDecode.bool)
            freePageReporting = try f.optional("free_page_reporting", JSONDecode.bool)
        }

        public var json: JSONValue {
            var o = JSONObject()
            o.set("amount_mib", amountMiB)
            o.set("deflate_on_oom", deflateOnOOM)
            o.set("stats_polling_interval_s", statsPollingIntervalSeconds)
            o.set("free_page_hinting", freePageHinting)
            o.set("free_page_reporting", freePageReporting)
            return .object(o)
        }
    }

    /// PATCH /balloon.
    public struct BalloonUpdate: Sendable, Equatable {
        public var amountMiB: UInt64

        public init(json: JSONValue, at path: String = "") throws {
            let f = try JSONFields(json, at: path, known: ["amount_mib"])
            amountMiB = try f.required("amount_mib", JSONDecode.unsigned(in: 0...UInt64(UInt32.max)))
        }
    }

    /// PATCH /balloon/statistics.
    public struct BalloonStatsUpdate: Sendable, Equatable {
        public var statsPollingIntervalSeconds: UInt64

        public init(json: JSONValue, at path: String = "") throws {
            let f = try JSONFields(json, at: path, known: ["stats_polling_interval_s"])
            statsPollingIntervalSeconds = try f.required("stats_polling_interval_s", JSONDecode.unsigned(in: 0...UInt64(UInt16.max)))
        }
    }
}
