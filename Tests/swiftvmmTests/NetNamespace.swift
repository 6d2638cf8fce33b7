import Foundation
import XCTest

/// A network namespace of the test's own with a tap in it (`ip netns add`, `ip tuntap`),
/// deleted (with the tap) at deinit. swiftvmm runs inside it through `ip netns exec`.
final class NetNamespace {
    static let ip = URL(fileURLWithPath: "/usr/sbin/ip")
    let name: String

    /// Skip without root or iproute2 (fail under CI=true, where both are promised).
    static func require() throws {
        let usable = geteuid() == 0 && FileManager.default.isExecutableFile(atPath: ip.path)
            && FileManager.default.fileExists(atPath: "/dev/net/tun")
        if usable { return }
        if ProcessInfo.processInfo.environment["CI"] == "true" {
            XCTFail("CI=true but network namespaces are not usable (need root, /usr/sbin/ip, /dev/net/tun)")
            throw XCTSkip("failed: no network namespaces")
        }
        print("SKIPPED (network namespaces need root, /usr/sbin/ip and /dev/net/tun)")
        throw XCTSkip("no network namespaces")
    }

    init() throws {
        try NetNamespace.require()
        name = "swiftvmm-t\(getpid())-\(UUID().uuidString.prefix(6))"
        try check(["netns", "add", name])
    }

    deinit { _ = try? runProcess(NetNamespace.ip, ["netns", "del", name], timeout: 20) }

    /// `ip ARGS` inside the namespace; throws with its stderr when it fails.
    @discardableResult
    func ip(_ args: [String]) throws -> String { try check(["netns", "exec", name, NetNamespace.ip.path] + args) }

    /// A tap named `tap` with `address` (e.g. 10.77.0.1/24), up; `owner` restricts who
    /// may attach to it without CAP_NET_ADMIN.
    func addTap(_ tap: String, address: String? = nil, owner: Int? = nil) throws {
        try ip(["tuntap", "add", "dev", tap, "mode", "tap"] + (owner.map { ["user", String($0)] } ?? []))
        if let a = address { try ip(["addr", "add", a, "dev", tap]) }
        try ip(["link", "set", tap, "up"])
    }

    /// A counter of /sys/class/net/TAP/statistics as the namespace sees it.
    func statistic(_ tap: String, _ counter: String) throws -> UInt64 {
        let out = try check(["netns", "exec", name, "cat", "/sys/class/net/\(tap)/statistics/\(counter)"])
        return UInt64(out.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
    }

    /// The arguments that run swiftvmm inside the namespace (for `ip`).
    func swiftvmm(_ args: [String]) -> [String] { ["netns", "exec", name, swiftvmmExecutable().path] + args }

    @discardableResult
    private func check(_ args: [String]) throws -> String {
        let r = try runProcess(NetNamespace.ip, args, timeout: 30)
        if r.status != 0 {
            throw NSError(domain: "netns", code: Int(r.status), userInfo: [NSLocalizedDescriptionKey: "ip \(args.joined(separator: " ")): \(r.stderr)"])
        }
        return r.stdout
    }
}
