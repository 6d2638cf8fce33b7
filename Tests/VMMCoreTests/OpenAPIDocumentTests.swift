import Foundation
import KVMKit
import XCTest
@testable import VMMCore

/// docs/api.json against the router and the encoders: the same routes both ways, every
/// reference resolves, and what the encoders write matches the schemas.
final class OpenAPIDocumentTests: XCTestCase {
    private var doc: JSONObject = [:]
    private var schemas: JSONObject = [:]

    override func setUpWithError() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("docs/api.json")
        let bytes = try [UInt8](Data(contentsOf: url))
        guard case .object(let d) = try JSONParser.parse(bytes),
              case .object(let components)? = d["components"], case .object(let s)? = components["schemas"]
        else { throw APITestError("docs/api.json: no components.schemas") }
        doc = d
        schemas = s
    }

    func testDocumentedRoutesAreExactlyTheRoutersRoutes() throws {
        guard case .object(let paths)? = doc["paths"] else { return XCTFail("no paths") }
        var documented = Set<String>()
        for member in paths.members {
            guard case .object(let item) = member.value else { continue }
            for key in item.keys where key != "parameters" {
                documented.insert("\(key.uppercased()) \(member.key)")
            }
        }
        let served = Set(FirecrackerAPI.routes.map(\.description))
        XCTAssertEqual(documented.subtracting(served), [], "documented but not served")
        XCTAssertEqual(served.subtracting(documented), [], "served but not documented")
    }

    func testEveryReferenceResolves() {
        var refs: [String] = []
        func walk(_ v: JSONValue) {
            switch v {
            case .object(let o):
                for m in o.members {
                    if m.key == "$ref", case .string(let r) = m.value { refs.append(r) } else { walk(m.value) }
                }
            case .array(let a): a.forEach(walk)
            default: break
            }
        }
        walk(.object(doc))
        XCTAssertGreaterThan(refs.count, 40)
        for r in refs {
            XCTAssertTrue(r.hasPrefix("#/components/schemas/") && schemas[String(r.dropFirst(21))] != nil, "unresolved \(r)")
        }
    }

    func testEncodersMatchTheSchemas() throws {
        try assertValid(FirecrackerAPI.instanceInfo(id: "vm", state: .paused, vmmVersion: "0.1"), "InstanceInfo")
        try assertValid(FirecrackerAPI.version("1.7.0"), "FirecrackerVersion")
        try assertValid(FirecrackerAPI.MachineConfig(vcpuCount: 2, memSizeMiB: 64, hugePages: .twoMiB).json, "MachineConfiguration")
        try assertValid(APIError(.badRequest, "x").response.body.json(), "Error")
        try assertValid(MigrationReport(rounds: 2, bytesSent: 1 << 20, pagesInFinalRound: 7, totalMilliseconds: 40.5,
                                        downtimeMilliseconds: 3.25).json, "MigrationReport")
        var config = FirecrackerConfig()
        try assertValid(config.json, "FullVmConfiguration")
        config.bootSource = .init(kernelImagePath: "/k", bootArgs: "console=ttyS0")
        config.machineConfig = .init()
        config.drives = [.init(driveID: "root", pathOnHost: "/r", isRootDevice: true,
                               rateLimiter: .init(bandwidth: .init(size: 1, oneTimeBurst: 2, refillTimeMillis: 3)))]
        config.entropy = .init()
        config.logger = .init(logPath: "/l", level: .warning)
        config.metrics = .init(metricsPath: "/m")
        try assertValid(config.json, "FullVmConfiguration")
        // And the validator does reject: a wrong state, a missing field, an extra field.
        XCTAssertNotNil(validate(["id": "a", "state": "Stopped", "vmm_version": "1", "app_name": "swiftvmm"], ref: "InstanceInfo"))
        XCTAssertNotNil(validate(["id": "a", "state": "Paused", "vmm_version": "1"], ref: "InstanceInfo"))
        XCTAssertNotNil(validate(["firecracker_version": "1", "x": 1], ref: "FirecrackerVersion"))
    }

    /// The request body schemas accept what the router accepts (one sample per route).
    func testSampleBodiesMatchRequestSchemas() throws {
        let samples: [(String, String, String)] = [
            ("PUT", "/machine-config", #"{"vcpu_count": 2, "mem_size_mib": 128, "huge_pages": "None"}"#),
            ("PATCH", "/machine-config", #"{"mem_size_mib": 256}"#),
            ("PUT", "/boot-source", #"{"kernel_image_path": "/k", "boot_args": "x"}"#),
            ("PUT", "/drives/{drive_id}", #"{"drive_id": "a", "path_on_host": "/p", "is_root_device": true, "cache_type": "Writeback"}"#),
            ("PATCH", "/drives/{drive_id}", #"{"drive_id": "a", "path_on_host": "/q"}"#),
            ("PUT", "/actions", #"{"action_type": "InstanceStart"}"#),
            ("PATCH", "/vm", #"{"state": "Paused"}"#),
            ("PUT", "/entropy", #"{}"#),
            ("PUT", "/logger", #"{"log_path": "/l", "level": "Info"}"#),
            ("PUT", "/metrics", #"{"metrics_path": "/m"}"#),
            ("PUT", "/vm.send-migration", #"{"destination_url": "tcp:10.0.0.2:4444", "downtime_ms": 300, "local": false}"#),
            ("PUT", "/vm.receive-migration", #"{"receiver_url": "unix:/run/m.sock"}"#),
        ]
        guard case .object(let paths)? = doc["paths"] else { return XCTFail() }
        for (method, path, body) in samples {
            guard case .object(let item)? = paths[path], case .object(let op)? = item[method.lowercased()],
                  case .object(let rb)? = op["requestBody"], case .object(let content)? = rb["content"],
                  case .object(let media)? = content["application/json"], let schema = media["schema"]
            else { XCTFail("\(method) \(path): no request body schema"); continue }
            let value = try JSONParser.parse(body)
            XCTAssertNil(validate(value, schema), "\(method) \(path)")
            let concrete = path.replacingOccurrences(of: "{drive_id}", with: "a")
            guard let m = HTTPMethod(rawValue: method) else { continue }
            if case .failure(let e) = FirecrackerAPI.route(method: m, path: concrete, body: Array(body.utf8)) {
                XCTFail("\(method) \(path): router refused the documented sample: \(e)")
            }
        }
    }

    private func assertValid(_ value: JSONValue, _ name: String, file: StaticString = #filePath, line: UInt = #line) throws {
        if let problem = validate(value, ref: name) { XCTFail("\(name): \(problem) in \(value.encoded())", file: file, line: line) }
    }

    private func validate(_ value: JSONValue, ref name: String) -> String? {
        validate(value, .object(["$ref": .string("#/components/schemas/" + name)]))
    }

    /// A small JSON Schema subset: $ref, type, enum, required, properties,
    /// additionalProperties, items, oneOf, minimum, maximum, minLength. nil when valid.
    private func validate(_ value: JSONValue, _ schema: JSONValue, at path: String = "$") -> String? {
        guard case .object(let s) = schema else { return nil }
        if case .string(let r)? = s["$ref"] {
            guard let target = schemas[String(r.dropFirst(21))] else { return "\(path): unresolved \(r)" }
            return validate(value, target, at: path)
        }
        if case .array(let options)? = s["oneOf"] {
            let passing = options.filter { validate(value, $0, at: path) == nil }.count
            return passing == 1 ? nil : "\(path): matches \(passing) of oneOf"
        }
        if case .string(let type)? = s["type"] {
            let actual: String
            switch value {
            case .null: actual = "null"
            case .bool: actual = "boolean"
            case .number(.double): actual = "number"
            case .number: actual = "integer"
            case .string: actual = "string"
            case .array: actual = "array"
            case .object: actual = "object"
            }
            if actual != type { return "\(path): \(actual), expected \(type)" }
        }
        if case .array(let allowed)? = s["enum"], !allowed.contains(value) { return "\(path): \(value.encoded()) not in enum" }
        if case .number(.int(let n)) = value {
            if case .number(.int(let min))? = s["minimum"], n < min { return "\(path): below minimum" }
            if case .number(.int(let max))? = s["maximum"], n > max { return "\(path): above maximum" }
        }
        if case .string(let str) = value, case .number(.int(let min))? = s["minLength"], str.count < min { return "\(path): too short" }
        if case .array(let items) = value, let itemSchema = s["items"] {
            for (i, item) in items.enumerated() { if let p = validate(item, itemSchema, at: "\(path)[\(i)]") { return p } }
        }
        if case .object(let o) = value {
            let props: JSONObject
            if case .object(let p)? = s["properties"] { props = p } else { props = [:] }
            if case .array(let required)? = s["required"] {
                for case .string(let r) in required where o[r] == nil { return "\(path): missing \(r)" }
            }
            for m in o.members {
                if let p = props[m.key] {
                    if let problem = validate(m.value, p, at: "\(path).\(m.key)") { return problem }
                } else if s["additionalProperties"] == .bool(false) {
                    return "\(path): unexpected \(m.key)"
                }
            }
        }
        return nil
    }
}

extension Array where Element == UInt8 {
    fileprivate func json() throws -> JSONValue { try JSONParser.parse(self) }
}
