import KVMKit

/// Bodies of the machine-level endpoints, with Firecracker's field names.
extension FirecrackerAPI {
    public enum HugePages: String, Sendable, Equatable, CaseIterable {
        case none = "None"
        case twoMiB = "2M"
    }

    /// PUT /machine-config (all fields) and the machine-config of a config file.
    public struct MachineConfig: Sendable, Equatable {
        public static let vcpuRange: ClosedRange<UInt64> = 1...32
        /// 1 TiB: larger than any host this runs on, small enough to never overflow bytes.
        public static let memoryRange: ClosedRange<UInt64> = 1...(1 << 20)

        public var vcpuCount: Int
        public var memSizeMiB: UInt64
        public var smt: Bool
        public var trackDirtyPages: Bool
        public var hugePages: HugePages

        public init(vcpuCount: Int = 1, memSizeMiB: UInt64 = 128, smt: Bool = false, trackDirtyPages: Bool = false,
                    hugePages: HugePages = .none) {
            self.vcpuCount = vcpuCount
            self.memSizeMiB = memSizeMiB
            self.smt = smt
            self.trackDirtyPages = trackDirtyPages
            self.hugePages = hugePages
        }

        static let fields = ["vcpu_count", "mem_size_mib", "smt", "track_dirty_pages", "huge_pages", "cpu_template"]

        public init(json: JSONValue, at path: String = "") throws {
            let f = try JSONFields(json, at: path, known: Self.fields)
            try Self.rejectCPUTemplate(f)
            self.init(vcpuCount: Int(try f.required("vcpu_count", JSONDecode.unsigned(in: Self.vcpuRange))),
                      memSizeMiB: try f.required("mem_size_mib", JSONDecode.unsigned(in: Self.memoryRange)),
                      smt: try f.optional("smt", JSONDecode.bool) ?? false,
                      trackDirtyPages: try f.optional("track_dirty_pages", JSONDecode.bool) ?? false,
                      hugePages: try f.optional("huge_pages") { try JSONDecode.choice($0, $1) } ?? .none)
            try validate(at: path)
        }

        /// Rules that involve more than one field (Firecracker's VmConfigError cases).
        public func validate(at path: String = "") throws {
            if smt, vcpuCount > 1, vcpuCount % 2 != 0 {
                throw APIDecodeError(path: JSONFields.join(path, "vcpu_count"),
                                     problem: "must be 1 or an even number when smt is enabled, got \(vcpuCount)")
            }
            if hugePages == .twoMiB, memSizeMiB % 2 != 0 {
                throw APIDecodeError(path: JSONFields.join(path, "mem_size_mib"),
                                     problem: "must be a multiple of 2 with 2M huge pages, got \(memSizeMiB)")
            }
        }

        /// CPU templates change CPUID in ways swiftvmm does not model: only "None" is accepted.
        static func rejectCPUTemplate(_ f: JSONFields) throws {
            guard let template = try f.optional("cpu_template", JSONDecode.string), template != "None" else { return }
            throw APIDecodeError(path: JSONFields.join(f.path, "cpu_template"),
                                 problem: "CPU templates are not supported (only \"None\"), got \(JSONDecode.quoted(template))")
        }

        public var json: JSONValue {
            ["vcpu_count": JSONValue(vcpuCount), "mem_size_mib": JSONValue(memSizeMiB), "smt": .bool(smt),
             "track_dirty_pages": .bool(trackDirtyPages), "huge_pages": .string(hugePages.rawValue)]
        }

        /// This configuration with a PATCH applied, validated as a whole.
        public func applying(_ update: MachineConfigUpdate) throws -> MachineConfig {
            var next = self
            if let v = update.vcpuCount { next.vcpuCount = v }
            if let v = update.memSizeMiB { next.memSizeMiB = v }
            if let v = update.smt { next.smt = v }
            if let v = update.trackDirtyPages { next.trackDirtyPages = v }
            if let v = update.hugePages { next.hugePages = v }
            try next.validate()
            return next
        }
    }

    /// PATCH /machine-config: any subset of the fields.
    public struct MachineConfigUpdate: Sendable, Equatable {
        public var vcpuCount: Int?
        public var memSizeMiB: UInt64?
        public var smt: Bool?
        public var trackDirtyPages: Bool?
        public var hugePages: HugePages?

        public init(json: JSONValue, at path: String = "") throws {
            let f = try JSONFields(json, at: path, known: MachineConfig.fields)
            try MachineConfig.rejectCPUTemplate(f)
            vcpuCount = try f.optional("vcpu_count", JSONDecode.unsigned(in: MachineConfig.vcpuRange)).map { Int($0) }
            memSizeMiB = try f.optional("mem_size_mib", JSONDecode.unsigned(in: MachineConfig.memoryRange))
            smt = try f.optional("smt", JSONDecode.bool)
            trackDirtyPages = try f.optional("track_dirty_pages", JSONDecode.bool)
            hugePages = try f.optional("huge_pages") { try JSONDecode.choice($0, $1) }
        }
    }

