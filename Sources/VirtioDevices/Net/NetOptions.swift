/// `--net tap=NAME[,mac=MAC][,id=ID][,rx-bw=…][,rx-ops=…][,tx-bw=…][,tx-ops=…]`, parsed.
/// Rate-limit buckets are `SIZE/MS[/BURST]` (bytes or operations per MS milliseconds).
public struct NetOptions: Equatable, Sendable {
    public var tap: String
    public var mac: MACAddress?
    public var id: String?
    public var rxLimit = RateLimiterConfig()
    public var txLimit = RateLimiterConfig()

    public init(tap: String, mac: MACAddress? = nil, id: String? = nil) {
        self.tap = tap; self.mac = mac; self.id = id
    }

    public init(parsing text: String) throws(NetOptionsError) {
        var tap: String?
        var mac: MACAddress?
        var id: String?
        var rx = RateLimiterConfig(), tx = RateLimiterConfig()
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            guard let eq = part.firstIndex(of: "="), eq != part.startIndex else { throw .syntax(text) }
            let key = String(part[..<eq]), value = String(part[part.index(after: eq)...])
            guard !value.isEmpty else { throw .syntax(text) }
            do {
                switch key {
                case "tap": tap = value
                case "mac":
                    guard let m = MACAddress(value), !m.isMulticast else { throw NetOptionsError.malformedMAC(value, in: text) }
                    mac = m
                case "id": id = value
                case "rx-bw": rx.bandwidth = try .init(parsing: value, what: "--net \(text): rx-bw")
                case "rx-ops": rx.ops = try .init(parsing: value, what: "--net \(text): rx-ops")
                case "tx-bw": tx.bandwidth = try .init(parsing: value, what: "--net \(text): tx-bw")
                case "tx-ops": tx.ops = try .init(parsing: value, what: "--net \(text): tx-ops")
                default: throw NetOptionsError.unknownKey(key, in: text)
                }
            } catch let e as NetOptionsError { throw e } catch let e as RateLimiterConfigError { throw .rateLimit(e) } catch {
                throw .syntax(text)
            }
        }
        guard let tap else { throw .missingTap(text) }
        self.tap = tap; self.mac = mac; self.id = id
        rxLimit = rx; txLimit = tx
    }

    /// Check a whole `--net` list: unique ids (defaulting to net0, net1, …) and taps.
    /// Returns the ids in order.
    public static func validate(_ list: [NetOptions]) throws(NetOptionsError) -> [String] {
        var ids: [String] = [], taps = Set<String>()
        for (i, o) in list.enumerated() {
            let id = o.id ?? "net\(i)"
            if ids.contains(id) { throw .duplicateID(id) }
            if !taps.insert(o.tap).inserted { throw .duplicateTap(o.tap) }
            ids.append(id)
        }
        return ids
    }
}

public enum NetOptionsError: Error, Equatable, CustomStringConvertible {
    case syntax(String)
    case missingTap(String)
    case unknownKey(String, in: String)
    case malformedMAC(String, in: String)
    case rateLimit(RateLimiterConfigError)
    case duplicateID(String)
    case duplicateTap(String)

    public var description: String {
        switch self {
        case .syntax(let t): return "--net \(t): expected tap=NAME[,mac=MAC][,id=ID][,rx-bw=|rx-ops=|tx-bw=|tx-ops=SIZE/MS[/BURST]]"
        case .missingTap(let t): return "--net \(t): tap=NAME is required"
        case .unknownKey(let k, let t): return "--net \(t): unknown key '\(k)' (expected tap, mac, id, rx-bw, rx-ops, tx-bw, tx-ops)"
        case .malformedMAC(let m, let t): return "--net \(t): '\(m)' is not a unicast MAC address like 52:54:00:12:34:56"
        case .rateLimit(let e): return "\(e)"
        case .duplicateID(let id): return "--net: id \(id) is used twice"
        case .duplicateTap(let tap): return "--net: tap \(tap) is used twice"
        }
    }
}
