/// `swiftvmm check --json`: the same facts as one JSON object.
extension HostReport {
    public func json() -> String {
        let w = JSONWriter()
        w.object {
            w.field("usable", usable)
            w.field("verdict", verdict)
            w.field("backend", backend)
            w.field("cpuVirtualization", cpuVirtualization)
            w.field("hypervisorFlag", facts.cpuFlags.contains("hypervisor"))
            w.fieldArray("cpuFlags", facts.cpuFlags.filter { ["vmx", "svm", "hypervisor"].contains($0) }.sorted())
            w.fieldArray("modules", facts.modules.sorted())
            if let n = facts.nested { w.field("nested", n.trimmed()) } else { w.fieldNull("nested") }
            w.key("device")
            w.object {
                w.field("path", facts.devicePath)
                let state: String
                switch facts.device {
                case .missing: state = "missing"
                case .notCharacterDevice: state = "not-a-character-device"
                case .permissionDenied: state = "permission-denied"
                case .openFailed: state = "open-failed"
                case .opened: state = "ok"
                }
                w.field("state", state)
            }
            if let v = facts.apiVersion { w.field("apiVersion", Int(v)) } else { w.fieldNull("apiVersion") }
            if let m = facts.maxVCPUs { w.field("maxVCPUs", m) } else { w.fieldNull("maxVCPUs") }
            if let r = facts.recommendedVCPUs { w.field("recommendedVCPUs", r) } else { w.fieldNull("recommendedVCPUs") }
            w.key("extensions")
            w.object {
                for e in HostCheck.extensions where facts.device == .opened {
                    w.field(e.name, (facts.extensions[e.name] ?? 0) > 0)
                }
            }
            w.key("items")
            w.array {
                for i in items {
                    w.object {
                        w.field("status", i.status.rawValue)
                        w.field("label", i.label)
                        w.field("detail", i.detail)
                    }
                }
            }
            w.fieldArray("warnings", warnings)
            w.fieldArray("failures", failures)
        }
        return w.output
    }
}

/// A minimal streaming JSON writer (no Foundation on the run path).
public final class JSONWriter {
    public private(set) var output = ""
    private var needsComma = [false]

    public init() {}

    private func separator() {
        if needsComma[needsComma.count - 1] { output += "," }
        needsComma[needsComma.count - 1] = true
    }

    public func object(_ body: () -> Void) {
        separator()
        output += "{"
        needsComma.append(false)
        body()
        needsComma.removeLast()
        output += "}"
    }

    public func array(_ body: () -> Void) {
        separator()
        output += "["
        needsComma.append(false)
        body()
        needsComma.removeLast()
        output += "]"
    }

    /// Write a key; the value that follows does not add its own comma.
    public func key(_ k: String) {
        separator()
        output += JSONWriter.quote(k) + ":"
        needsComma[needsComma.count - 1] = false
    }

    private func raw(_ s: String) {
        separator()
        output += s
    }

    public func field(_ k: String, _ v: String) { key(k); raw(JSONWriter.quote(v)) }
    public func field(_ k: String, _ v: Bool) { key(k); raw(v ? "true" : "false") }
    public func field(_ k: String, _ v: Int) { key(k); raw(String(v)) }
    public func field(_ k: String, _ v: Double) { key(k); raw(v.isFinite ? String(v) : "null") }
    public func fieldNull(_ k: String) { key(k); raw("null") }
    public func fieldArray(_ k: String, _ v: [String]) {
        key(k)
        array { for s in v { raw(JSONWriter.quote(s)) } }
    }

    public static func quote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 {
                    let h = String(u.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - h.count) + h
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    }
}