    /// PUT /boot-source.
    public struct BootSource: Sendable, Equatable {
        public var kernelImagePath: String
        public var bootArgs: String?
        public var initrdPath: String?

        public init(kernelImagePath: String, bootArgs: String? = nil, initrdPath: String? = nil) {
            self.kernelImagePath = kernelImagePath
            self.bootArgs = bootArgs
            self.initrdPath = initrdPath
        }

        public init(json: JSONValue, at path: String = "") throws {
            let f = try JSONFields(json, at: path, known: ["kernel_image_path", "boot_args", "initrd_path"])
            self.init(kernelImagePath: try f.required("kernel_image_path", JSONDecode.nonEmptyString),
                      bootArgs: try f.optional("boot_args", JSONDecode.string),
                      initrdPath: try f.optional("initrd_path", JSONDecode.nonEmptyString))
        }

        public var json: JSONValue {
            var o = JSONObject()
            o.set("kernel_image_path", kernelImagePath)
            o.set("boot_args", bootArgs)
            o.set("initrd_path", initrdPath)
            return .object(o)
        }
    }

    /// PUT /actions.
    public enum ActionType: String, Sendable, Equatable, CaseIterable {
        case instanceStart = "InstanceStart"
        case sendCtrlAltDel = "SendCtrlAltDel"
        case flushMetrics = "FlushMetrics"

        public init(json: JSONValue, at path: String = "") throws {
            let f = try JSONFields(json, at: path, known: ["action_type"])
            self = try f.required("action_type") { try JSONDecode.choice($0, $1) }
        }
    }

    /// PATCH /vm.
    public enum VMStateChange: String, Sendable, Equatable, CaseIterable {
        case paused = "Paused"
        case resumed = "Resumed"

        public init(json: JSONValue, at path: String = "") throws {
            let f = try JSONFields(json, at: path, known: ["state"])
            self = try f.required("state") { try JSONDecode.choice($0, $1) }
        }
    }

    public enum LogLevel: String, Sendable, Equatable, CaseIterable {
        case error = "Error", warning = "Warning", info = "Info", debug = "Debug", trace = "Trace", off = "Off"
    }

    /// PUT /logger. Firecracker reads the level case-insensitively.
    public struct Logger: Sendable, Equatable {
        public var logPath: String?
        public var level: LogLevel?
        public var showLevel: Bool?
        public var showLogOrigin: Bool?
        public var module: String?

        public init(logPath: String? = nil, level: LogLevel? = nil, showLevel: Bool? = nil, showLogOrigin: Bool? = nil,
                    module: String? = nil) {
            self.logPath = logPath
            self.level = level
            self.showLevel = showLevel
            self.showLogOrigin = showLogOrigin
            self.module = module
        }

        public init(json: JSONValue, at path: String = "") throws {
            let f = try JSONFields(json, at: path, known: ["log_path", "level", "show_level", "show_log_origin", "module"])
            self.init(logPath: try f.optional("log_path", JSONDecode.nonEmptyString),
                      level: try f.optional("level") { try JSONDecode.choice($0, $1, caseInsensitive: true) },
                      showLevel: try f.optional("show_level", JSONDecode.bool),
                      showLogOrigin: try f.optional("show_log_origin", JSONDecode.bool),
                      module: try f.optional("module", JSONDecode.string))
        }

        public var json: JSONValue {
            var o = JSONObject()
            o.set("log_path", logPath)
            o.set("level", level?.rawValue)
            o.set("show_level", showLevel)
            o.set("show_log_origin", showLogOrigin)
            o.set("module", module)
            return .object(o)
        }
    }

    /// PUT /metrics.
    public struct Metrics: Sendable, Equatable {
        public var metricsPath: String

        public init(metricsPath: String) { self.metricsPath = metricsPath }

        public init(json: JSONValue, at path: String = "") throws {
            let f = try JSONFields(json, at: path, known: ["metrics_path"])
            metricsPath = try f.required("metrics_path", JSONDecode.nonEmptyString)
        }

        public var json: JSONValue { ["metrics_path": .string(metricsPath)] }
    }

    // MARK: responses

    /// GET /: {"id", "state", "vmm_version", "app_name"}.
    public static func instanceInfo(id: String, state: VMState, vmmVersion: String, appName: String = "swiftvmm") -> JSONValue {
        ["id": .string(id), "state": .string(state.rawValue), "vmm_version": .string(vmmVersion), "app_name": .string(appName)]
    }

    /// GET /version.
    public static func version(_ version: String) -> JSONValue { ["firecracker_version": .string(version)] }
}
