/// `swiftvmm check --json`: the same facts as one JSON object.
extension HostReport {
    public func json() -> String { jsonValue().encoded() }

    public func jsonValue() -> JSONValue {
        let state: String
        switch facts.device {
        case .missing: state = "missing"
        case .notCharacterDevice: state = "not-a-character-device"
        case .permissionDenied: state = "permission-denied"
        case .openFailed: state = "open-failed"
        case .opened: state = "ok"
        }
        var extensions = JSONObject()
        for e in HostCheck.extensions where facts.device == .opened {
            extensions[e.name] = .bool((facts.extensions[e.name] ?? 0) > 0)
        }
        let items: [JSONValue] = items.map {
            ["status": .string($0.status.rawValue), "label": .string($0.label), "detail": .string($0.detail)]
        }
        return [
            "usable": .bool(usable),
            "verdict": .string(verdict),
            "backend": .string(backend),
            "cpuVirtualization": .string(cpuVirtualization),
            "hypervisorFlag": .bool(facts.cpuFlags.contains("hypervisor")),
            "cpuFlags": JSONValue(facts.cpuFlags.filter { ["vmx", "svm", "hypervisor"].contains($0) }.sorted()),
            "modules": JSONValue(facts.modules.sorted()),
            "nested": JSONValue(facts.nested?.trimmed()),
            "device": ["path": .string(facts.devicePath), "state": .string(state)],
            "apiVersion": facts.apiVersion.map { JSONValue(Int($0)) } ?? .null,
            "maxVCPUs": facts.maxVCPUs.map { JSONValue(Int($0)) } ?? .null,
            "recommendedVCPUs": facts.recommendedVCPUs.map { JSONValue(Int($0)) } ?? .null,
            "extensions": .object(extensions),
            "items": .array(items),
            "warnings": JSONValue(warnings),
            "failures": JSONValue(failures),
        ]
    }
}
