/// Everything the host check looks at, gathered first so the verdict is a pure function
/// of it (and testable on recorded inputs).
public struct HostFacts: Equatable, Sendable {
    /// How opening the KVM device went.
    public enum DeviceState: Equatable, Sendable {
        case missing
        case notCharacterDevice
        case permissionDenied
        case openFailed(errno: Int32)
        case opened
    }

    /// The `flags` line of the first processor in /proc/cpuinfo, split on spaces.
    public var cpuFlags: Set<String>
    /// Names under /sys/module that matter: kvm, kvm_intel, kvm_amd, kvm_pvm.
    public var modules: Set<String>
    /// Contents of /sys/module/kvm_{intel,amd}/parameters/nested, if present.
    public var nested: String?
    public var devicePath: String
    public var device: DeviceState
    public var apiVersion: Int32?
    /// KVM extension name → KVM_CHECK_EXTENSION value (0 = absent).
    public var extensions: [String: Int32]
    public var maxVCPUs: Int?
    public var recommendedVCPUs: Int?
    /// nil when not tried (device unusable); otherwise the error text or "" on success.
    public var vmCreateError: String?
    public var vcpuCreateError: String?
    public var userName: String

    public init(cpuFlags: Set<String> = [], modules: Set<String> = [], nested: String? = nil,
                devicePath: String = "/dev/kvm", device: DeviceState = .missing, apiVersion: Int32? = nil,
                extensions: [String: Int32] = [:], maxVCPUs: Int? = nil, recommendedVCPUs: Int? = nil,
                vmCreateError: String? = nil, vcpuCreateError: String? = nil, userName: String = "user") {
        self.cpuFlags = cpuFlags
        self.modules = modules
        self.nested = nested
        self.devicePath = devicePath
        self.device = device
        self.apiVersion = apiVersion
        self.extensions = extensions
        self.maxVCPUs = maxVCPUs
        self.recommendedVCPUs = recommendedVCPUs
        self.vmCreateError = vmCreateError
        self.vcpuCreateError = vcpuCreateError
        self.userName = userName
    }

    /// The flags of the first `flags` line of a /proc/cpuinfo text.
    public static func cpuFlags(fromCPUInfo text: String) -> Set<String> {
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2 else { continue }
            let key = parts[0].trimmed()
            if key == "flags" {
                return Set(parts[1].split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init))
            }
        }
        return []
    }
}

extension StringProtocol {
    /// Without leading and trailing blanks and newlines (Foundation stays off the run path).
    func trimmed() -> String {
        var s = self[...]
        while let c = s.first, c.isWhitespace { s = s.dropFirst() }
        while let c = s.last, c.isWhitespace { s = s.dropLast() }
        return String(s)
    }
}

/// The KVM extensions the check reports; `required` ones make the host unusable when absent.
public struct KVMExtension: Sendable {
    public let name: String
    public let capability: Int32
    public let required: Bool
}
